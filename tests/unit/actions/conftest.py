"""Fixtures of the GitHub Actions engine's tests: a workflow committed and run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
