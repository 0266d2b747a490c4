"""Build repairs: a module the code imports but the repository does not declare becomes a
requirement, under its distribution's name, where the project declares its dependencies
(:mod:`cicd_orchestrator.repair.python_deps`): never the standard library, the project
itself or a module the repository holds."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    evidence_of,
    failure_lines,
    pending_change,
)
from cicd_orchestrator.repair.npm_dependency import NODE_PATTERNS
from cicd_orchestrator.repair.python_deps.layouts import AlreadyDeclaredError, Project, declare
from cicd_orchestrator.repair.python_deps.model import CannotEditError, Declared, is_test_path
from cicd_orchestrator.repair.python_deps.names import (
    IMPORT_TO_DISTRIBUTION,
    MODULE_NAME,
    distribution_for,
    local_module,
    normalize,
)

__all__ = [
    "IMPORT_TO_DISTRIBUTION",
    "MissingDependencyFixer",
    "distribution_for",
    "importer",
    "read_workflow",
    "requirement_files",
]

log = logging.getLogger(__name__)

_FRAMES = (
    re.compile(r'File "(?P<path>[^"]+\.py)", line \d+'),
    re.compile(r"^(?P<path>[^\s:]+\.py):\d+: in "),
    re.compile(r"ImportError while importing test module '(?P<path>[^']+\.py)'"),
)
_REQ_INSTALL = re.compile(r"(?:-r|--requirement)\s+(?P<file>[\w./-]+\.txt)")
_INSTALLED = re.compile(r"/(?:site|dist)-packages/|/lib/python\d")


def repository_path(root: Path, path: str) -> str | None:
    """``path`` (relative, or absolute on the CI machine) as a file of the repository: the
    longest tail of it that is one."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    for i in range(len(parts)):
        tail = "/".join(parts[i:])
        if ".." not in parts[i:] and files.is_file(root, tail):
            return tail
    return None


def importer(root: Path, failure: Failure) -> str | None:
    """The repository file whose import failed: the last frame of the traceback that is a
    file of the repository (installed packages are not)."""
    found: str | None = None
    for line in failure_lines([failure]):
        for rx in _FRAMES:
            for m in rx.finditer(line):
                path = m.group("path")
                if not _INSTALLED.search(path):
                    found = repository_path(root, path) or found
    return found


def requirement_files(ws: Workspace, workflow_text: str) -> list[Path]:
    """The requirements files the workflow installs (``-r file``), else the repository's
    ``requirements*.txt``."""
    named = [ws.path / m.group("file") for m in _REQ_INSTALL.finditer(workflow_text)]
    found = [p for p in named if files.is_file(ws.path, p)]
    return found or files.glob(ws.path, "requirements*.txt")


def read_workflow(ws: Workspace, workflow_path: str) -> str:
    """The failing run's workflow file in the workspace ("" when there is none)."""
    if not workflow_path or not files.is_file(ws.path, workflow_path):
        return ""
    return files.read_text(ws.path, workflow_path)


class MissingDependencyFixer(WorkspaceFixer):
    """ModuleNotFoundError -> a requirement under the distribution's name."""

    name = "add-requirement"
    categories = frozenset({FailureCategory.BUILD, FailureCategory.TEST})
    recipes = frozenset({"add-requirement"})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return [
            f
            for f in super().relevant(failures)
            if f.pattern not in NODE_PATTERNS
            and MODULE_NAME.fullmatch(f.captures.get("module", ""))
        ]

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        added: dict[str, Failure] = {}
        notes: list[str] = []
        entries: list[str] = []
        workflow = read_workflow(ws, ctx.workflow_path)
        for failure in failures:
            try:  # read again for each: an earlier requirement may have changed the files
                project = Project.read(ws.path, workflow)
            except CannotEditError as exc:
                result.unrepaired.append(str(exc))
                return
            dist = self._distribution(ws.path, project, failure, result)
            if dist is None or dist in added:
                continue
            declared = self._declare(project, failure, dist, result)
            if declared is not None:
                added[dist] = failure
                entries.append(declared.entry)
                notes.extend(n for n in declared.notes if n not in notes)
        change = pending_change(ws) if added else None
        if change is not None:
            result.repairs.append(
                change_repair(
                    self.name,
                    FailureCategory.BUILD,
                    change,
                    list(added.values()),
                    description=" ".join([f"declare {'; '.join(entries)}.", *notes]),
                    commit_message=f"Declare the missing requirement {', '.join(added)}",
                    confidence=0.85,
                    evidence=evidence_of(added.values(), 2),
                    notes=notes,
                )
            )

    @staticmethod
    def _distribution(
        root: Path, project: Project, failure: Failure, result: FixerResult
    ) -> str | None:
        module = failure.captures["module"]
        dist = distribution_for(module)
        if dist is None:
            result.unrepaired.append(
                f"{module} is in the standard library: not a missing requirement"
            )
            return None
        if normalize(dist) in project.names():
            result.unrepaired.append(
                f"{module} is the project itself ({dist}): install the project, "
                "not a requirement on it"
            )
            return None
        local = local_module(root, module)
        if local is not None:
            result.unrepaired.append(
                f"{module} is a module of the repository ({local}): not a missing "
                "requirement (the import path or the installation is at fault)"
            )
            return None
        return dist

    @staticmethod
    def _declare(
        project: Project, failure: Failure, dist: str, result: FixerResult
    ) -> Declared | None:
        module = failure.captures["module"]
        source = importer(project.root, failure)
        try:
            return declare(project, dist, test=bool(source and is_test_path(source)))
        except AlreadyDeclaredError as exc:
            result.unrepaired.append(
                f"{exc} (import {module}): the installation, not the declaration, is at fault"
            )
        except CannotEditError as exc:
            result.unrepaired.append(f"{dist} (import {module}): {exc}")
        except files.RefusedPathError:
            raise  # noted; the fixer's work stops there
        except (OSError, UnicodeDecodeError) as exc:
            result.unrepaired.append(f"{dist} (import {module}): cannot edit safely: {exc}")
        return None
