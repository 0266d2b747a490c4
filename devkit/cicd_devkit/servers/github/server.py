"""A GitHub-compatible HTTP server on loopback, backed by a local provider.

``GitHubServer(local, token).start()`` answers, under ``api_url`` (``<url>/api/v3``, as a
GitHub Enterprise server), the REST endpoints the GitHub provider uses with GitHub's
documented payload shapes, and serves the local provider's bare repositories over git's smart
HTTP protocol at ``<url>/<owner>/<name>.git`` (``git http-backend``), so PyGithub and git talk
to it as to github.com. A push reaches the bare repository, whose hook starts CI as usual.

What it models of GitHub:

- authentication: ``Authorization: token|Bearer <token>`` on the API (401 otherwise), HTTP
  Basic with the token as password for git (401 with a challenge, as git's askpass expects),
  GitHub App installation tokens minted for a JWT signed by a registered app key;
- users: each token is a user's (``GET /user``; the token the server starts with is
  ``cicd-orchestrator[bot]``, ``add_user`` adds others); an installation token is its app's
  bot (``<slug>[bot]``), which ``GET /user`` refuses (403) and ``GET /app`` with the app's
  JWT names; pull requests, issues and comments record who created them;
- conditional requests: an ``ETag`` on every GET, ``304 Not Modified`` for a matching
  ``If-None-Match``, which does not count against the rate limit;
- ``X-RateLimit-*`` headers counting every other authenticated request;
- pre-signed download URLs behind the 302 of the log endpoints (no token needed there);
- fault injection (``inject``): 5xx, a secondary rate limit (403 + Retry-After), the primary
  limit (403 + X-RateLimit-Remaining: 0 + X-RateLimit-Reset), a timeout (the answer never
  comes) and a truncated body, for the next N requests matching a path pattern.

The way of a request (faults, git, the API, the record) is the hosted servers' (``hosted``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import urlencode

from cicd_devkit.loopback import Answer, Fault, LoopbackHandler, RequestRecord
from cicd_devkit.servers.github.api import Api, ApiError, ServerState
from cicd_devkit.servers.github.payloads import BOT_LOGIN, Payloads
from cicd_devkit.servers.hosted import ApiRequest, HostedServer

log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
FAULT_KINDS = ("error", "secondary", "primary", "timeout", "truncate")
_BLOB_PATH = re.compile(r"^/_blobs/(?P<kind>job-logs|run-logs)/(?P<repo>[^/]+/[^/]+)/(?P<id>\d+)$")
_PAGED_KEYS = ("workflow_runs", "jobs", "check_runs")
_DOC = "https://docs.github.com/rest"
_DOC_AUTH = "https://docs.github.com/rest/overview/authenticating-to-the-rest-api"
_DOC_RATE = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)

__all__ = ["Fault", "GitHubServer", "RequestRecord"]


class _Handler(LoopbackHandler):
    server_version = "GitHub.com"
    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = LoopbackHandler.serve


class GitHubServer(HostedServer[Api]):
    """See the module docstring. ``token``: the one token the server accepts (besides the
    installation tokens it mints)."""

    NAME = "GitHub"
    API_PREFIX = API_PREFIX
    #: GitHub Enterprise's GraphQL endpoint (PyGithub's for an ``.../api/v3`` base URL)
    OTHER_API_PATHS: ClassVar[dict[str, str]] = {"/api/graphql": "/graphql"}
    HANDLER = _Handler
    FAULT_KINDS = FAULT_KINDS
    GIT_DENIED = b"Invalid username or token. Password authentication is not supported.\n"
    GIT_NOT_FOUND = Answer(404, b"Repository not found.\n", {"Content-Type": "text/plain"})

    RATE_LIMIT = 5000
    BOT = BOT_LOGIN

    def prepare(self, protect_default_branch: bool) -> None:
        self.rate_reset = int(time.time()) + 3600
        self.state = ServerState(protect_default=protect_default_branch)
        self._apps: dict[str, tuple[str, int, str]] = {}
        self._installation_tokens: set[str] = set()
        self._secret = secrets.token_bytes(32)

    def make_api(self) -> Api:
        return Api(self.local, Payloads(self.api_url, self.url), self.state, self._sign)

    # ------------------------------------------------------------------ test controls
    def protect_branch(self, repo: str, branch: str) -> None:
        self.state.protected.setdefault(repo, set()).add(branch)

    def add_fork_pull_request(
        self,
        repo: str,
        fork_repo: str,
        branch: str,
        sha: str,
        base: str,
        title: str = "A change from a fork",
        body: str = "",
        author: str = "contributor",
    ) -> int:
        """An open pull request into ``repo`` from ``branch`` of the fork ``fork_repo``,
        opened by ``author``."""
        return self.api.add_fork_pull(repo, fork_repo, branch, sha, base, title, body, author)

    def replace_run_logs(self, repo: str, run_id: int, archive: bytes) -> None:
        """Serve ``archive`` as the log archive of the run (a forged zip, for instance)."""
        self.state.run_archives[(repo, int(run_id))] = archive

    def register_app(
        self,
        app_id: int | str,
        public_key_pem: str,
        installation_id: int,
        slug: str = "cicd-orchestrator",
    ) -> None:
        """Accept JWTs of a GitHub App signed by the key and mint installation tokens (its
        bot is ``<slug>[bot]``)."""
        self._apps[str(app_id)] = (public_key_pem, int(installation_id), slug)

    @property
    def rate_remaining(self) -> int:
        return max(0, self.rate_limit - self.rate_used)

    def counted(self, pattern: str = "") -> list[RequestRecord]:
        rx = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if r.counted and rx.search(r.path)]

    # ------------------------------------------------------------------ answers
    def _rate_headers(
        self, remaining: int | None = None, reset: int | None = None
    ) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_remaining if remaining is None else remaining),
            "X-RateLimit-Reset": str(self.rate_reset if reset is None else reset),
            "X-RateLimit-Used": str(self.rate_used),
            "X-RateLimit-Resource": "core",
        }

    def json_answer(self, status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
        body = b"" if data is None else json.dumps(data, indent=1).encode("utf-8")
        out = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
        }
        out.update(headers or {})
        return Answer(status, body, out)

    def fault_answer(self, fault: Fault) -> Answer:
        if fault.kind == "secondary":
            headers = {**self._rate_headers(), "Retry-After": str(fault.retry_after)}
            return self.json_answer(
                403, {"message": _SECONDARY, "documentation_url": _DOC_RATE}, headers
            )
        if fault.kind == "primary":
            reset = int(time.time()) + fault.reset_in
            message = "API rate limit exceeded for user ID 1."
            headers = self._rate_headers(remaining=0, reset=reset)
            return self.json_answer(
                403, {"message": message, "documentation_url": _DOC_RATE}, headers
            )
        return self.json_answer(fault.status, {"message": "Server Error"}, self._rate_headers())

    def error_payload(self, exc: ApiError) -> dict[str, Any]:
        return {"message": exc.message, "documentation_url": _DOC}

    # ------------------------------------------------------------------ the REST API
    def _authenticated(self, h: BaseHTTPRequestHandler) -> str | None:
        auth = h.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip() in self.users:
            return value.strip()
        return None

    def api_request(self, request: ApiRequest) -> tuple[Answer, bool]:
        app = re.match(r"^/app/installations/(\d+)/access_tokens$", request.path)
        if app and request.method == "POST":
            return self._installation_token(request.h, int(app.group(1))), False
        if request.path == "/app" and request.method == "GET":
            return self._app(request.h), False
        token = self._authenticated(request.h)
        if token is None:
            sent = request.header("Authorization")
            message = "Bad credentials" if sent else "Requires authentication"
            return self.json_answer(
                401, {"message": message, "documentation_url": _DOC_AUTH}
            ), False
        if request.path == "/user" and token in self._installation_tokens:
            message = "Resource not accessible by integration"
            return self.json_answer(403, {"message": message, "documentation_url": _DOC}), True
        request.user = self.users[token]
        result = self.call_api(request)
        if result is None:
            return self.json_answer(400, {"message": "Problems parsing JSON"}), True
        status, payload, extra = result
        payload, extra = self._paginate(request.path, request.query, payload, extra)
        answer = self.json_answer(status, payload, extra)
        if request.method == "GET" and status == 200:
            not_modified = self._conditional(request.h, answer)
            if not_modified is not None:
                return not_modified, False
        with self._lock:
            self.rate_used += 1
        answer.headers.update(self._rate_headers())
        return answer, True

    def _conditional(self, h: BaseHTTPRequestHandler, answer: Answer) -> Answer | None:
        """Give the answer an ETag; ``304 Not Modified`` (not counted) when the client sent
        it in ``If-None-Match``."""
        etag = '"' + hashlib.sha256(answer.body).hexdigest()[:40] + '"'
        answer.headers["ETag"] = etag
        answer.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
        sent = [t.strip() for t in h.headers.get("If-None-Match", "").split(",")]
        if etag in sent or f"W/{etag}" in sent:
            return Answer(304, b"", {"ETag": etag, **self._rate_headers()})
        return None

    def _paginate(
        self, path: str, query: dict[str, str], payload: Any, extra: dict[str, str]
    ) -> tuple[Any, dict[str, str]]:
        """A page of a list (or of the list under a paged key) with GitHub's Link header."""
        key = next((k for k in _PAGED_KEYS if isinstance(payload, dict) and k in payload), None)
        if key is None and not isinstance(payload, list):
            return payload, extra
        items = payload[key] if key else payload
        per_page = max(1, min(100, int(query.get("per_page") or 30)))
        page = max(1, int(query.get("page") or 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        for rel, number in (("next", page + 1), ("last", last), ("prev", page - 1), ("first", 1)):
            if (rel in ("next", "last") and page < last) or (rel in ("prev", "first") and page > 1):
                q = urlencode({**query, "page": number, "per_page": per_page})
                links.append(f'<{self.api_url}{path}?{q}>; rel="{rel}"')
        out = dict(extra)
        if links:
            out["Link"] = ", ".join(links)
        if key:
            return {**payload, "total_count": len(items), key: chunk}, out
        return chunk, out

    def _app_of(self, h: BaseHTTPRequestHandler) -> tuple[str, int, str] | None:
        """(app id, installation, slug) of the app whose JWT signs the request, or None."""
        import jwt

        scheme, _, value = h.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = jwt.decode(value, options={"verify_signature": False})
            app_id = str(claims.get("iss"))
            key, installation, slug = self._apps[app_id]
            jwt.decode(value, key, algorithms=["RS256"])
        except (KeyError, jwt.PyJWTError):
            return None
        return app_id, installation, slug

    def _app(self, h: BaseHTTPRequestHandler) -> Answer:
        """``GET /app``: the app of the JWT."""
        app = self._app_of(h)
        if app is None:
            return self.json_answer(401, {"message": "A JSON web token could not be decoded"})
        app_id, _, slug = app
        owner = self.api.p.user("acme")
        return self.json_answer(
            200, {"id": int(app_id), "slug": slug, "name": slug, "owner": owner}
        )

    def _installation_token(self, h: BaseHTTPRequestHandler, installation_id: int) -> Answer:
        app = self._app_of(h)
        if app is None:
            return self.json_answer(401, {"message": "A JSON web token could not be decoded"})
        _, installation, slug = app
        if installation != installation_id:
            return self.json_answer(404, {"message": "Not Found"})
        token = "ghs_" + secrets.token_hex(18)
        self.users[token] = f"{slug}[bot]"
        self._installation_tokens.add(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return self.json_answer(201, self.api.p.installation_token(token, expires))

    # ------------------------------------------------------------------ downloads
    def _sign(self, path: str) -> str:
        expires = str(int(time.time()) + 300)
        sig = hmac.new(self._secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
        return urlencode({"expires": expires, "sig": sig})

    def other_request(self, path: str, query: dict[str, str]) -> Answer:
        """A download behind a pre-signed URL (a job's log, a run's log archive)."""
        match = _BLOB_PATH.match(path)
        if match is None:
            return super().other_request(path, query)
        expires = query.get("expires", "0")
        sig = hmac.new(self._secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, query.get("sig", "")) or int(expires) < time.time():
            return Answer(403, b"<Error><Code>AuthenticationFailed</Code></Error>")
        repo, ident = match.group("repo"), int(match.group("id"))
        if match.group("kind") == "job-logs":
            data = self.api.job_log_bytes(repo, ident)
            return Answer(200, data, {"Content-Type": "text/plain; charset=utf-8"})
        data = self.api.run_archive(repo, ident)
        return Answer(200, data, {"Content-Type": "application/zip"})

    # ------------------------------------------------------------------ git
    def git_user(self, h: BaseHTTPRequestHandler) -> str | None:
        scheme, _, value = h.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None
            return user or "git" if password in self.users else None
        return "x-access-token" if self._authenticated(h) else None
