"""Fixtures for the local CI tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from local_ci_helpers import WORKFLOW, make_repo

from cicd_orchestrator.ci.local.runner import JobExecution, JobRunner

RunFn = Callable[..., list[JobExecution]]


@pytest.fixture
def run_workflow(tmp_path: Path) -> RunFn:
    """Commit a workflow in a fresh repository and run it; returns the job executions."""

    def run(
        workflow: str,
        files: dict[str, str] | None = None,
        runner: JobRunner | None = None,
        **kwargs: object,
    ) -> list[JobExecution]:
        repo, sha = make_repo(tmp_path / "repo", {WORKFLOW: workflow, **(files or {})})
        options: dict[str, object] = {
            "ref": "refs/heads/main",
            "repository": "acme/widgets",
            "run_id": 7,
            "run_number": 3,
            "run_attempt": 1,
            "log_dir": tmp_path / "logs",
        }
        options.update(kwargs)
        return (runner or JobRunner()).run_workflow(repo, sha, WORKFLOW, **options)  # type: ignore[arg-type]

    return run
