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
- conditional requests: an ``ETag`` on every GET, ``304 Not Modified`` for a matching
  ``If-None-Match``, which does not count against the rate limit;
- ``X-RateLimit-*`` headers counting every other authenticated request;
- pre-signed download URLs behind the 302 of the log endpoints (no token needed there);
- fault injection (``inject``): 5xx, a secondary rate limit (403 + Retry-After), the primary
  limit (403 + X-RateLimit-Remaining: 0 + X-RateLimit-Reset), a timeout (the answer never
  comes) and a truncated body, for the next N requests matching a path pattern.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.testing.github_server.api import Api, ApiError, ServerState
from cicd_orchestrator.testing.github_server.payloads import Payloads
from cicd_orchestrator.testing.loopback import (
    Answer,
    LoopbackServer,
    parse_cgi,
    read_body,
    send_answer,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
FAULT_KINDS = ("error", "secondary", "primary", "timeout", "truncate")
_GIT_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+?)\.git(?P<rest>/.*)$")
_BLOB_PATH = re.compile(r"^/_blobs/(?P<kind>job-logs|run-logs)/(?P<repo>[^/]+/[^/]+)/(?P<id>\d+)$")
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
    reset_in: int = 1
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
    counted: bool
    fault: str | None = None


class _Handler(BaseHTTPRequestHandler):
    server_version = "GitHub.com"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    owner: GitHubServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("github-server: " + format, *args)

    def _serve(self) -> None:
        self.owner.handle(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class GitHubServer(LoopbackServer[Api]):
    """See the module docstring. ``token``: the one token the server accepts (besides the
    installation tokens it mints)."""

    NAME = "GitHub"
    API_PREFIX = API_PREFIX
    HANDLER = _Handler

    def __init__(
        self,
        local_provider: LocalProvider,
        token: str,
        *,
        port: int = 0,
        rate_limit: int = 5000,
        protect_default_branch: bool = True,
    ) -> None:
        super().__init__(port)
        self.local = local_provider
        self.token = token
        self.rate_limit = rate_limit
        self.rate_used = 0
        self.rate_reset = int(time.time()) + 3600
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self.state = ServerState(protect_default=protect_default_branch)
        self._tokens = {token}
        self._apps: dict[str, tuple[str, int]] = {}
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def make_api(self) -> Api:
        return Api(self.local, Payloads(self.api_url, self.url), self.state, self._sign)

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
        reset_in: int = 1,
        delay: float = 3.0,
    ) -> Fault:
        """Make the next ``count`` requests (matching the regex ``path``) fail as ``kind``:
        ``error`` (``status``), ``secondary`` (403 + Retry-After), ``primary`` (403,
        remaining 0, reset in ``reset_in`` s), ``timeout`` (no answer for ``delay`` s) or
        ``truncate`` (half the body, then the connection closes)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        fault = Fault(
            kind,
            count,
            re.compile(path) if path else None,
            method.upper() if method else None,
            status,
            retry_after,
            reset_in,
            delay,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

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
    ) -> int:
        """An open pull request into ``repo`` from ``branch`` of the fork ``fork_repo``."""
        return self.api.add_fork_pull(repo, fork_repo, branch, sha, base, title, body)

    def replace_run_logs(self, repo: str, run_id: int, archive: bytes) -> None:
        """Serve ``archive`` as the log archive of the run (a forged zip, for instance)."""
        self.state.run_archives[(repo, int(run_id))] = archive

    def register_app(self, app_id: int | str, public_key_pem: str, installation_id: int) -> None:
        """Accept JWTs of a GitHub App signed by the key and mint installation tokens."""
        self._apps[str(app_id)] = (public_key_pem, int(installation_id))

    @property
    def rate_remaining(self) -> int:
        return max(0, self.rate_limit - self.rate_used)

    def counted(self, pattern: str = "") -> list[RequestRecord]:
        rx = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if r.counted and rx.search(r.path)]

    # ------------------------------------------------------------------ request handling
    def handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, dict(parse_qsl(split.query))
        method = h.command
        body = read_body(h)
        is_git = bool(_GIT_PATH.match(path))
        fault = self._take_fault(method, path, is_git)
        if fault is not None and fault.kind != "truncate":
            self._fail(h, method, path, fault)
            return
        try:
            if is_git:
                answer, counted = self._git(h, method, path, split.query, body), False
            elif _BLOB_PATH.match(path):
                answer, counted = self._blob(path, query), False
            elif path.startswith(API_PREFIX):
                answer, counted = self._api_request(
                    h, method, path[len(API_PREFIX) :] or "/", query, body
                )
            else:
                answer, counted = self._json(404, {"message": "Not Found"}), False
        except Exception as exc:  # a bug of the server must not hang the client
            log.exception("github-server: %s %s failed", method, path)
            answer, counted = self._json(500, {"message": f"server error: {exc}"}), False
        self._record(method, path, answer.status, counted, fault.kind if fault else None)
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
        self, method: str, path: str, status: int, counted: bool, fault: str | None
    ) -> None:
        with self._lock:
            self.requests.append(RequestRecord(method, path, status, counted, fault))

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

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
        body = b"" if data is None else json.dumps(data, indent=1).encode("utf-8")
        out = {
            "Content-Type": "application/json; charset=utf-8",
            "X-GitHub-Media-Type": "github.v3",
        }
        out["X-GitHub-Request-Id"] = secrets.token_hex(8).upper()
        out.update(headers or {})
        return Answer(status, body, out)

    def _fail(self, h: _Handler, method: str, path: str, fault: Fault) -> None:
        self._record(
            method, path, 0 if fault.kind == "timeout" else fault.status, False, fault.kind
        )
        if fault.kind == "timeout":
            deadline = time.monotonic() + fault.delay
            while time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.05)
            h.close_connection = True
            return
        if fault.kind == "error":
            answer = self._json(fault.status, {"message": "Server Error"}, self._rate_headers())
        elif fault.kind == "secondary":
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again."
            )
            headers = {**self._rate_headers(), "Retry-After": str(fault.retry_after)}
            answer = self._json(403, {"message": message, "documentation_url": _DOC_RATE}, headers)
        else:  # primary
            reset = int(time.time()) + fault.reset_in
            message = "API rate limit exceeded for user ID 1."
            answer = self._json(
                403,
                {"message": message, "documentation_url": _DOC_RATE},
                self._rate_headers(remaining=0, reset=reset),
            )
        send_answer(h, answer)

    # ------------------------------------------------------------------ the REST API
    def _authenticated(self, h: _Handler) -> str | None:
        auth = h.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip() in self._tokens:
            return value.strip()
        return None

    def _api_request(
        self, h: _Handler, method: str, path: str, query: dict[str, str], body: bytes
    ) -> tuple[Answer, bool]:
        app = re.match(r"^/app/installations/(\d+)/access_tokens$", path)
        if app and method == "POST":
            return self._installation_token(h, int(app.group(1))), False
        if self._authenticated(h) is None:
            message = (
                "Bad credentials" if h.headers.get("Authorization") else "Requires authentication"
            )
            return self._json(401, {"message": message, "documentation_url": _DOC_AUTH}), False
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return self._json(400, {"message": "Problems parsing JSON"}), True
        try:
            status, payload, extra = self.api.dispatch(method, path, query, data)
        except ApiError as exc:
            status, payload, extra = (
                exc.status,
                {"message": exc.message, "documentation_url": _DOC},
                {},
            )
        if isinstance(payload, dict) and "workflow_runs" in payload:
            payload, extra = self._paginate(path, query, payload, "workflow_runs", extra)
        elif isinstance(payload, dict) and "jobs" in payload:
            payload, extra = self._paginate(path, query, payload, "jobs", extra)
        elif isinstance(payload, dict) and "check_runs" in payload:
            payload, extra = self._paginate(path, query, payload, "check_runs", extra)
        elif isinstance(payload, list):
            payload, extra = self._paginate(path, query, payload, None, extra)
        answer = self._json(status, payload, extra)
        if method == "GET" and status == 200:
            etag = '"' + hashlib.sha256(answer.body).hexdigest()[:40] + '"'
            answer.headers["ETag"] = etag
            answer.headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
            sent = [t.strip() for t in h.headers.get("If-None-Match", "").split(",")]
            if etag in sent or f"W/{etag}" in sent:
                answer = Answer(304, b"", {"ETag": etag, **self._rate_headers()})
                return answer, False
        with self._lock:
            self.rate_used += 1
        answer.headers.update(self._rate_headers())
        return answer, True

    def _paginate(
        self, path: str, query: dict[str, str], payload: Any, key: str | None, extra: dict[str, str]
    ) -> tuple[Any, dict[str, str]]:
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

    def _installation_token(self, h: _Handler, installation_id: int) -> Answer:
        import jwt

        scheme, _, value = h.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return self._json(401, {"message": "A JSON web token could not be decoded"})
        try:
            claims = jwt.decode(value, options={"verify_signature": False})
            key, installation = self._apps[str(claims.get("iss"))]
            jwt.decode(value, key, algorithms=["RS256"])
        except (KeyError, jwt.PyJWTError):
            return self._json(401, {"message": "A JSON web token could not be decoded"})
        if installation != installation_id:
            return self._json(404, {"message": "Not Found"})
        token = "ghs_" + secrets.token_hex(18)
        self._tokens.add(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return self._json(201, self.api.p.installation_token(token, expires))

    # ------------------------------------------------------------------ downloads
    def _sign(self, path: str) -> str:
        expires = str(int(time.time()) + 300)
        sig = hmac.new(self._secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
        return urlencode({"expires": expires, "sig": sig})

    def _blob(self, path: str, query: dict[str, str]) -> Answer:
        expires = query.get("expires", "0")
        sig = hmac.new(self._secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, query.get("sig", "")) or int(expires) < time.time():
            return Answer(403, b"<Error><Code>AuthenticationFailed</Code></Error>")
        match = _BLOB_PATH.match(path)
        assert match is not None
        repo, ident = match.group("repo"), int(match.group("id"))
        if match.group("kind") == "job-logs":
            data = self.api.job_log_bytes(repo, ident)
            return Answer(200, data, {"Content-Type": "text/plain; charset=utf-8"})
        data = self.api.run_archive(repo, ident)
        return Answer(200, data, {"Content-Type": "application/zip"})

    # ------------------------------------------------------------------ git smart HTTP
    def _git_user(self, h: _Handler) -> str | None:
        auth = h.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None
            return user or "git" if password in self._tokens else None
        return "x-access-token" if self._authenticated(h) else None

    def _git(self, h: _Handler, method: str, path: str, query: str, body: bytes) -> Answer:
        user = self._git_user(h)
        if user is None:
            return Answer(
                401,
                b"Invalid username or token. Password authentication is not supported.\n",
                {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"},
            )
        match = _GIT_PATH.match(path)
        assert match is not None
        try:
            self.local.repo_path(match.group("repo"))
        except Exception:
            return Answer(404, b"Repository not found.\n", {"Content-Type": "text/plain"})
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


_DOC = "https://docs.github.com/rest"
_DOC_AUTH = "https://docs.github.com/rest/overview/authenticating-to-the-rest-api"
_DOC_RATE = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
