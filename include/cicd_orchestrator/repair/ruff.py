"""Quality repairs with ruff: ``ruff check --fix`` and ``ruff format``, scoped to what failed."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.process import run_command
from cicd_orchestrator.repair import files, project_tools
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    failure_lines,
    pending_change,
)

log = logging.getLogger(__name__)

# "src/a.py:1:8: F401 ..." (concise) or " --> src/a.py:1:8" (full output format)
_LINT_LOCATION = re.compile(r"(?:^|-->\s*)(?P<path>[\w./-]+\.pyi?):(?P<line>\d+):(?P<col>\d+)")
_FORMAT_FILE = re.compile(
    r"(?:Would reformat:?\s+|^---\s+(?:a/)?|^error: cannot format\s+)(?P<path>[\w./-]+\.pyi?)"
)


def ruff_executable() -> str:
    """ruff of the runner tool folder (else of the system), never the orchestrator's."""
    return runner_tools.find("ruff") or "ruff"


def _files(failures: list[Failure], pattern: re.Pattern[str], root: Path) -> list[str]:
    found: list[str] = []
    for failure in failures:
        lines = failure_lines([failure])
        for key in ("file", "files", "path"):
            if key in failure.captures:
                lines.extend(f"Would reformat: {p}" for p in failure.captures[key].split())
        for line in lines:
            for m in pattern.finditer(line):
                path = m.group("path").removeprefix("./")
                if path not in found and files.is_file(root, path):
                    found.append(path)
    return found


def _ruff(ws: Workspace, tool: project_tools.ToolChoice, command: str, *args: str) -> str:
    """Run ``ruff command`` (no cache) in the workspace; its output."""
    argv = [tool.executable or ruff_executable(), command, "--no-cache", *args]
    return run_command(argv, cwd=ws.path, timeout=300, readable=tool.readable).output


_COMMIT_MESSAGES = {
    "ruff-fix": "Fix lint errors reported by ruff check",
    "ruff-format": "Format code with ruff format",
}


def _propose(
    ws: Workspace,
    failures: list[Failure],
    result: FixerResult,
    part: str,
    command: str,
    confidence: float,
    tool_note: str = "",
) -> bool:
    """Proposes what ``command`` changed in ``ws`` as the repair of ``part``; whether it did."""
    change = pending_change(ws)
    if change is None:
        return False
    result.repairs.append(
        change_repair(
            part,
            FailureCategory.QUALITY,
            change,
            failures,
            description=f"{command} on {', '.join(change.files)}"
            + (f" ({tool_note})" if tool_note else ""),
            commit_message=_COMMIT_MESSAGES[part],
            confidence=confidence,
        )
    )
    return True


class RuffFixer(WorkspaceFixer):
    """Lint autofix (safe fixes only) and formatting; unfixable rules are reported."""

    name = "ruff"
    categories = frozenset({FailureCategory.QUALITY})
    recipes = frozenset({"ruff-fix", "ruff-format"})

    def enabled(self, ctx: RepairContext) -> bool:
        return True  # each of its two parts has a switch of its own

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        lint = [f for f in failures if f.recipe == "ruff-fix"]
        fmt = [f for f in failures if f.recipe == "ruff-format"]
        tool = project_tools.choose(ws.path, "ruff") if lint or fmt else None
        if tool and lint and "ruff-fix" in ctx.config.enabled_fixers:
            self._lint(ws, tool, lint, result)
        if tool and fmt and "ruff-format" in ctx.config.enabled_fixers:
            self._format(ws, tool, fmt, result)

    def _lint(
        self,
        ws: Workspace,
        tool: project_tools.ToolChoice,
        failures: list[Failure],
        result: FixerResult,
    ) -> None:
        files = _files(failures, _LINT_LOCATION, ws.path) or ["."]
        _ruff(ws, tool, "check", "--fix", *files)
        remaining = _ruff(ws, tool, "check", "--output-format", "concise", *files)
        leftover = [ln for ln in remaining.splitlines() if _LINT_LOCATION.search(ln)]
        result.unrepaired.extend(f"no safe fix: {ln.strip()}" for ln in leftover)
        confidence = 0.95 if not leftover else 0.5
        if _propose(ws, failures, result, "ruff-fix", "ruff check --fix", confidence, tool.note):
            ws.commit("ruff check --fix")

    def _format(
        self,
        ws: Workspace,
        tool: project_tools.ToolChoice,
        failures: list[Failure],
        result: FixerResult,
    ) -> None:
        files = _files(failures, _FORMAT_FILE, ws.path) or ["."]
        _ruff(ws, tool, "format", *files)
        _propose(ws, failures, result, "ruff-format", "ruff format", 0.97, tool.note)
