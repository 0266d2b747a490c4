"""Fixtures of the Jenkins engine's tests: a ``Jenkinsfile`` committed and replayed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.jenkins_pipeline.engine import JenkinsEngine


@pytest.fixture
def run_jenkins(git_repo: Any, tmp_path: Path) -> Callable[..., dict[str, JobExecution]]:
    """Commit a ``Jenkinsfile`` (and ``files``) and replay it; returns the reported stages
    by name. Keyword arguments go to ``JenkinsEngine.run_pipeline``."""
    calls = iter(range(1, 1000))

    def run(
        jenkinsfile: str,
        files: dict[str, str] | None = None,
        runner: JobRunner | None = None,
        **kwargs: Any,
    ) -> dict[str, JobExecution]:
        sha = git_repo.commit({"Jenkinsfile": jenkinsfile, **(files or {})}, "pipeline")
        options: dict[str, Any] = {
            "ref": "refs/heads/main",
            "repository": "acme/shipping",
            "log_dir": tmp_path / f"logs-{next(calls)}",
        }
        options.update(kwargs)
        executions = JenkinsEngine(runner or JobRunner()).run_pipeline(
            git_repo.path, sha, "Jenkinsfile", **options
        )
        return {e.name: e for e in executions}

    return run
