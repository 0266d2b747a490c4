"""The one interface every fixer implements, what a fixer is given, and the shared frame of
the fixers that work in a checkout: their ``propose`` and the repair built from its change."""

from __future__ import annotations

import abc
import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cicd_orchestrator.agents import AgentFactory
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Context, Failure, FixerResult, Repair
from cicd_orchestrator.repair import files

WorkspaceFactory = Callable[[], contextlib.AbstractContextManager[Workspace]]


@dataclass
class RepairContext:
    """Everything a fixer may look at; it changes nothing but its own workspace.

    ``agent_factory`` builds the LLM agent of a connection (``agent_factory(conn_id,
    instructions)``); the orchestration layer passes one that looks the connection up.
    """

    repository: str
    head_sha: str
    failures: list[Failure]
    context: Context | None
    config: OrchestratorConfig
    workspace: WorkspaceFactory
    workflow_jobs: dict[str, list[str]] = field(default_factory=dict)
    workflow_path: str = ""
    agent_factory: AgentFactory | None = None

    @property
    def changed_files(self) -> list[str]:
        """The files the commits since the last green run changed (none when unknown)."""
        return list(self.context.changed_files) if self.context else []


class Fixer(abc.ABC):
    """Proposes repairs for the failures it knows; each is validated before it is published."""

    name: str = "abstract"
    categories: frozenset[FailureCategory] = frozenset()
    recipes: frozenset[str] = frozenset()

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return [
            f
            for f in failures
            if f.root_cause
            and (f.recipe in self.recipes if self.recipes else True)
            and (f.category in self.categories if self.categories else True)
        ]

    @abc.abstractmethod
    def propose(self, ctx: RepairContext) -> FixerResult:
        """Repairs for the relevant failures (``applicable=False`` when there are none)."""


class WorkspaceFixer(Fixer):
    """A fixer that works in one checkout of the failing commit, when it is enabled.

    ``propose`` finds the relevant failures, checks that the fixer is enabled, opens the
    workspace, lets :meth:`repair_in` do the work and times it.
    """

    @abc.abstractmethod
    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        """Repair ``failures`` in ``ws``: repairs and what remains go into ``result``."""

    def enabled(self, ctx: RepairContext) -> bool:
        return self.name in ctx.config.enabled_fixers

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or not self.enabled(ctx):
            return result
        with ctx.workspace() as ws, files.refusals(result):
            self.repair_in(ctx, ws, relevant, result)
        result.seconds = round(time.monotonic() - start, 3)
        return result


def matching_failures(
    failures: Iterable[Failure],
    categories: frozenset[FailureCategory],
    recipes: frozenset[str] = frozenset(),
    patterns: frozenset[str] = frozenset(),
) -> list[Failure]:
    """Root failures of these categories whose recipe or pattern is one of those given."""
    return [
        f
        for f in failures
        if f.root_cause
        and f.category in categories
        and (f.recipe in recipes or (f.pattern or "") in patterns)
    ]


_TIMESTAMP = re.compile(r"^\S+Z\s")


def failure_lines(failures: Iterable[Failure]) -> list[str]:
    """Evidence and excerpt lines of the failures, without raw log timestamps."""
    lines: list[str] = []
    for failure in failures:
        raw = list(failure.evidence)
        for excerpt in failure.excerpts:
            raw.extend(excerpt.text.splitlines())
        lines.extend(_TIMESTAMP.sub("", line) for line in raw)
    return lines


def jobs_of(failures: Iterable[Failure]) -> list[str]:
    """The jobs of the failures, sorted, each once."""
    return sorted({f.job for f in failures})


def evidence_of(failures: Iterable[Failure], each: int = 3) -> list[str]:
    """The first ``each`` evidence lines of every failure."""
    return [e for f in failures for e in f.evidence[:each]]


@dataclass
class Change:
    """The uncommitted change of a workspace: its patch and the files it touches."""

    patch: str
    files: list[str]


def pending_change(ws: Workspace) -> Change | None:
    """What the fixer changed in ``ws`` (None when it changed nothing)."""
    patch = ws.diff()
    return Change(patch, ws.changed_files()) if patch else None


def change_repair(
    fixer: str,
    category: FailureCategory,
    change: Change,
    failures: Sequence[Failure],
    *,
    description: str,
    commit_message: str,
    confidence: float,
    evidence: list[str] | None = None,
    notes: Sequence[str] = (),
) -> Repair:
    """A CHANGE repair of ``change`` for ``failures`` (evidence: 3 lines of each by default)."""
    return Repair(
        fixer=fixer,
        kind=RepairKind.CHANGE,
        category=category,
        description=description,
        jobs=jobs_of(failures),
        patch=change.patch,
        files=change.files,
        commit_message=commit_message,
        confidence=confidence,
        evidence=evidence_of(failures) if evidence is None else evidence,
        notes=list(notes),
    )


@contextlib.contextmanager
def no_workspace() -> Iterator[Workspace]:  # pragma: no cover - placeholder factory
    raise RuntimeError("this fixer needs no workspace")
    yield
