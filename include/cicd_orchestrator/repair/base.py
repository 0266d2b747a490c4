"""The one interface every fixer implements, and what a fixer is given."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.models import Context, Failure, FixerResult
from cicd_orchestrator.repair.workspace import Workspace

WorkspaceFactory = Callable[[], contextlib.AbstractContextManager[Workspace]]


@dataclass
class RepairContext:
    """Everything a fixer may look at; it changes nothing but its own workspace."""

    repository: str
    head_sha: str
    failures: list[Failure]
    context: Context | None
    config: OrchestratorConfig
    workspace: WorkspaceFactory
    workflow_jobs: dict[str, list[str]] = field(default_factory=dict)
    workflow_path: str = ""


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


@contextlib.contextmanager
def no_workspace() -> Iterator[Workspace]:  # pragma: no cover - placeholder factory
    raise RuntimeError("this fixer needs no workspace")
    yield
