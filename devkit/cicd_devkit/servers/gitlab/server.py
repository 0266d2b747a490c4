"""A GitLab-compatible HTTP server on loopback, backed by a local provider.

``GitLabServer(local, token).start()`` answers, under ``api_url`` (``<url>/api/v4``), the REST
endpoints the GitLab provider uses with GitLab's documented payload shapes (``api``), and
serves the local provider's bare repositories over git's smart HTTP protocol at
``<url>/<namespace>/<project>.git`` (``git http-backend``), so python-gitlab and git talk to it
as to a GitLab instance. A push reaches the bare repository, whose hook starts CI as usual.

What it models of GitLab:

- authentication: ``PRIVATE-TOKEN: <token>`` or ``Authorization: Bearer <token>`` on the API
  (``401 Unauthorized`` otherwise); HTTP Basic with any user name and the token as password
  for git (401 with a challenge, as git's askpass expects);
- users: each token is a user's (``GET /user``; the token the server starts with is
  ``cicd-orchestrator-bot``, ``add_user`` adds others); merge requests, issues and notes
  record who created them; ``GET /users?username=`` finds a user the server knows (those of
  the tokens, the authors of merge requests from forks), whose numeric id merge requests and
  issues take as an assignee (``assignee_ids``) or reviewer (``reviewer_ids``);
- projects by URL-encoded path (``group%2Fproject``) or numeric id;
- offset pagination: ``page``/``per_page``, ``X-Page``, ``X-Per-Page``, ``X-Total``,
  ``X-Total-Pages``, ``X-Next-Page``, ``X-Prev-Page`` and a ``Link`` header;
- ``RateLimit-*`` headers on every answer;
- fault injection (``inject``): 5xx, a rate limit (429 + Retry-After + RateLimit-Reset), a
  timeout (the answer never comes) and a truncated body, for the next N requests matching a
  path pattern.

The way of a request (faults, git, the API, the record) is the hosted servers' (``hosted``).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlencode

from cicd_devkit.loopback import Answer, Fault, LoopbackHandler, RequestRecord
from cicd_devkit.servers.gitlab.api import Api, ApiError, ServerState
from cicd_devkit.servers.gitlab.payloads import BOT_USERNAME, Payloads
from cicd_devkit.servers.hosted import ApiRequest, HostedServer

log = logging.getLogger(__name__)

API_PREFIX = "/api/v4"
FAULT_KINDS = ("error", "ratelimit", "timeout", "truncate")

__all__ = ["Fault", "GitLabServer", "RequestRecord"]


class _Handler(LoopbackHandler):
    server_version = "nginx"
    do_GET = do_POST = do_PUT = do_DELETE = LoopbackHandler.serve


class GitLabServer(HostedServer[Api]):
    """See the module docstring. ``token``: the one access token the server accepts."""

    NAME = "GitLab"
    API_PREFIX = API_PREFIX
    HANDLER = _Handler
    FAULT_KINDS = FAULT_KINDS
    GIT_DENIED = b"HTTP Basic: Access denied.\n"
    GIT_NOT_FOUND = Answer(404, b"The project you were looking for could not be found.\n")
    NOT_FOUND = "404 Not Found"
    SERVER_ERROR = "500 Internal Server Error"

    RATE_LIMIT = 2000
    BOT = BOT_USERNAME

    def prepare(self, protect_default_branch: bool) -> None:
        self.state = ServerState(protect_default=protect_default_branch, users={self.BOT})

    def make_api(self) -> Api:
        return Api(self.local, Payloads(self.api_url, self.url), self.state)

    # ------------------------------------------------------------------ test controls
    def add_user(self, login: str) -> str:
        """Another user of the instance (``GET /users`` finds it); returns its token."""
        self.state.add_user(login)
        return super().add_user(login)

    def protect_branch(self, repo: str, name: str) -> None:
        """Protect a branch (or a wildcard such as ``stable/*``) of the project."""
        self.state.protected.setdefault(repo, set()).add(name)

    def set_failure_reason(self, repo: str, job_id: int, reason: str) -> None:
        """Report ``reason`` as the failure reason of a completed job (it then fails)."""
        self.state.failure_reasons[(repo, int(job_id))] = reason

    def add_fork_merge_request(
        self,
        repo: str,
        fork_project: str,
        branch: str,
        sha: str,
        target: str,
        title: str = "A change from a fork",
        description: str = "",
        author: str = "contributor",
    ) -> int:
        """An open merge request into ``repo`` from ``branch`` of the fork ``fork_project``,
        opened by ``author`` (a user of the instance)."""
        self.state.add_user(author)
        return self.api.add_fork_mr(
            repo, fork_project, branch, sha, target, title, description, author
        )

    # ------------------------------------------------------------------ answers
    def _rate_headers(self, remaining: int | None = None, reset_in: int = 60) -> dict[str, str]:
        left = max(0, self.rate_limit - self.rate_used) if remaining is None else remaining
        reset = int(time.time()) + reset_in
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(self.rate_used),
            "RateLimit-Remaining": str(left),
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
        }

    def json_answer(self, status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
        body = b"" if data is None else json.dumps(data).encode("utf-8")
        out = {"Content-Type": "application/json", "X-Request-Id": secrets.token_hex(13)}
        out.update(headers or {})
        return Answer(status, body, out)

    def fault_answer(self, fault: Fault) -> Answer:
        if fault.kind == "error":
            return self.json_answer(fault.status, {"message": f"{fault.status} Bad Gateway"})
        rate = self._rate_headers(remaining=0, reset_in=fault.retry_after)
        headers = {**rate, "Retry-After": str(fault.retry_after), "Content-Type": "text/plain"}
        return Answer(429, b"Retry later\n", headers)

    def error_payload(self, exc: ApiError) -> dict[str, Any]:
        return {"message": exc.message}

    # ------------------------------------------------------------------ the REST API
    def _user_of(self, token: str | None) -> str | None:
        """The user of ``token`` (compared in constant time), or None."""
        for known, user in list(self.users.items()):
            if token and secrets.compare_digest(token, known):
                return user
        return None

    def _authenticated(self, h: BaseHTTPRequestHandler) -> str | None:
        sent = h.headers.get("PRIVATE-TOKEN")
        if sent is None:
            scheme, _, value = h.headers.get("Authorization", "").partition(" ")
            sent = value.strip() if scheme.lower() == "bearer" else None
        return self._user_of(sent)

    def api_request(self, request: ApiRequest) -> tuple[Answer, bool]:
        user = self._authenticated(request.h)
        if user is None:
            return self.json_answer(401, {"message": "401 Unauthorized"}), False
        request.user = user
        with self._lock:
            self.rate_used += 1
        result = self.call_api(request)
        if result is None:
            return self.json_answer(400, {"error": "400 Bad request - invalid JSON"}), True
        status, payload, extra = result
        if isinstance(payload, bytes):
            return Answer(status, payload, {**extra, **self._rate_headers()}), True
        if isinstance(payload, list):
            payload, extra = self._paginate(request.path, request.query, payload, extra)
        return self.json_answer(status, payload, {**extra, **self._rate_headers()}), True

    def _paginate(
        self, path: str, query: dict[str, str], items: list[Any], extra: dict[str, str]
    ) -> tuple[list[Any], dict[str, str]]:
        per_page = max(1, min(100, int(query.get("per_page") or 20)))
        page = max(1, int(query.get("page") or 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        out = dict(extra)
        out.update(
            {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Total": str(len(items)),
                "X-Total-Pages": str(last),
                "X-Next-Page": str(page + 1) if page < last else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
            }
        )
        links = []
        for rel, number in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", last)):
            if (rel == "next" and page >= last) or (rel == "prev" and page <= 1):
                continue
            q = urlencode({**query, "page": number, "per_page": per_page})
            links.append(f'<{self.api_url}{path}?{q}>; rel="{rel}"')
        out["Link"] = ", ".join(links)
        return chunk, out

    # ------------------------------------------------------------------ git
    def git_user(self, h: BaseHTTPRequestHandler) -> str | None:
        scheme, _, value = h.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        if user and self._user_of(password):
            return user
        return None
