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

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.process import CommandResult, run_command, scrubbed_env
from cicd_orchestrator.repair import files, project_tools
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    failure_lines,
    matching_failures,
    pending_change,
)
from cicd_orchestrator.repair.workflows import failing_job_text

log = logging.getLogger(__name__)

PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
PRE_COMMIT_PATTERN = "pre-commit-hook-failed"
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
        if ".git" not in candidate.parts and files.is_file(root, candidate):
            return candidate.as_posix()
    return None


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
    """Whether the runner tool folder's python has ``module`` (the fixers' tools come from
    there, never from the orchestrator's own environment)."""
    return runner_tools.python() is not None and runner_tools.has_module(module)


def tool_python() -> str:
    """The runner tool folder's python (check :func:`python_tool` first)."""
    return runner_tools.python() or "python3"


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
        data = json.loads(files.read_text(root, "package.json"))
    except (OSError, ValueError):
        return ""
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return "\n".join(str(v) for v in scripts.values()) if isinstance(scripts, dict) else ""


# the job ran the hooks (installing pre-commit, or naming it in a comment, is not running it)
_PRE_COMMIT_USE = re.compile(
    r"\bpre-commit[ \t]+run\b|\bpre_commit[ \t]+run\b|uses:[ \t]*pre-commit/action@|^- hook id:",
    re.M,
)
# the job checked every file (pre-commit/action runs --all-files by default)
_ALL_FILES = re.compile(r"pre-commit run\b[^\n]*--all-files|uses:\s*pre-commit/action@")


def pre_commit_runs(ctx: RepairContext, root: Path, failures: list[Failure]) -> bool:
    """The failing job ran the repository's pre-commit hooks (and it has a configuration)."""
    if not files.is_file(root, PRE_COMMIT_CONFIG):
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
@dataclass
class FixTask:
    """One run of a tool in fix mode: where, for which failures, on which files."""

    ctx: RepairContext
    ws: Workspace
    failures: list[Failure]
    files: list[str]
    result: FixerResult
    #: the version of the tool that ran, or why the project's pin was not honoured
    tool_note: str = ""
    #: folders of the tool the sandbox shows read-only (a pinned tool's environment)
    readable: tuple[str, ...] = ()


def _timed_out(out: CommandResult, what: str, result: FixerResult) -> bool:
    if out.timed_out:
        result.unrepaired.append(f"{what} timed out; nothing it did is proposed")
    return out.timed_out


