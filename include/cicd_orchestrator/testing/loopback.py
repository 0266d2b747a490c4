"""The life cycle the hosted-CI-compatible test servers share: a threaded HTTP server on
127.0.0.1 (a free port unless one is given), its URLs and the API object behind it."""

from __future__ import annotations

import logging
import threading
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
