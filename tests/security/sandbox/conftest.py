"""The adversarial suite of the command sandbox: hostile commands through the real code paths
(``run_command`` for repair tools, ``JobRunner.run_workflow`` for replayed CI steps), each
asserting the attack fails.

The sandbox is ``required`` here; where bubblewrap or user namespaces are unavailable every
test is skipped with the reason (``make test`` installs bubblewrap).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import sandbox
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner

WORKFLOW = ".github/workflows/ci.yml"
#: in the worker's environment during every test: no command may ever print it
CANARY = "cicd-canary-7f3a9c1e5b"


def _unavailable() -> str | None:
    sandbox.reset()
    old = os.environ.pop(sandbox.ENV_VAR, None)
    try:
        return sandbox.unavailable_reason()
    finally:
        if old is not None:
            os.environ[sandbox.ENV_VAR] = old


_REASON = _unavailable()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _REASON is None:
        return
    skip = pytest.mark.skip(reason=f"the command sandbox is unavailable here: {_REASON}")
    for item in items:
        if "tests/security/sandbox/" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def required_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sandbox is required, and the worker's environment holds a canary."""
    monkeypatch.setenv(sandbox.ENV_VAR, "required")
    monkeypatch.setenv("CICD_TEST_WORKER_SECRET", CANARY)
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", CANARY)
    sandbox.configure("required")
    yield
    sandbox.configure(None)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


RunFn = Callable[..., list[JobExecution]]


@pytest.fixture
def run_workflow(git_repo: Any, tmp_path: Path) -> RunFn:
    """Commit a workflow (and ``files``) and replay it with ``runner`` (default: a plain
    ``JobRunner()``); returns the job executions."""

    def run(
        workflow: str, files: dict[str, str] | None = None, runner: JobRunner | None = None
    ) -> list[JobExecution]:
        sha = git_repo.commit({WORKFLOW: workflow, **(files or {})}, "hostile")
        return (runner or JobRunner()).run_workflow(
            git_repo.path,
            sha,
            WORKFLOW,
            ref="refs/heads/main",
            repository="mallory/probe",
            run_id=1,
            run_number=1,
            run_attempt=1,
            log_dir=tmp_path / "logs",
        )

    return run


class Listener:
    """A TCP server on the host's loopback that records whether anyone reached it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.hits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            with conn:
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhost-secret\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on loopback that answers ``hello from <path>`` (a registry's stand-in)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
