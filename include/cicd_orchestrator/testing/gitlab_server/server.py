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
- projects by URL-encoded path (``group%2Fproject``) or numeric id;
- offset pagination: ``page``/``per_page``, ``X-Page``, ``X-Per-Page``, ``X-Total``,
  ``X-Total-Pages``, ``X-Next-Page``, ``X-Prev-Page`` and a ``Link`` header;
- ``RateLimit-*`` headers on every answer;
- fault injection (``inject``): 5xx, a rate limit (429 + Retry-After + RateLimit-Reset), a
  timeout (the answer never comes) and a truncated body, for the next N requests matching a
  path pattern.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.testing.gitlab_server.api import Api, ApiError, ServerState
from cicd_orchestrator.testing.gitlab_server.payloads import Payloads
from cicd_orchestrator.testing.loopback import (
    Answer,
    LoopbackServer,
    parse_cgi,
    read_body,
    send_answer,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v4"
FAULT_KINDS = ("error", "ratelimit", "timeout", "truncate")
_GIT_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+?)\.git(?P<rest>/.*)$")
_CGI_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")


@dataclass
class Fault:
    """The next ``count`` requests matching ``path`` (and ``method``) fail as ``kind``."""

    kind: str
    count: int = 1
    path: re.Pattern[str] | None = None
    method: str | None = None
    status: int = 502
    retry_after: int = 1
    delay: float = 3.0
    fired: int = 0

    def matches(self, method: str, path: str, is_git: bool) -> bool:
        if self.count <= 0 or (self.method and self.method != method):
            return False
        if self.path is None:
            return not is_git  # git traffic only when a pattern names it
        return bool(self.path.search(path))


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int
    fault: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server_version = "nginx"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    owner: GitLabServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gitlab-server: " + format, *args)

    def _serve(self) -> None:
        self.owner.handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class GitLabServer(LoopbackServer[Api]):
    """See the module docstring. ``token``: the one access token the server accepts."""

    NAME = "GitLab"
    API_PREFIX = API_PREFIX
    HANDLER = _Handler

    def __init__(
        self,
        local_provider: LocalProvider,
        token: str,
        *,
        port: int = 0,
        rate_limit: int = 2000,
        protect_default_branch: bool = True,
    ) -> None:
        super().__init__(port)
        self.local = local_provider
        self.token = token
        self.rate_limit = rate_limit
        self.rate_used = 0
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.state = ServerState(protect_default=protect_default_branch)
        self._lock = threading.Lock()

    def make_api(self) -> Api:
        return Api(self.local, Payloads(self.api_url, self.url), self.state)

    # ------------------------------------------------------------------ test controls
    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        status: int = 502,
        retry_after: int = 1,
        delay: float = 3.0,
    ) -> Fault:
        """Make the next ``count`` requests (matching the regex ``path``) fail as ``kind``:
        ``error`` (``status``), ``ratelimit`` (429 + Retry-After ``retry_after`` s),
        ``timeout`` (no answer for ``delay`` s) or ``truncate`` (half the body, then the
        connection closes)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        fault = Fault(
            kind,
            count,
            re.compile(path) if path else None,
            method.upper() if method else None,
            status,
            retry_after,
            delay,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

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
    ) -> int:
        """An open merge request into ``repo`` from ``branch`` of the fork ``fork_project``."""
        return self.api.add_fork_mr(repo, fork_project, branch, sha, target, title)

    # ------------------------------------------------------------------ request handling
    def handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, dict(parse_qsl(split.query))
        method = h.command
        body = read_body(h)
        is_git = bool(_GIT_PATH.match(path))
        fault = self._take_fault(method, path, is_git)
        headers = {k: v for k, v in h.headers.items()}
        if fault is not None and fault.kind != "truncate":
            self._fail(h, method, path, fault, headers)
            return
        try:
            if is_git:
                answer = self._git(h, method, path, split.query, body)
            elif path.startswith(API_PREFIX + "/"):
                answer = self._api_request(h, method, path[len(API_PREFIX) :], query, body)
            else:
                answer = self._json(404, {"message": "404 Not Found"})
        except Exception as exc:  # a bug of the server must not hang the client
            log.exception("gitlab-server: %s %s failed", method, path)
            answer = self._json(500, {"message": f"500 Internal Server Error: {exc}"})
        self._record(
            method,
            split.path + ("?" + split.query if split.query else ""),
            answer.status,
            fault.kind if fault else None,
            headers,
        )
        send_answer(h, answer, truncate=fault is not None)

    def _take_fault(self, method: str, path: str, is_git: bool) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, is_git):
                    fault.count -= 1
                    fault.fired += 1
                    return fault
        return None

    def _record(
        self, method: str, path: str, status: int, fault: str | None, headers: dict[str, str]
    ) -> None:
        with self._lock:
            self.requests.append(RequestRecord(method, path, status, fault, headers))

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

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
        body = b"" if data is None else json.dumps(data).encode("utf-8")
        out = {"Content-Type": "application/json", "X-Request-Id": secrets.token_hex(13)}
        out.update(headers or {})
        return Answer(status, body, out)

    def _fail(
        self, h: _Handler, method: str, path: str, fault: Fault, headers: dict[str, str]
    ) -> None:
        status = (
            0 if fault.kind == "timeout" else 429 if fault.kind == "ratelimit" else fault.status
        )
        self._record(method, path, status, fault.kind, headers)
        if fault.kind == "timeout":
            deadline = time.monotonic() + fault.delay
            while time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.05)
            h.close_connection = True
            return
        if fault.kind == "error":
            answer = self._json(fault.status, {"message": f"{fault.status} Bad Gateway"})
        else:
            rate = self._rate_headers(remaining=0, reset_in=fault.retry_after)
            answer = Answer(
                429,
                b"Retry later\n",
                {**rate, "Retry-After": str(fault.retry_after), "Content-Type": "text/plain"},
            )
        send_answer(h, answer)

    # ------------------------------------------------------------------ the REST API
    def _authenticated(self, h: _Handler) -> bool:
        sent = h.headers.get("PRIVATE-TOKEN")
        if sent is None:
            scheme, _, value = h.headers.get("Authorization", "").partition(" ")
            sent = value.strip() if scheme.lower() == "bearer" else None
        return bool(sent) and secrets.compare_digest(str(sent), self.token)

    def _api_request(
        self, h: _Handler, method: str, path: str, query: dict[str, str], body: bytes
    ) -> Answer:
        if not self._authenticated(h):
            return self._json(401, {"message": "401 Unauthorized"})
        with self._lock:
            self.rate_used += 1
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return self._json(400, {"error": "400 Bad request - invalid JSON"})
        try:
            status, payload, extra = self.api.dispatch(method, path, query, data)
        except ApiError as exc:
            status, payload, extra = exc.status, {"message": exc.message}, {}
        if isinstance(payload, bytes):
            return Answer(status, payload, {**extra, **self._rate_headers()})
        if isinstance(payload, list):
            payload, extra = self._paginate(path, query, payload, extra)
        return self._json(status, payload, {**extra, **self._rate_headers()})

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

    # ------------------------------------------------------------------ git smart HTTP
    def _git_user(self, h: _Handler) -> str | None:
        scheme, _, value = h.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        if user and password and secrets.compare_digest(password, self.token):
            return user
        return None

    def _git(self, h: _Handler, method: str, path: str, query: str, body: bytes) -> Answer:
        user = self._git_user(h)
        if user is None:
            return Answer(
                401,
                b"HTTP Basic: Access denied.\n",
                {"WWW-Authenticate": 'Basic realm="GitLab"', "Content-Type": "text/plain"},
            )
        match = _GIT_PATH.match(path)
        assert match is not None
        try:
            self.local.repo_path(match.group("repo"))
        except Exception:
            return Answer(404, b"The project you were looking for could not be found.\n")
        env = {k: os.environ[k] for k in _CGI_ENV if k in os.environ}
        env.update(
            GIT_PROJECT_ROOT=str(self.local.root / "repos"),
            GIT_HTTP_EXPORT_ALL="1",
            GIT_CONFIG_NOSYSTEM="1",
            PATH_INFO=path,
            QUERY_STRING=query,
            REQUEST_METHOD=method,
            CONTENT_TYPE=h.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_USER=user,
            REMOTE_ADDR="127.0.0.1",
            GATEWAY_INTERFACE="CGI/1.1",
            SERVER_PROTOCOL="HTTP/1.1",
        )
        for header, var in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "GIT_PROTOCOL"),
        ):
            if h.headers.get(header):
                env[var] = h.headers[header]
        proc = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if proc.stderr:
            log.debug("git http-backend: %s", proc.stderr.decode("utf-8", "replace")[-2000:])
        return parse_cgi(proc.stdout)
