"""What the CI-compatible test servers share: a threaded HTTP server on 127.0.0.1 (a free port
unless one is given), its URLs and the API object behind it; the record of the requests it
answered; the faults a test injects into its next answers; reading requests and writing
answers."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypedDict, TypeVar

log = logging.getLogger(__name__)

ApiT = TypeVar("ApiT")
#: how often a serving server looks whether it was asked to stop (seconds)
STOP_POLL = 0.02


@dataclass
class Fault:
    """The next ``count`` requests matching ``path`` (and ``method``) fail as ``kind``: an
    ``error`` with ``status``, a rate limit (the server's kinds, with ``retry_after`` or
    ``reset_in`` seconds), a ``timeout`` (no answer for ``delay`` seconds) or a ``truncate``d
    body."""

    kind: str = "error"
    count: int = 1
    path: re.Pattern[str] | None = None
    method: str | None = None
    status: int = 502
    retry_after: int = 1
    reset_in: int = 1
    delay: float = 3.0
    fired: int = 0

    def matches(self, method: str, path: str, is_git: bool = False) -> bool:
        if self.count <= 0 or (self.method and self.method != method):
            return False
        if self.path is None:
            return not is_git  # git traffic only when a pattern names it
        return bool(self.path.search(path))


class FaultOptions(TypedDict, total=False):
    """How an injected fault is met (see ``Fault``): by the requests whose path matches the
    regex ``path`` (and whose method is ``method``)."""

    path: str | None
    method: str | None
    status: int
    retry_after: int
    reset_in: int
    delay: float


def make_fault(kind: str, count: int, options: FaultOptions) -> Fault:
    path, method = options.get("path"), options.get("method")
    return Fault(
        kind,
        count,
        re.compile(path) if path else None,
        method.upper() if method else None,
        status=options.get("status", 502),
        retry_after=options.get("retry_after", 1),
        reset_in=options.get("reset_in", 1),
        delay=options.get("delay", 3.0),
    )


@dataclass
class RequestRecord:
    """One request a server answered: what was asked, the answer's status, and what the
    server noted about it (counted against a rate limit, the fault it met, the user)."""

    method: str
    path: str
    status: int
    query: str = ""
    counted: bool = False
    fault: str | None = None
    user: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackHandler(BaseHTTPRequestHandler):
    """Hands every request to the server (``owner``); a subclass names the methods it
    serves (``do_GET = do_POST = LoopbackHandler.serve``) and its ``server_version``."""

    sys_version = ""
    protocol_version = "HTTP/1.0"
    owner: Any

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(f"{self.owner.NAME.lower()}-server: {format}", *args)

    def serve(self) -> None:
        self.owner.handle(self)


class LoopbackServer(Generic[ApiT]):
    """Subclasses set ``NAME``, ``API_PREFIX``, ``HANDLER`` (whose ``owner`` becomes the
    server), answer requests in ``handle`` and may build an API object in ``make_api``.
    ``requests`` records what was answered, ``faults`` what the next answers will be."""

    NAME = "server"
    API_PREFIX = ""
    HANDLER: type[BaseHTTPRequestHandler]

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._api: ApiT | None = None

    def make_api(self) -> ApiT | None:
        """The object that answers the API (None: the handler answers by itself)."""
        return None

    def start(self) -> Self:
        handler: Any = type("Handler", (self.HANDLER,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._api = self.make_api()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": STOP_POLL},
            name=f"{self.NAME}-server",
            daemon=True,
        )
        self._thread.start()
        log.info("%s-compatible server on %s", self.NAME, self.url)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}{self.API_PREFIX}"

    @property
    def api(self) -> ApiT:
        if self._api is None:
            raise RuntimeError("the server is not started")
        return self._api

    # ------------------------------------------------------------------ faults and records
    def add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str, is_git: bool = False) -> Fault | None:
        """The first fault the request meets (it counts as fired), or None."""
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, is_git):
                    fault.count -= 1
                    fault.fired += 1
                    return fault
        return None

    def record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def stall(self, h: BaseHTTPRequestHandler, seconds: float) -> None:
        """Answer nothing for ``seconds`` (a timeout fault), then drop the connection."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
        h.close_connection = True


@dataclass
class Answer:
    """One HTTP answer of a test server."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The request's body, chunked (as git sends it) or with a Content-Length."""
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(h.rfile.readline().strip().split(b";")[0] or b"0", 16)
            if size == 0:
                h.rfile.readline()
                break
            chunks.append(h.rfile.read(size))
            h.rfile.readline()
        return b"".join(chunks)
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def send_answer(h: BaseHTTPRequestHandler, answer: Answer, truncate: bool = False) -> None:
    """Write ``answer``; ``truncate``: half the body, then the connection closes (a fault)."""
    try:
        h.send_response(answer.status)
        headers = dict(answer.headers)
        headers["Content-Length"] = str(len(answer.body))
        for key, value in headers.items():
            h.send_header(key, value)
        h.end_headers()
        body = answer.body[: len(answer.body) // 2] if truncate else answer.body
        if body and h.command != "HEAD":
            h.wfile.write(body)
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError):
        pass
    if truncate:
        h.close_connection = True


def parse_cgi(output: bytes) -> Answer:
    """The answer a CGI program (``git http-backend``) printed."""
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = output.partition(b"\n\n")
    status = 200
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    return Answer(status, body, headers)