class ToolFixer(WorkspaceFixer):
    """Run one tool in fix mode on the reported files and propose the resulting diff."""

    categories = frozenset({FailureCategory.QUALITY})
    patterns: frozenset[str] = frozenset()
    tool = "tool"
    commit_message = "Fix code style"
    confidence = 0.95
    path_patterns: tuple[re.Pattern[str], ...] = ()

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return matching_failures(failures, self.categories, self.recipes, self.patterns)

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        usable = self.usable(ctx, ws, failures, result)
        result.applicable = bool(usable) or bool(result.unrepaired)
        if usable:
            files = reported_files(usable, self.path_patterns, ws.path)
            task = FixTask(ctx, ws, usable, files, result)
            self.fix(task)
            self._propose_diff(task)

    def usable(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> list[Failure]:
        """The failures this fixer can act on here (the others are explained in ``result``)."""
        return failures

    def fix(self, task: FixTask) -> None:
        raise NotImplementedError

    def run(self, task: FixTask, args: Sequence[str]) -> CommandResult:
        config = task.ctx.config
        out = run_command(
            args,
            cwd=task.ws.path,
            timeout=config.job_timeout_minutes * 60,
            output_cap=config.output_cap_bytes,
            env_extra=self.env(),
            readable=task.readable,
        )
        log.info("%s: %s exited %s", self.name, " ".join(args[:4]), out.returncode)
        return out

    def run_fix(self, task: FixTask, args: Sequence[str], what: str = "") -> CommandResult | None:
        """Run the tool in fix mode; None, and nothing it did kept, when it timed out."""
        out = self.run(task, args)
        if _timed_out(out, what or self.tool, task.result):
            task.ws.reset()
            return None
        return out

    def env(self) -> dict[str, str]:
        return {}

    def _propose_diff(self, task: FixTask) -> None:
        ws, failures, result = task.ws, task.failures, task.result
        change = pending_change(ws)
        if change is None:
            if not result.unrepaired:
                result.unrepaired.append(f"{self.tool} changed nothing: the failure remains")
            return
        result.repairs.append(
            change_repair(
                self.name,
                FailureCategory.QUALITY,
                change,
                failures,
                description=f"{self.tool} on {', '.join(change.files)}"
                + (f" ({task.tool_note})" if task.tool_note else ""),
                commit_message=self.commit_message,
                confidence=self.confidence if not result.unrepaired else 0.5,
                notes=result.unrepaired[:5],
            )
        )


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

    def fix(self, task: FixTask) -> None:
        command = self.command(task)
        if command is None:
            task.result.unrepaired.append(
                f"{self.tool} is not available in the runner tool folder: "
                "add it to runner-tools.txt to repair "
                f"{', '.join(task.files) or 'this'}"
            )
            return
        out = self.run_fix(task, [*command, *self.args(), *(task.files or ["."])])
        if out is None:
            return
        for line in out.output.splitlines():
            m = self._error.search(line)
            if m:
                where = (resolve_path(m["path"], task.ws.path) or m["path"]) + m["loc"]
                why = m["why"].strip() or "it does not parse"
                task.result.unrepaired.append(f"{self.tool} cannot format {where}: {why}")

    def command(self, task: FixTask) -> list[str] | None:
        """The tool at the version the project pins (see :mod:`.project_tools`), else the
        runner tool folder's; None when neither exists."""
        choice = project_tools.choose(task.ws.path, self.tool)
        task.tool_note = choice.note
        if choice.readable and choice.executable:
            task.readable = choice.readable
            return [choice.executable]
        return [tool_python(), "-m", self.tool] if python_tool(self.tool) else None

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
                "pre-commit is not installed in the runner tool folder: the "
                f"repository's hooks ({PRE_COMMIT_CONFIG}) were not run"
            )
            return []
        return failures

    def env(self) -> dict[str, str]:
        # the hooks' cache stays in the command's own HOME (private in the sandbox): a cache
        # shared between repositories would let one plant hooks for the next
        return {"PRE_COMMIT_COLOR": "never"}

    def fix(self, task: FixTask) -> None:
        jobs = sorted({f.job for f in task.failures})
        everything = bool(_ALL_FILES.search(failure_text(task.failures))) or any(
            _ALL_FILES.search(failing_job_text(task.ws.path, task.ctx.workflow_path, job))
            for job in jobs
        )
        files = task.files
        scope = ["--files", *files] if files and not everything else ["--all-files"]
        args = [tool_python(), "-m", "pre_commit", "run", "--color", "never", *scope]
        # pre-commit needs a repository: a throw-away one, never the workspace's own
        with task.ws.tool_repository():
            first = self.run_fix(task, args, "pre-commit run")
            if first is None or first.returncode == 0:
                return
            again = self.run(task, args)  # what the hooks could not fix themselves
        if again.returncode != 0 and not _timed_out(again, "pre-commit run", task.result):
            task.result.unrepaired.extend(self.failing_hooks(again.output))

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
    node = runner_tools.find("node")
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
            # the version the project declares is installed and run by js-format instead
            log.info("%s: not in the repository's node_modules; left to js-format", self.tool)
            return []
        return failures

    def binary(self, root: Path) -> Path:
        return root / "node_modules" / ".bin" / self.tool

    def env(self) -> dict[str, str]:
        path = scrubbed_env()["PATH"]
        node = node_path()
        if node and node not in path.split(os.pathsep):
            path = f"{path}{os.pathsep}{node}"
        return {"PATH": path}

    def fix(self, task: FixTask) -> None:
        args = [str(self.binary(task.ws.path)), *self.fix_args, *(task.files or ["."])]
        out = self.run_fix(task, args)
        if out is not None:
            self.leftover(task, out)

    def leftover(self, task: FixTask, out: CommandResult) -> None:
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

    def leftover(self, task: FixTask, out: CommandResult) -> None:
        for line in out.output.splitlines():
            m = self._error.match(line.strip())
            if m:
                task.result.unrepaired.append(f"prettier cannot format {m['where']}: {m['why']}")


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

    def leftover(self, task: FixTask, out: CommandResult) -> None:
        args = [str(self.binary(task.ws.path)), "--format", "json", *(task.files or ["."])]
        check = self.run(task, args)
        if check.returncode == 0 or _timed_out(check, "eslint", task.result):
            return
        problems = eslint_problems(check.output, task.ws.path)
        task.result.unrepaired.extend(f"eslint: no safe fix: {p}" for p in problems[:_MAX_REPORTED])
        if not problems:
            task.result.unrepaired.append(f"eslint still fails: {check.output.strip()[-300:]}")


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
