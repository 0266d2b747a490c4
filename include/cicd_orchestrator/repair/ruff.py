"""Quality repairs with ruff: ``ruff check --fix`` and ``ruff format``, scoped to what failed."""

from __future__ import annotations

import logging
import re
import shutil
import sys
import time
from pathlib import Path

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.repair.workspace import Workspace, run_command

log = logging.getLogger(__name__)

# "src/a.py:1:8: F401 ..." (concise) or " --> src/a.py:1:8" (full output format)
_LINT_LOCATION = re.compile(r"(?:^|-->\s*)(?P<path>[\w./-]+\.pyi?):(?P<line>\d+):(?P<col>\d+)")
_FORMAT_FILE = re.compile(
    r"(?:Would reformat:?\s+|^---\s+(?:a/)?|^error: cannot format\s+)(?P<path>[\w./-]+\.pyi?)"
)


def ruff_executable() -> str:
    local = Path(sys.executable).with_name("ruff")
    return str(local) if local.exists() else (shutil.which("ruff") or "ruff")


def _files(failures: list[Failure], pattern: re.Pattern[str], root: Path) -> list[str]:
    found: list[str] = []
    for failure in failures:
        lines = list(failure.evidence)
        for excerpt in failure.excerpts:
            lines.extend(excerpt.text.splitlines())
        for key in ("file", "files", "path"):
            if key in failure.captures:
                lines.extend(f"Would reformat: {p}" for p in failure.captures[key].split())
        for line in lines:
            clean = re.sub(r"^\S+Z\s", "", line)  # raw log timestamp
            for m in pattern.finditer(clean):
                path = m.group("path").removeprefix("./")
                if (root / path).is_file() and path not in found:
                    found.append(path)
    return found


class RuffFixer(Fixer):
    """Lint autofix (safe fixes only) and formatting; unfixable rules are reported."""

    name = "ruff"
    categories = frozenset({FailureCategory.QUALITY})
    recipes = frozenset({"ruff-fix", "ruff-format"})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant:
            return result
        with ctx.workspace() as ws:
            lint = [f for f in relevant if f.recipe == "ruff-fix"]
            fmt = [f for f in relevant if f.recipe == "ruff-format"]
            if lint and "ruff-fix" in ctx.config.enabled_fixers:
                self._lint(ws, lint, result)
            if fmt and "ruff-format" in ctx.config.enabled_fixers:
                self._format(ws, fmt, result)
        result.seconds = round(time.monotonic() - start, 3)
        return result

    def _lint(self, ws: Workspace, failures: list[Failure], result: FixerResult) -> None:
        files = _files(failures, _LINT_LOCATION, ws.path) or ["."]
        ruff = ruff_executable()
        run_command([ruff, "check", "--fix", "--no-cache", *files], cwd=ws.path, timeout=300)
        remaining = run_command(
            [ruff, "check", "--no-cache", "--output-format", "concise", *files],
            cwd=ws.path,
            timeout=300,
        )
        leftover = [ln for ln in remaining.output.splitlines() if _LINT_LOCATION.search(ln)]
        result.unrepaired.extend(f"no safe fix: {ln.strip()}" for ln in leftover)
        patch = ws.diff()
        if patch:
            changed = ws.changed_files()
            result.repairs.append(
                Repair(
                    fixer="ruff-fix",
                    kind=RepairKind.CHANGE,
                    category=FailureCategory.QUALITY,
                    description=f"ruff check --fix on {', '.join(changed)}",
                    jobs=sorted({f.job for f in failures}),
                    patch=patch,
                    files=changed,
                    commit_message="Fix lint errors reported by ruff check",
                    confidence=0.95 if not leftover else 0.5,
                    evidence=[ln for f in failures for ln in f.evidence[:3]],
                )
            )
            ws.git("commit", "--quiet", "-m", "ruff check --fix")

    def _format(self, ws: Workspace, failures: list[Failure], result: FixerResult) -> None:
        files = _files(failures, _FORMAT_FILE, ws.path) or ["."]
        run_command([ruff_executable(), "format", "--no-cache", *files], cwd=ws.path, timeout=300)
        patch = ws.diff()
        if patch:
            changed = ws.changed_files()
            result.repairs.append(
                Repair(
                    fixer="ruff-format",
                    kind=RepairKind.CHANGE,
                    category=FailureCategory.QUALITY,
                    description=f"ruff format on {', '.join(changed)}",
                    jobs=sorted({f.job for f in failures}),
                    patch=patch,
                    files=changed,
                    commit_message="Format code with ruff format",
                    confidence=0.97,
                    evidence=[ln for f in failures for ln in f.evidence[:3]],
                )
            )
