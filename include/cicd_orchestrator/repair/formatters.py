"""Quality repairs with the formatter or linter that failed, run in fix mode: black, isort, the
repository's own pre-commit hooks, prettier and eslint --fix.

Each fixer is scoped to the files the failure reported (absolute runner paths are mapped back
onto the repository), else to the whole tree. Python tools run from the orchestrator's own
environment (never installed at run time); node tools only from the repository's own
``node_modules/.bin`` (no network installs). Everything that executes repository-controlled
code or configuration goes through the sandboxed :func:`run_command`. What a tool cannot fix
safely is reported with its location, never forced.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.repair.workflow_config import failing_job_text
from cicd_orchestrator.repair.workspace import CommandResult, Workspace, run_command

log = logging.getLogger(__name__)

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
PRE_COMMIT_PATTERN = "pre-commit-hook-failed"
_TIMESTAMP = re.compile(r"^\S+Z\s")
_ANY_PATH = re.compile(r"(?P<path>(?:[\w.@-]+/)*[\w.@-]+\.[A-Za-z][\w]{0,9})\b")
_MAX_REPORTED = 40


# --------------------------------------------------------------------------- reported files
def resolve_path(reported: str, root: Path) -> str | None:
    """A reported path as a file of the repository (runner prefixes dropped), or None."""
    path = reported.strip().strip("'\"`").removeprefix("./")
    if not path:
        return None
    parts = [p for p in Path(path).parts if p not in ("/", "")]
    for i in range(len(parts)):
        candidate = Path(*parts[i:])
        if ".." in candidate.parts:
            continue
        if (root / candidate).is_file() and ".git" not in candidate.parts:
            return candidate.as_posix()
    return None


def failure_lines(failures: Iterable[Failure]) -> list[str]:
    """Evidence and excerpt lines of the failures, without raw log timestamps."""
    lines: list[str] = []
    for failure in failures:
        raw = list(failure.evidence)
        for excerpt in failure.excerpts:
            raw.extend(excerpt.text.splitlines())
        lines.extend(_TIMESTAMP.sub("", line) for line in raw)
    return lines


def reported_files(
    failures: Sequence[Failure], patterns: Sequence[re.Pattern[str]], root: Path
) -> list[str]:
    """Files of the repository the failures name (captures first, then the log lines)."""
    candidates: list[str] = []
    for failure in failures:
        for key in ("file", "files", "path"):
            candidates.extend(re.split(r"[\s,]+", failure.captures.get(key, "")))
    for line in failure_lines(failures):
        for pattern in patterns:
            candidates.extend(m.group("path") for m in pattern.finditer(line))
    found: list[str] = []
    for candidate in candidates:
        path = resolve_path(candidate, root) if candidate else None
        if path and path not in found:
            found.append(path)
    return found


# --------------------------------------------------------------------------- environment
def python_tool(module: str) -> bool:
    """Whether ``module`` is importable from the orchestrator's own environment."""
    return importlib.util.find_spec(module) is not None


def failure_text(failures: Iterable[Failure]) -> str:
    failures = list(failures)
    return "\n".join([*(f.step or "" for f in failures), *failure_lines(failures)])


def job_used(
    tool: re.Pattern[str], ctx: RepairContext, root: Path, failures: list[Failure]
) -> bool:
    """Whether the failing job ran ``tool``: its log, its steps, the package scripts it ran."""
    if tool.search(failure_text(failures)):
        return True
    for job in sorted({f.job for f in failures}):
        text = failing_job_text(root, ctx.workflow_path, job)
        if tool.search(text):
            return True
        if re.search(r"\b(?:npm|npx|yarn|pnpm)\b", text) and tool.search(_package_scripts(root)):
            return True
    return False


def _package_scripts(root: Path) -> str:
    try:
        data = json.loads((root / "package.json").read_text())
    except (OSError, ValueError):
        return ""
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return "\n".join(str(v) for v in scripts.values()) if isinstance(scripts, dict) else ""


