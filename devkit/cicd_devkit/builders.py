"""Builders of the orchestrator's domain objects for tests: a failed run, a failure, a new
session on it."""

from __future__ import annotations

from cicd_orchestrator import session
from cicd_orchestrator.config import OrchestratorConfig, load_config
from cicd_orchestrator.constants import Conclusion, FailureCategory, Priority, RunStatus
from cicd_orchestrator.models import Failure, Run, SessionState

NOW = "2026-01-01T00:00:00+00:00"


def failed_run(run_id: int = 7, repository: str = "acme/shop") -> Run:
    """A completed, failed run of ``.github/workflows/ci.yml`` on ``main``."""
    return Run(
        id=run_id,
        repository=repository,
        workflow="CI",
        workflow_path=".github/workflows/ci.yml",
        head_branch="main",
        head_sha="a" * 40,
        event="push",
        status=RunStatus.COMPLETED,
        conclusion=Conclusion.FAILURE,
        run_number=3,
    )


def failure(
    recipe: str | None = None,
    category: FailureCategory = FailureCategory.TEST,
    job: str = "test",
) -> Failure:
    """A classified failure of job ``job`` (signature ``sig``)."""
    return Failure(
        job=job,
        job_id=1,
        run_id=7,
        step="Unit tests",
        category=category,
        confidence=0.9,
        signature="sig",
        recipe=recipe,
    )


def new_state(
    config: OrchestratorConfig | None = None, priority: Priority = Priority.CRITICAL
) -> SessionState:
    """A new session on :func:`failed_run`."""
    return session.new_session("local", failed_run(), config or load_config(), NOW, priority)
