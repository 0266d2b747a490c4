"""What the GitHub- and GitLab-compatible servers share: a request's way through fault
injection, git's smart HTTP protocol or the REST API, and the record of it; git over HTTP is
``git http-backend`` on the local provider's bare repositories, behind the hosting's
authentication.

A server says how its hosting answers (``json_answer``, ``fault_answer``, ``error_payload``,
its git messages) and who git is (``git_user``); ``api_request`` answers the REST API. Each
token the server accepts is a user's (``users``): the token it is started with is the
orchestrator's bot, ``add_user`` makes another (somebody who writes to the same
repositories); what a request creates records its user as the author.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Unpack
from urllib.parse import parse_qsl, urlsplit

from cicd_devkit.loopback import (
    Answer,
    Fault,
    FaultOptions,
    LoopbackServer,
    RequestRecord,
    make_fault,
    parse_cgi,
    read_body,
    send_answer,
)
from cicd_devkit.servers.rest import ApiError, Result, RoutedApi
from cicd_orchestrator.ci.local.provider import LocalProvider

log = logging.getLogger(__name__)

ApiT = TypeVar("ApiT", bound=RoutedApi)

GIT_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+?)\.git(?P<rest>/.*)$")
_CGI_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME")
_CGI_HEADERS = (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL"))


def git_http_backend(
    repos: Path, h: BaseHTTPRequestHandler, path: str, query: str, body: bytes, user: str
) -> Answer:
    """The answer of ``git http-backend`` (git's smart HTTP protocol) for the repositories
    under ``repos`` to a request of the authenticated ``user``."""
    env = {k: os.environ[k] for k in _CGI_ENV if k in os.environ}
    env.update(
        GIT_PROJECT_ROOT=str(repos),
        GIT_HTTP_EXPORT_ALL="1",
        GIT_CONFIG_NOSYSTEM="1",
        PATH_INFO=path,
        QUERY_STRING=query,
        REQUEST_METHOD=h.command,
        CONTENT_TYPE=h.headers.get("Content-Type", ""),
        CONTENT_LENGTH=str(len(body)),
        REMOTE_USER=user,
        REMOTE_ADDR="127.0.0.1",
        GATEWAY_INTERFACE="CGI/1.1",
        SERVER_PROTOCOL="HTTP/1.1",
    )
    for header, var in _CGI_HEADERS:
        if h.headers.get(header):
            env[var] = h.headers[header]
    proc = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=300, check=False
    )
    if proc.stderr:
        log.debug("git http-backend: %s", proc.stderr.decode("utf-8", "replace")[-2000:])
    return parse_cgi(proc.stdout)


@dataclass
class ApiRequest:
    """A request to the REST API: ``path`` below the API's prefix, the query parsed."""

    h: BaseHTTPRequestHandler
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    #: who the request authenticated as (set once the server has checked it)
    user: str = ""

    def header(self, name: str, default: str = "") -> str:
        return str(self.h.headers.get(name, default))


class HostedServer(LoopbackServer[ApiT]):
    """A hosting's API and git on loopback, backed by a local provider (see the module
    docstring). ``token``: the access token the server accepts; ``rate_limit`` the requests
    it allows (``RATE_LIMIT`` by default), ``rate_used`` those charged so far;
    ``protect_default_branch``: whether the default branch of every repository is
    protected."""

    #: the kinds of fault ``inject`` accepts
    FAULT_KINDS: ClassVar[tuple[str, ...]]
    #: what git is told without valid credentials (with a Basic challenge, as git's askpass
    #: expects) and for a repository that is not there
    GIT_DENIED: ClassVar[bytes]
    GIT_NOT_FOUND: ClassVar[Answer]
    #: the messages of a 404 outside the API and of a server error
    NOT_FOUND: ClassVar[str] = "Not Found"
    SERVER_ERROR: ClassVar[str] = "server error"
    RATE_LIMIT: ClassVar[int]
    #: the login of the user of the token the server is started with (the orchestrator's)
    BOT: ClassVar[str]
    #: API paths outside ``API_PREFIX`` (GitHub Enterprise's ``/api/graphql``), each with the
    #: path the API's route table knows it by
    OTHER_API_PATHS: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        local_provider: LocalProvider,
        token: str,
        *,
        port: int = 0,
        rate_limit: int | None = None,
        protect_default_branch: bool = True,
    ) -> None:
        super().__init__(port)
        self.local = local_provider
        self.token = token
        self.rate_limit = self.RATE_LIMIT if rate_limit is None else rate_limit
        self.rate_used = 0
        #: the users by their token
        self.users: dict[str, str] = {token: self.BOT}
        self.prepare(protect_default_branch)

    @abc.abstractmethod
    def prepare(self, protect_default_branch: bool) -> None:
        """Set up what the hosting knows besides the local provider (``state``...)."""

    # ------------------------------------------------------------------ the hosting's side
    @abc.abstractmethod
    def json_answer(self, status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
        """A JSON answer with the hosting's headers."""

    @abc.abstractmethod
    def fault_answer(self, fault: Fault) -> Answer:
        """What the hosting answers for an injected fault (not a timeout or a truncation)."""

    @abc.abstractmethod
    def error_payload(self, exc: ApiError) -> dict[str, Any]: ...

    @abc.abstractmethod
    def git_user(self, h: BaseHTTPRequestHandler) -> str | None:
        """The user git authenticated as, or None."""

    @abc.abstractmethod
    def api_request(self, request: ApiRequest) -> tuple[Answer, bool]:
        """The answer of the REST API and whether the request counts against the rate
        limit."""

    def other_request(self, path: str, query: dict[str, str]) -> Answer:
        """The answer to a path that is neither git nor the API."""
        return self.json_answer(404, {"message": self.NOT_FOUND})

    # ------------------------------------------------------------------ test controls
    def add_user(self, login: str) -> str:
        """Another user of the hosting; returns the token the server accepts for them."""
        token = f"tok-{login}-{secrets.token_hex(12)}"
        self.users[token] = login
        return token

    def inject(self, kind: str, count: int = 1, **options: Unpack[FaultOptions]) -> Fault:
        """Make the next ``count`` requests (matching the regex ``path``, and ``method``)
        fail as ``kind``, one of ``FAULT_KINDS``: ``error`` (``status``), a rate limit (the
        server's kinds, ``retry_after`` or ``reset_in`` seconds), ``timeout`` (no answer for
        ``delay`` seconds) or ``truncate`` (half the body, then the connection closes)."""
        if kind not in self.FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(self.FAULT_KINDS)}")
        return self.add_fault(make_fault(kind, count, options))

    # ------------------------------------------------------------------ requests
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path, method, body = split.path, h.command, read_body(h)
        is_git = bool(GIT_PATH.match(path))
        fault = self.take_fault(method, path, is_git)
        record = RequestRecord(method, path, 0, split.query, headers=dict(h.headers.items()))
        record.fault = fault.kind if fault else None
        if fault is not None and fault.kind != "truncate":
            self._fail(h, record, fault)
            return
        try:
            answer, record.counted = self._route(h, path, split.query, body, is_git)
        except Exception as exc:  # a bug of the server must not hang the client
            log.exception("%s-server: %s %s failed", self.NAME.lower(), method, path)
            answer = self.json_answer(500, {"message": f"{self.SERVER_ERROR}: {exc}"})
        record.status = answer.status
        self.record(record)
        send_answer(h, answer, truncate=fault is not None)

    def _route(
        self, h: BaseHTTPRequestHandler, path: str, raw_query: str, body: bytes, is_git: bool
    ) -> tuple[Answer, bool]:
        query = dict(parse_qsl(raw_query))
        if is_git:
            return self._git(h, path, raw_query, body), False
        if path in self.OTHER_API_PATHS:
            below = self.OTHER_API_PATHS[path]
            return self.api_request(ApiRequest(h, h.command, below, query, body))
        if path == self.API_PREFIX or path.startswith(self.API_PREFIX + "/"):
            below = path[len(self.API_PREFIX) :] or "/"
            return self.api_request(ApiRequest(h, h.command, below, query, body))
        return self.other_request(path, query), False

    def _fail(self, h: BaseHTTPRequestHandler, record: RequestRecord, fault: Fault) -> None:
        if fault.kind == "timeout":
            self.record(record)  # status 0: no answer
            self.stall(h, fault.delay)
            return
        answer = self.fault_answer(fault)
        record.status = answer.status
        self.record(record)
        send_answer(h, answer)

    def call_api(self, request: ApiRequest) -> Result | None:
        """The API's (status, payload, extra headers) for a request; None when its body is
        not JSON."""
        try:
            data = json.loads(request.body) if request.body else None
        except ValueError:
            return None
        try:
            return self.api.dispatch(
                request.method, request.path, request.query, data, request.user
            )
        except ApiError as exc:
            return exc.status, self.error_payload(exc), {}

    # ------------------------------------------------------------------ git smart HTTP
    def _git(self, h: BaseHTTPRequestHandler, path: str, query: str, body: bytes) -> Answer:
        user = self.git_user(h)
        if user is None:
            challenge = {"WWW-Authenticate": f'Basic realm="{self.NAME}"'}
            return Answer(401, self.GIT_DENIED, {**challenge, "Content-Type": "text/plain"})
        match = GIT_PATH.match(path)
        assert match is not None
        try:
            self.local.repo_path(match.group("repo"))
        except Exception:
            return self.GIT_NOT_FOUND
        return git_http_backend(self.local.root / "repos", h, path, query, body, user)