_PRE_COMMIT_USE = re.compile(r"pre-commit|pre_commit|^- hook id:", re.M)
# the job checked every file (pre-commit/action runs --all-files by default)
_ALL_FILES = re.compile(r"pre-commit run\b[^\n]*--all-files|uses:\s*pre-commit/action@")


def pre_commit_runs(ctx: RepairContext, root: Path, failures: list[Failure]) -> bool:
    """The failing job ran the repository's pre-commit hooks (and it has a configuration)."""
    if not (root / PRE_COMMIT_CONFIG).is_file():
        return False
    if any(f.pattern == PRE_COMMIT_PATTERN for f in failures):
        return True
    return job_used(_PRE_COMMIT_USE, ctx, root, failures)


def _defer_to_pre_commit(ctx: RepairContext, root: Path, failures: list[Failure]) -> bool:
    """A formatter run by a pre-commit hook is repaired by the hooks themselves."""
    return (
        "pre-commit" in ctx.config.enabled_fixers
        and python_tool("pre_commit")
        and pre_commit_runs(ctx, root, failures)
    )


# --------------------------------------------------------------------------- the shape
class ToolFixer(Fixer):
    """Run one tool in fix mode on the reported files and propose the resulting diff."""

    categories = frozenset({FailureCategory.QUALITY})
    patterns: frozenset[str] = frozenset()
    tool = "tool"
    commit_message = "Fix code style"
    confidence = 0.95
    path_patterns: tuple[re.Pattern[str], ...] = ()

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return [
            f
            for f in failures
            if f.root_cause
            and f.category in self.categories
            and (f.recipe in self.recipes or (f.pattern or "") in self.patterns)
        ]

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        with ctx.workspace() as ws:
            usable = self.usable(ctx, ws, relevant, result)
            result.applicable = bool(usable) or bool(result.unrepaired)
            if usable:
                files = reported_files(usable, self.path_patterns, ws.path)
                self.fix(ctx, ws, usable, files, result)
                self._propose_diff(ws, usable, result)
        result.seconds = round(time.monotonic() - start, 3)
        return result

    def usable(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> list[Failure]:
        """The failures this fixer can act on here (the others are explained in ``result``)."""
        return failures

    def fix(
        self,
        ctx: RepairContext,
        ws: Workspace,
        failures: list[Failure],
        files: list[str],
        result: FixerResult,
    ) -> None:
        raise NotImplementedError

    def run(self, ctx: RepairContext, ws: Workspace, args: Sequence[str]) -> CommandResult:
        out = run_command(
            args,
            cwd=ws.path,
            timeout=ctx.config.job_timeout_minutes * 60,
            output_cap=ctx.config.output_cap_bytes,
            env_extra=self.env(),
        )
        log.info("%s: %s exited %s", self.name, " ".join(args[:4]), out.returncode)
        return out

    def env(self) -> dict[str, str]:
        return {}

    def _propose_diff(self, ws: Workspace, failures: list[Failure], result: FixerResult) -> None:
        patch = ws.diff()
        if not patch:
            if not result.unrepaired:
                result.unrepaired.append(f"{self.tool} changed nothing: the failure remains")
            return
        changed = ws.changed_files()
        result.repairs.append(
            Repair(
                fixer=self.name,
                kind=RepairKind.CHANGE,
                category=FailureCategory.QUALITY,
                description=f"{self.tool} on {', '.join(changed)}",
                jobs=sorted({f.job for f in failures}),
                patch=patch,
                files=changed,
                commit_message=self.commit_message,
                confidence=self.confidence if not result.unrepaired else 0.5,
                evidence=[e for f in failures for e in f.evidence[:3]],
                notes=list(result.unrepaired[:5]),
            )
        )


def _timed_out(out: CommandResult, what: str, result: FixerResult) -> bool:
    if out.timed_out:
        result.unrepaired.append(f"{what} timed out; nothing it did is proposed")
    return out.timed_out


# --------------------------------------------------------------------------- python tools
class BlackFixer(ToolFixer):
    """``black --check`` failed: run black on the reported files."""

    name = "black"
    recipes = frozenset({"black"})
    patterns = frozenset({"black-check"})
    tool = "black"
    commit_message = "Format code with black"
    path_patterns = (
        re.compile(r"would reformat (?P<path>\S+)"),
        re.compile(r"error: cannot (?:format|parse):? (?P<path>[^\s:]+)"),
        re.compile(r"^---\s+(?:a/)?(?P<path>\S+\.pyi?)\s"),
    )
    _error = re.compile(
        r"error: cannot (?:format|parse):? (?P<path>[^\s:]+)(?P<loc>(?::\d+)*):? ?(?P<why>.*)$"
    )

    def usable(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> list[Failure]:
        if _defer_to_pre_commit(ctx, ws.path, failures):
            log.info("%s: the job runs pre-commit; its hooks repair this", self.name)
            return []
        return failures

    def fix(
        self,
        ctx: RepairContext,
        ws: Workspace,
        failures: list[Failure],
        files: list[str],
        result: FixerResult,
    ) -> None:
        if not python_tool(self.tool):
            result.unrepaired.append(
                f"{self.tool} is not available in the orchestrator's environment: "
                f"add it to the orchestrator's requirements to repair {', '.join(files) or 'this'}"
            )
            return
        out = self.run(ctx, ws, [sys.executable, "-m", self.tool, *self.args(), *(files or ["."])])
        if _timed_out(out, self.tool, result):
            ws.reset()
            return
        for line in out.output.splitlines():
            m = self._error.search(line)
            if m:
                where = (resolve_path(m["path"], ws.path) or m["path"]) + m["loc"]
                why = m["why"].strip() or "it does not parse"
                result.unrepaired.append(f"{self.tool} cannot format {where}: {why}")

    def args(self) -> list[str]:
        return []


class IsortFixer(BlackFixer):
    """``isort --check-only`` failed: run isort on the reported files."""

    name = "isort"
    recipes = frozenset({"isort"})
    patterns = frozenset({"isort-check"})
    tool = "isort"
    commit_message = "Sort imports with isort"
    path_patterns = (
        re.compile(r"ERROR: (?P<path>\S+) Imports are incorrectly sorted"),
        re.compile(r"^---\s+(?P<path>\S+\.pyi?):before"),
        re.compile(r"Fixing (?P<path>\S+\.pyi?)"),
    )
    _error = re.compile(
        r"ERROR: (?P<path>[^\s:]+)(?P<loc>(?::\d+)*):? (?P<why>(?!Imports are incorrectly).+)$"
    )

    def args(self) -> list[str]:
        return ["--filter-files"]


# --------------------------------------------------------------------------- pre-commit
class PreCommitFixer(ToolFixer):
    """The job ran the repository's pre-commit hooks: run them on the reported files."""

    name = "pre-commit"
    tool = "pre-commit"
    commit_message = "Apply the repository's pre-commit hooks"
    confidence = 0.9
    path_patterns = (_ANY_PATH,)
    _hook_line = re.compile(r"^(?P<hook>[^\s.][^\n]*?)\.{3,}.*?Failed$")
    _hook_id = re.compile(r"^- hook id: (?P<id>[\w.-]+)")

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return [f for f in failures if f.root_cause and f.category in self.categories]

    def usable(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> list[Failure]:
        if not pre_commit_runs(ctx, ws.path, failures):
            return []
        if not python_tool("pre_commit"):
            result.unrepaired.append(
                "pre-commit is not installed in the orchestrator's environment: the "
                f"repository's hooks ({PRE_COMMIT_CONFIG}) were not run"
            )
            return []
        return failures

    def env(self) -> dict[str, str]:
        cache = Path(tempfile.gettempdir()) / "cicd-orchestrator-pre-commit"
        return {"PRE_COMMIT_HOME": str(cache), "PRE_COMMIT_COLOR": "never"}

    def fix(
        self,
        ctx: RepairContext,
        ws: Workspace,
        failures: list[Failure],
        files: list[str],
        result: FixerResult,
    ) -> None:
        everything = bool(_ALL_FILES.search(failure_text(failures))) or any(
            _ALL_FILES.search(failing_job_text(ws.path, ctx.workflow_path, job))
            for job in sorted({f.job for f in failures})
        )
        scope = ["--files", *files] if files and not everything else ["--all-files"]
        args = [sys.executable, "-m", "pre_commit", "run", "--color", "never", *scope]
        first = self.run(ctx, ws, args)
        if _timed_out(first, "pre-commit run", result):
            ws.reset()
            return
        if first.returncode == 0:
            return
        again = self.run(ctx, ws, args)  # what the hooks could not fix themselves
        if again.returncode != 0 and not _timed_out(again, "pre-commit run", result):
            result.unrepaired.extend(self.failing_hooks(again.output))

    def failing_hooks(self, output: str) -> list[str]:
        out: list[str] = []
        lines = output.splitlines()
        for i, line in enumerate(lines):
            m = self._hook_line.match(line.strip())
            if not m:
                continue
            hook = m.group("hook").strip()
            detail: list[str] = []
            for follow in lines[i + 1 : i + 12]:
                if self._hook_line.match(follow.strip()) or re.search(r"\.{3,}Passed$", follow):
                    break
                hid = self._hook_id.match(follow)
                if hid:
                    hook = f"{hook} ({hid.group('id')})"
                elif follow.strip() and not follow.startswith("- "):
                    detail.append(follow.strip())
            out.append(f"pre-commit hook {hook} has no safe fix: {'; '.join(detail[:4])}")
        return out or [f"pre-commit still fails: {output.strip()[-300:]}"]


# --------------------------------------------------------------------------- node tools
def node_path() -> str | None:
    node = shutil.which("node")
    return os.path.dirname(node) if node else None


class NodeToolFixer(ToolFixer):
    """A node tool the failing job ran, from the repository's own ``node_modules/.bin``."""

    use = re.compile(r"x^")
    fix_args: tuple[str, ...] = ()

    def usable(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> list[Failure]:
        if not job_used(self.use, ctx, ws.path, failures):
            log.info("%s: the failing job did not run %s", self.name, self.tool)
            return []
        if _defer_to_pre_commit(ctx, ws.path, failures):
            return []
        if node_path() is None:
            result.unrepaired.append(f"node is not available: {self.tool} was not run")
            return []
        if not self.binary(ws.path).is_file():
            result.unrepaired.append(
                f"{self.tool} is not installed in the repository "
                f"(node_modules/.bin/{self.tool} is missing; no network installs)"
            )
            return []
        return failures

    def binary(self, root: Path) -> Path:
        return root / "node_modules" / ".bin" / self.tool

    def env(self) -> dict[str, str]:
        from cicd_orchestrator.ci.local.runner import scrubbed_env

        path = scrubbed_env()["PATH"]
        node = node_path()
        if node and node not in path.split(os.pathsep):
            path = f"{path}{os.pathsep}{node}"
        return {"PATH": path}

    def fix(
        self,
        ctx: RepairContext,
        ws: Workspace,
        failures: list[Failure],
        files: list[str],
        result: FixerResult,
    ) -> None:
        out = self.run(ctx, ws, [str(self.binary(ws.path)), *self.fix_args, *(files or ["."])])
        if _timed_out(out, self.tool, result):
            ws.reset()
            return
        self.leftover(ctx, ws, files, out, result)

    def leftover(
        self,
        ctx: RepairContext,
        ws: Workspace,
        files: list[str],
        out: CommandResult,
        result: FixerResult,
    ) -> None:
        """Report what the fix run could not repair."""


class PrettierFixer(NodeToolFixer):
    """``prettier --check`` failed: ``prettier --write`` on the reported files."""

    name = "prettier"
    recipes = frozenset({"prettier"})
    patterns = frozenset({"prettier-check"})
    tool = "prettier"
    commit_message = "Format code with prettier"
    use = re.compile(r"prettier", re.I)
    fix_args = ("--write",)
    path_patterns = (re.compile(r"^\[(?:warn|error)\] (?P<path>[^\s:]+\.\w+)(?::\d+:\d+)?"),)
    _error = re.compile(r"^\[error\] (?P<where>[^\s:]+(?::\d+:\d+)?):? (?P<why>.+)$")

    def leftover(
        self,
        ctx: RepairContext,
        ws: Workspace,
        files: list[str],
        out: CommandResult,
        result: FixerResult,
    ) -> None:
        for line in out.output.splitlines():
            m = self._error.match(line.strip())
            if m:
                result.unrepaired.append(f"prettier cannot format {m['where']}: {m['why']}")


_STYLISH_FILE = re.compile(r"^(?P<path>/?(?:[\w.@-]+/)*[\w.@-]+\.(?:[cm]?[jt]sx?|vue|svelte))$")
_STYLISH_PROBLEM = re.compile(
    r"^\s+(?P<line>\d+):(?P<col>\d+)\s+(?P<sev>error|warning)\s+(?P<msg>.+?)\s{2,}(?P<rule>\S+)$"
)


class EslintFixer(NodeToolFixer):
    """ESLint errors: ``eslint --fix`` on the reported files; the rest reported."""

    name = "eslint"
    recipes = frozenset({"eslint"})
    patterns = frozenset({"eslint-error"})
    tool = "eslint"
    commit_message = "Fix lint errors with eslint --fix"
    use = re.compile(r"eslint", re.I)
    fix_args = ("--fix",)
    path_patterns = (_STYLISH_FILE, re.compile(r"^(?P<path>[^\s:]+):\d+:\d+: "))

    def leftover(
        self,
        ctx: RepairContext,
        ws: Workspace,
        files: list[str],
        out: CommandResult,
        result: FixerResult,
    ) -> None:
        check = self.run(
            ctx, ws, [str(self.binary(ws.path)), "--format", "json", *(files or ["."])]
        )
        if check.returncode == 0 or _timed_out(check, "eslint", result):
            return
        problems = eslint_problems(check.output, ws.path)
        result.unrepaired.extend(f"eslint: no safe fix: {p}" for p in problems[:_MAX_REPORTED])
        if not problems:
            result.unrepaired.append(f"eslint still fails: {check.output.strip()[-300:]}")


def eslint_problems(output: str, root: Path) -> list[str]:
    """``file:line:col rule: message`` for each error of ESLint's json (or stylish) output."""
    found: list[str] = []
    start = output.find("[")
    try:
        data = json.loads(output[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if isinstance(data, list):
        for entry in data:
            path = resolve_path(str(entry.get("filePath", "")), root) or entry.get("filePath")
            for msg in entry.get("messages", []):
                if msg.get("severity", 2) >= 2:
                    found.append(
                        f"{path}:{msg.get('line', 0)}:{msg.get('column', 0)} "
                        f"{msg.get('ruleId') or 'error'}: {msg.get('message', '')}"
                    )
        return found
    current = ""
    for line in output.splitlines():
        header = _STYLISH_FILE.match(line.strip())
        if header:
            current = resolve_path(header["path"], root) or header["path"]
            continue
        m = _STYLISH_PROBLEM.match(line)
        if m and m["sev"] == "error":
            found.append(f"{current}:{m['line']}:{m['col']} {m['rule']}: {m['msg']}")
    return found
