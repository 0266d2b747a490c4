"""The life cycle the hosted-CI-compatible test servers share: a threaded HTTP server on
127.0.0.1 (a free port unless one is given), its URLs and the API object behind it."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

log = logging.getLogger(__name__)

ApiT = TypeVar("ApiT")


class LoopbackServer(Generic[ApiT]):
    """Subclasses set ``NAME``, ``API_PREFIX``, ``HANDLER`` (whose ``owner`` becomes the
    server) and may build an API object in ``make_api``."""

    NAME = "server"
    API_PREFIX = ""
    HANDLER: type[BaseHTTPRequestHandler]

    def __init__(self, port: int = 0) -> None:
        self.port = port
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
            target=self._httpd.serve_forever, name=f"{self.NAME}-server", daemon=True
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
