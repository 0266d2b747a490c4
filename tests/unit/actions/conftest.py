"""Fixtures of the GitHub Actions engine's tests: a workflow committed and run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.actions import containers
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner

WORKFLOW = ".github/workflows/ci.yml"


@pytest.fixture
def run_workflow(git_repo: Any, tmp_path: Path) -> Callable[..., list[JobExecution]]:
    """Commit a workflow (and ``files``) in ``git_repo`` and run it; returns the job
    executions. Keyword arguments go to ``JobRunner.run_workflow``."""

    def run(
        workflow: str,
        files: dict[str, str] | None = None,
        runner: JobRunner | None = None,
        **kwargs: object,
    ) -> list[JobExecution]:
        sha = git_repo.commit({WORKFLOW: workflow, **(files or {})}, "initial")
        options: dict[str, object] = {
            "ref": "refs/heads/main",
            "repository": "acme/widgets",
            "run_id": 7,
            "run_number": 3,
            "run_attempt": 1,
            "log_dir": tmp_path / "logs",
        }
        options.update(kwargs)
        return (runner or JobRunner()).run_workflow(git_repo.path, sha, WORKFLOW, **options)  # type: ignore[arg-type]

    return run


@pytest.fixture
def engine_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lock file of the test's own for the engine's calls: a stand-in engine neither waits
    on the host's real one (another test's pod may hold it) nor holds it."""
    path = tmp_path / "engine.lock"
    monkeypatch.setattr(containers, "engine_lock_path", lambda: path)
    return path


def _release(holder: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(holder.pid, signal.SIGKILL)  # flock and its sleep, which holds the lock too
    holder.wait()


@pytest.fixture
def hold_engine_lock(engine_lock_file: Path) -> Iterator[Callable[[], Callable[[], None]]]:
    """Starts another process that holds the test's engine lock (returns once it has it);
    what it returns lets it go (at the latest when the test ends)."""
    holders: list[subprocess.Popen[bytes]] = []

    def hold() -> Callable[[], None]:
        holder = subprocess.Popen(
            ["flock", str(engine_lock_file), "sleep", "60"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        holders.append(holder)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            free = subprocess.run(["flock", "--nonblock", str(engine_lock_file), "true"])
            if free.returncode != 0:
                break
            time.sleep(0.05)
        return lambda: _release(holder)

    yield hold
    for holder in holders:
        _release(holder)
