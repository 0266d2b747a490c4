"""Fixtures of the GitLab CI engine's tests: a ``.gitlab-ci.yml`` committed and replayed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.gitlab_ci.engine import GitLabEngine

CONFIG = ".gitlab-ci.yml"


@pytest.fixture
def run_gitlab(git_repo: Any, tmp_path: Path) -> Callable[..., dict[str, JobExecution]]:
    """Commit a ``.gitlab-ci.yml`` (and ``files``) and replay it; returns the jobs by name.
    Keyword arguments go to ``GitLabEngine.run_pipeline``."""

    calls = iter(range(1, 1000))

    def run(
        config: str,
        files: dict[str, str] | None = None,
        runner: JobRunner | None = None,
        **kwargs: Any,
    ) -> dict[str, JobExecution]:
        sha = git_repo.commit({CONFIG: config, **(files or {})}, "ci")
        options: dict[str, Any] = {
            "ref": "refs/heads/main",
            "repository": "acme/widgets",
            "log_dir": tmp_path / f"logs-{next(calls)}",
        }
        options.update(kwargs)
        executions = GitLabEngine(runner or JobRunner()).run_pipeline(
            git_repo.path, sha, CONFIG, **options
        )
        return {e.name: e for e in executions}

    return run
