"""Fixtures of the fixer tests: a repository to commit to and the context a fixer is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import checkout
from cicd_orchestrator.models import Context, Failure
from cicd_orchestrator.repair.base import RepairContext

CI = ".github/workflows/ci.yml"
WORKFLOW_FIXERS = ("upgrade-action", "invalid-workflow", "missing-access", "workflow-path")


class RepairRepo:
    """The root conftest's ``GitRepo`` (files committed as given) and a fixer's context."""

    def __init__(self, repo: Any) -> None:
        self.repo = repo
        self.path: Path = repo.path

    def git(self, *args: str) -> str:
        return str(self.repo.git(*args))

    def commit(self, files: dict[str, str], message: str) -> str:
        return str(self.repo.commit(files, message, dedent=False))

    def context(
        self,
        failures: list[Failure],
        sha: str,
        context: Context | None = None,
        **config: Any,
    ) -> RepairContext:
        return RepairContext(
            repository="acme/shop",
            head_sha=sha,
            failures=failures,
            context=context,
            config=load_config(config or None),
            workspace=lambda: checkout(self.path, sha),
        )

    @staticmethod
    def enable(ctx: RepairContext, *fixers: str, on: bool = True) -> RepairContext:
        """``ctx`` with ``fixers`` switched on (or off) in its configuration."""
        others = tuple(n for n in ctx.config.enabled_fixers if n not in fixers)
        ctx.config = dataclasses.replace(
            ctx.config, enabled_fixers=(*others, *fixers) if on else others
        )
        return ctx

    def workflow_context(
        self, failures: list[Failure], sha: str, workflow_path: str = CI
    ) -> RepairContext:
        """A context with the workflow fixers enabled and the failing run's workflow."""
        ctx = self.enable(self.context(failures, sha), *WORKFLOW_FIXERS)
        ctx.workflow_path = workflow_path
        return ctx

    def applied_bytes(self, sha: str, patch: str, path: str) -> bytes:
        """The bytes of ``path`` once ``patch`` is applied to a checkout of ``sha``."""
        with checkout(self.path, sha) as ws:
            assert ws.apply(patch)
            return (ws.path / path).read_bytes()


@pytest.fixture
def repo(git_repo: Any) -> RepairRepo:
    return RepairRepo(git_repo)


@pytest.fixture
def config_failure() -> Any:
    """``config_failure(recipe=..., pattern=..., captures=..., evidence=..., job=..., step=...)``:
    a root CONFIGURATION failure."""

    def make(
        recipe: str = "none",
        pattern: str | None = None,
        captures: dict[str, str] | None = None,
        evidence: tuple[str, ...] | list[str] = (),
        job: str = "build",
        step: str | None = None,
    ) -> Failure:
        return Failure(
            job=job,
            job_id=1,
            run_id=1,
            step=step,
            category=FailureCategory.CONFIGURATION,
            confidence=0.9,
            signature="s",
            pattern=pattern,
            recipe=recipe,
            captures=dict(captures or {}),
            evidence=list(evidence),
            message=evidence[0] if evidence else "",
        )

    return make


@pytest.fixture
def make_failure() -> Any:
    """``make_failure(category, recipe=None, job="test", **captures)``: a root failure."""

    def make(
        category: FailureCategory, recipe: str | None = None, job: str = "test", **captures: str
    ) -> Failure:
        return Failure(
            job=job,
            job_id=1,
            run_id=1,
            step=None,
            category=category,
            confidence=0.9,
            signature="s",
            recipe=recipe,
            captures=captures,
        )

    return make
