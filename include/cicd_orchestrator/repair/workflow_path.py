"""A workflow step that refers to a path that does not exist.

The step and its line are reported; when exactly one file of that name exists elsewhere in
the tree, the one-line correction is proposed (low confidence: validation decides).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    matching_failures,
    pending_change,
)
from cicd_orchestrator.repair.workflows import (
    SKIP_DIRS,
    JobBlock,
    job_blocks,
    step_at,
    step_label,
)

_TOKEN = re.compile(r"(?<![\w./-])(?P<tok>(?:\./)?[\w.-]+(?:/[\w.-]+)*)")


@dataclass
class PathReference:
    block: JobBlock
    line: int
    token: str
    missing: str
    workdir: str


def _workdir(block: JobBlock, step: Any) -> str:
    spec = block.spec
    return str(
        getattr(step, "working_directory", None) or getattr(spec, "working_directory", None) or ""
    )


def _names_missing(token: str, base: str, missing: str) -> bool:
    """Whether the path ``token`` of a workflow line is the ``missing`` path of the log."""
    clean = token.removeprefix("./")
    if os.path.basename(clean) != base:
        return False
    return missing == clean or missing.endswith("/" + clean)


def _line_reference(
    root: Path, block: JobBlock, number: int, line: str, missing: str
) -> PathReference | None:
    base = os.path.basename(missing.rstrip("/"))
    workdir = _workdir(block, step_at(block.spec, number))
    for m in _TOKEN.finditer(line):
        token = m["tok"]
        clean = token.removeprefix("./")
        if _names_missing(token, base, missing) and not files.exists(root, Path(workdir, clean)):
            return PathReference(block, number, token, clean, workdir)
    return None


def find_reference(root: Path, blocks: list[JobBlock], missing: str) -> PathReference | None:
    """The workflow line whose path token names ``missing`` and does not exist."""
    base = os.path.basename(missing.rstrip("/"))
    for block in blocks:
        for number, line in block.numbered():
            if base not in line or line.lstrip().startswith("#"):
                continue
            ref = _line_reference(root, block, number, line, missing)
            if ref is not None:
                return ref
    return None


def same_name_files(root: Path, name: str) -> list[Path]:
    out: list[Path] = []
    for dirpath, _, filenames in files.walk(root, SKIP_DIRS, lambda n: n == name):
        if name in filenames:
            out.append(dirpath / name)
    return out


def _point_at(ws: Workspace, ref: PathReference, found: Path) -> str:
    """Rewrites the reference's line to name ``found``; the new path as written."""
    target = Path(os.path.relpath(found, ws.path / ref.workdir)).as_posix()
    if ref.token.startswith("./") and not target.startswith("."):
        target = "./" + target
    lines = files.read_lines(ws.path, ref.block.path)
    old = lines[ref.line - 1]
    lines[ref.line - 1] = re.sub(
        rf"(?<![\w./-]){re.escape(ref.token)}(?![\w/-])", target, old, count=1
    )
    files.write_lines(ws.path, ref.block.path, lines)
    return target


class WorkflowPathFixer(WorkspaceFixer):
    """A step refers to a path that does not exist: reported; a unique same-name file is
    proposed as the one-line correction (low confidence)."""

    name = "workflow-path"
    categories = frozenset({FailureCategory.CONFIGURATION})
    patterns = frozenset({"workflow-wrong-path"})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return matching_failures(failures, self.categories, patterns=self.patterns)

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        for failure in failures:
            self._one(ws, ctx, failure, result)

    def _one(
        self, ws: Workspace, ctx: RepairContext, failure: Failure, result: FixerResult
    ) -> None:
        missing = failure.captures.get("file", "")
        if not missing:
            result.unrepaired.append(f"job {failure.job}: a path is missing: {failure.message}")
            return
        blocks = job_blocks(ws.path, ctx.workflow_path, failure.job)
        ref = find_reference(ws.path, blocks, missing)
        if ref is None:
            result.unrepaired.append(
                f"job {failure.job}: {missing} does not exist and no workflow line of the job "
                "refers to it by that path"
            )
            return
        step = step_label(step_at(ref.block.spec, ref.line))
        where = f"{ref.block.path}:{ref.line}"
        report = f"job {failure.job}, {step} ({where}) refers to {ref.token}, which does not exist"
        found = same_name_files(ws.path, os.path.basename(ref.missing))
        if len(found) != 1:
            also = ", ".join(str(p.relative_to(ws.path)) for p in found[:5])
            result.unrepaired.append(
                report + (f"; files of that name: {also}" if found else "; no file of that name")
            )
            return
        target = _point_at(ws, ref, found[0])
        change = pending_change(ws)
        if change is None:
            return
        result.repairs.append(
            change_repair(
                self.name,
                FailureCategory.CONFIGURATION,
                change,
                [failure],
                description=f"{report}; use {target}, the only file of that name",
                commit_message=f"Point the workflow at {target}",
                confidence=0.5,
                notes=[report],
            )
        )
        ws.commit(f"workflow path {target}")
