"""Quality repairs of JavaScript and TypeScript code style with prettier and eslint at the
version the project uses (see :mod:`.js_tools`), for a clone without ``node_modules``.

When it applies, from the failure's log (the toolchains' own output, not one project's):

- prettier's check: its summary (``Code style issues found in the above file.`` /
  ``... in 3 files.``, then ``Run Prettier with --write to fix.`` or, before prettier 3,
  ``Forgot to run Prettier?``), the ``[warn] <path>`` lines naming the files;
- eslint's stylish summary ``✖ N problems (E errors, W warnings)`` with
  ``... potentially fixable with the `--fix` option``: ``eslint --fix``;
- eslint problems of the ``prettier/prettier`` rule: the file is not formatted the way
  prettier wants, so prettier itself formats it (the plugin that reports it is not needed).

What runs: ``node <tool folder>/node_modules/prettier/bin/prettier.cjs --write <files>`` and
``node <tool folder>/node_modules/eslint/bin/eslint.js --fix <files>`` (the files the log
names, else ``.``), in the clone, in the command sandbox with no network; prettier reads the
project's ``.prettierrc`` and ``.prettierignore`` itself, eslint its configuration. A tool
is run only when it can work as the project's CI does with nothing else installed: prettier
when its configuration names no plugin nor shared configuration, eslint when its
configuration loads nothing beyond eslint (a flat ``eslint.config.*`` importing only
``@eslint/js``, a legacy ``.eslintrc*`` whose only ``extends`` is ``eslint:recommended``);
otherwise a note says what it would need. ``@eslint/js`` comes with eslint: a link
``node_modules`` to the tool folder's is put in the clone while eslint runs.

A repository with its own ``node_modules/.bin/<tool>`` is left to the fixer that runs that
one, a job that runs pre-commit to its hooks. Each tool's change is one repair; what a tool
could not fix is reported with its location.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.process import CommandResult, run_command, scrubbed_env
from cicd_orchestrator.repair import files, js_tools
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    failure_lines,
    pending_change,
)
from cicd_orchestrator.repair.formatters import (
    eslint_problems,
    pre_commit_runs,
    python_tool,
    resolve_path,
)
from cicd_orchestrator.repair.npm_dependency import NODE_BUILTINS
from cicd_orchestrator.repair.project_tools import ToolInstallError

log = logging.getLogger(__name__)

PRETTIER_PATTERNS = frozenset({"prettier-check"})
ESLINT_PATTERNS = frozenset({"eslint-error"})
_MAX_REPORTED = 40

# --------------------------------------------------------------------------- the log
_PRETTIER_SUMMARY = re.compile(
    r"Code style issues (?:were )?found in (?:the above file(?:\(s\)|s)?|\d+ files?)"
    r"|Run Prettier(?: with --write)? to fix|Forgot to run Prettier\?"
)
_PRETTIER_FILE = re.compile(r"^\[warn\]\s+(?P<path>[^\s\[\]]+\.[A-Za-z][\w]{0,9})\s*$")
_ESLINT_SUMMARY = re.compile(r"✖ \d+ problems? \(\d+ errors?, \d+ warnings?\)")
_ESLINT_FIXABLE = re.compile(r"\d+ errors? and \d+ warnings? potentially fixable with the `--fix`")
_JS_FILE = r"(?:[\w.@-]+/)*[\w.@-]+\.(?:[cm]?[jt]sx?|vue|svelte|astro)"
_STYLISH_FILE = re.compile(rf"^(?P<path>/?{_JS_FILE})$")
_STYLISH_PROBLEM = re.compile(r"^\s+\d+:\d+\s+(?:error|warning)\s+.+?\s{2,}(?P<rule>[\w@/-]+)$")
# the "unix" and "compact" formats: one problem a line, its file first
_LINE_PROBLEM = re.compile(
    rf"^(?P<path>/?{_JS_FILE}):(?: line )?\d+(?::|, col )\d+[:,] .*?"
    r"(?:\[(?:Error|Warning)/(?P<rule>[\w@/-]+)\]|\((?P<rule2>[\w@/-]+)\))?$"
)


@dataclass
class LogFindings:
    """What a failure's log shows of prettier and eslint (paths as the log gives them)."""

    prettier: bool = False
    prettier_files: list[str] = field(default_factory=list)
    eslint: bool = False
    #: whether eslint said some problems are fixable with --fix (None: the log does not say)
    eslint_fixable: bool | None = None
    eslint_files: list[str] = field(default_factory=list)
    #: the files with problems of the ``prettier/prettier`` rule
    eslint_prettier_files: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return self.prettier or self.eslint or bool(self.eslint_prettier_files)


def _add(found: list[str], path: str) -> None:
    if path not in found:
        found.append(path)


def _eslint_line(line: str, current: str, seen: LogFindings) -> str:
    """Read one line of eslint's output into ``seen``; the stylish file it is under."""
    header = _STYLISH_FILE.match(line.strip())
    if header:
        return header["path"]
    problem = _STYLISH_PROBLEM.match(line)
    path, rule = (current, problem["rule"]) if problem and current else ("", "")
    compact = _LINE_PROBLEM.match(line.strip()) if not problem else None
    if compact:
        path, rule = compact["path"], compact["rule"] or compact["rule2"] or ""
    if path:
        _add(seen.eslint_prettier_files if rule == "prettier/prettier" else seen.eslint_files, path)
    return current


def read_log(lines: Iterable[str], pattern: str | None = None) -> LogFindings:
    """What ``lines`` (one failure's log) show of prettier's and eslint's output."""
    seen = LogFindings(prettier=pattern in PRETTIER_PATTERNS, eslint=pattern in ESLINT_PATTERNS)
    current = ""
    for line in lines:
        if _PRETTIER_SUMMARY.search(line):
            seen.prettier = True
            continue
        warned = _PRETTIER_FILE.match(line.strip())
        if warned:
            _add(seen.prettier_files, warned["path"])
            continue
        if _ESLINT_SUMMARY.search(line):
            seen.eslint = True
            seen.eslint_fixable = bool(seen.eslint_fixable)
        if _ESLINT_FIXABLE.search(line):
            seen.eslint = seen.eslint_fixable = True
        current = _eslint_line(line, current, seen)
    if not seen.prettier:
        seen.prettier_files.clear()  # "[warn]" lines of something else
    if not seen.eslint and not seen.eslint_prettier_files:
        seen.eslint_files.clear()
    return seen


def findings(failures: Sequence[Failure]) -> LogFindings:
    """The findings of all ``failures`` together."""
    out = LogFindings()
    for failure in failures:
        one = read_log(failure_lines([failure]), failure.pattern)
        out.prettier |= one.prettier
        out.eslint |= one.eslint
        if one.eslint_fixable is not None:
            out.eslint_fixable = bool(out.eslint_fixable) or one.eslint_fixable
        for mine, theirs in (
            (out.prettier_files, one.prettier_files),
            (out.eslint_files, one.eslint_files),
            (out.eslint_prettier_files, one.eslint_prettier_files),
        ):
            for path in theirs:
                _add(mine, path)
    return out


# --------------------------------------------------------------------------- configurations
FLAT_CONFIGS = tuple(f"eslint.config.{ext}" for ext in ("js", "mjs", "cjs", "ts", "mts", "cts"))
LEGACY_CONFIGS: tuple[str, ...] = (".eslintrc.js", ".eslintrc.cjs", ".eslintrc.yaml")
LEGACY_CONFIGS += (".eslintrc.yml", ".eslintrc.json", ".eslintrc")
PRETTIER_CONFIGS: tuple[str, ...] = (".prettierrc", ".prettierrc.json", ".prettierrc.yaml")
PRETTIER_CONFIGS += (".prettierrc.yml", ".prettierrc.json5", ".prettierrc.toml")
PRETTIER_JS_CONFIGS = tuple(
    f"{stem}.{ext}"
    for stem in (".prettierrc", "prettier.config")
    for ext in ("js", "mjs", "cjs", "ts", "mts", "cts")
)
#: what eslint brings itself (``@eslint/js`` is one of its dependencies)
ESLINT_OWN = frozenset({"eslint", "@eslint/js"})
_BUILT_IN_EXTENDS = frozenset({"eslint:recommended", "eslint:all"})
_IMPORT = re.compile(r"""(?:\bfrom|\bimport\s*\(?|\brequire\s*\()\s*['"](?P<m>[^'"]+)['"]""")
_QUOTED = re.compile(r"""['"]([^'"]+)['"]""")


def _bare(module: str) -> bool:
    return not (module.startswith("node:") or module.split("/")[0] in NODE_BUILTINS)


def imported(text: str, own: frozenset[str] = frozenset()) -> list[str]:
    """The modules a JavaScript file imports or requires, less node's and ``own``."""
    found: list[str] = []
    for m in _IMPORT.finditer(text):
        module = m["m"]
        if _bare(module) and module not in own:
            _add(found, module)
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _legacy_needs(data: Any) -> list[str]:
    """What a legacy eslint configuration object loads beyond eslint (overrides included)."""
    if not isinstance(data, dict):
        return []
    needs = [*_strings(data.get("plugins"))]
    needs += [e for e in _strings(data.get("extends")) if e not in _BUILT_IN_EXTENDS]
    needs += _strings(data.get("parser"))
    for override in data.get("overrides") or []:
        needs += _legacy_needs(override)
    return list(dict.fromkeys(needs))


def _legacy_js_needs(text: str) -> list[str]:
    needs = imported(text)
    for key in ("plugins", "extends", "parser"):
        for m in re.finditer(rf"\b{key}\s*:\s*(\[[^\]]*\]|['\"][^'\"]*['\"])", text):
            needs += [v for v in _QUOTED.findall(m[1]) if v not in _BUILT_IN_EXTENDS]
    return list(dict.fromkeys(needs))


def _load(root: Path, rel: str) -> Any:
    """A JSON, YAML or TOML configuration file (``//`` comment lines dropped); raises ValueError."""
    text = files.read_text(root, rel)
    if rel.endswith(".toml"):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{rel} cannot be read: {exc}") from exc
    text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{rel} cannot be read: {exc}") from exc


def _package_key(root: Path, key: str) -> Any:
    try:
        data = json.loads(files.read_text(root, "package.json"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data.get(key) if isinstance(data, dict) else None


@dataclass(frozen=True)
class EslintConfig:
    """The project's eslint configuration: its file, whether it is legacy, what it needs."""

    source: str
    legacy: bool
    needs: tuple[str, ...]


def eslint_config(root: Path) -> EslintConfig | None:
    """The eslint configuration at the top of ``root`` (None when it has none)."""
    for rel in FLAT_CONFIGS:
        if files.is_file(root, rel):
            text = files.read_text(root, rel, errors="replace")
            loader = ("jiti",) if rel.endswith("ts") else ()
            return EslintConfig(rel, False, (*loader, *imported(text, ESLINT_OWN)))
    for rel in LEGACY_CONFIGS:
        if not files.is_file(root, rel):
            continue
        if rel.endswith("js"):
            needs = _legacy_js_needs(files.read_text(root, rel, errors="replace"))
            return EslintConfig(rel, True, tuple(needs))
        try:
            return EslintConfig(rel, True, tuple(_legacy_needs(_load(root, rel))))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return EslintConfig(rel, True, (f"a readable {rel}: {exc}",))
    inline = _package_key(root, "eslintConfig")
    if isinstance(inline, dict):
        return EslintConfig("package.json", True, tuple(_legacy_needs(inline)))
    return None


def prettier_needs(root: Path) -> list[str]:
    """The plugins and shared configurations the project's prettier configuration loads."""
    shared = _package_key(root, "prettier")
    if isinstance(shared, str):
        return [shared]
    configs: list[Any] = [shared] if isinstance(shared, dict) else []
    for rel in PRETTIER_CONFIGS:
        if files.is_file(root, rel):
            try:
                configs.append(_load(root, rel))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                return [f"a readable {rel}: {exc}"]
    needs: list[str] = []
    for config in configs:
        needs += _strings(config) if isinstance(config, str) else []  # a shared config
        needs += _strings(config.get("plugins")) if isinstance(config, dict) else []
    for rel in PRETTIER_JS_CONFIGS:
        if files.is_file(root, rel):
            text = files.read_text(root, rel, errors="replace")
            needs += imported(text)
            for m in re.finditer(r"\bplugins\s*:\s*\[([^\]]*)\]", text):
                needs += _QUOTED.findall(m[1])
    return list(dict.fromkeys(needs))


# --------------------------------------------------------------------------- running
@dataclass
class Run:
    """One tool to run: for which failures, on which files, how."""

    tool: str
    failures: list[Failure]
    reported: list[str]
    commit_message: str
    confidence: float


def _node() -> str | None:
    return runner_tools.find("node")


@contextlib.contextmanager
def _tool_modules(ws: Workspace, folder: Path) -> Iterator[None]:
    """``node_modules`` of the clone linked to the tool folder's while a tool runs (so that a
    configuration's ``import js from "@eslint/js"`` resolves), removed afterwards; nothing
    when the clone has its own."""
    link = ws.path / "node_modules"
    if os.path.lexists(link):
        yield
        return
    os.symlink(os.path.realpath(folder / "node_modules"), link)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a tool may have replaced it: its own change
            os.unlink(link)


class JsFormatFixer(WorkspaceFixer):
    """prettier --write and eslint --fix at the project's versions, installed for the fix."""

    name = "js-format"
    categories = frozenset({FailureCategory.QUALITY})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return [
            f
            for f in failures
            if f.root_cause
            and f.category in self.categories
            and read_log(failure_lines([f]), f.pattern).any
        ]

    def enabled(self, ctx: RepairContext) -> bool:
        return True  # prettier and eslint each have their switch ("prettier", "eslint")

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        seen = findings(failures)
        switches = ctx.config.enabled_fixers
        if (seen.prettier or seen.eslint_prettier_files) and "prettier" in switches:
            reported = [*seen.prettier_files, *seen.eslint_prettier_files]
            run = Run("prettier", failures, reported, "Format code with prettier", 0.95)
            self._run(ctx, ws, run, result)
        if seen.eslint and seen.eslint_fixable is False and not seen.eslint_prettier_files:
            result.unrepaired.append("eslint reports no problem that eslint --fix can fix")
        elif seen.eslint and "eslint" in switches:
            run = Run(
                "eslint", failures, seen.eslint_files, "Fix lint errors with eslint --fix", 0.9
            )
            self._run(ctx, ws, run, result)

    # ------------------------------------------------------------------ one tool
    def _skip(self, ctx: RepairContext, ws: Workspace, run: Run) -> str | None:
        """Why ``run`` is left to another fixer or cannot run here (None: it runs)."""
        if (ws.path / "node_modules" / ".bin" / run.tool).is_file():
            log.info("%s: the repository has its own %s", self.name, run.tool)
            return ""  # the fixer of the repository's own tool runs it
        if (
            "pre-commit" in ctx.config.enabled_fixers
            and python_tool("pre_commit")
            and pre_commit_runs(ctx, ws.path, run.failures)
        ):
            return ""  # the repository's pre-commit hooks repair it
        if _node() is None:
            return f"node is not available: {run.tool} was not run"
        needs = self._needs(ws.path, run.tool)
        if needs is not None:
            return needs
        return None

    def _needs(self, root: Path, tool: str) -> str | None:
        """Why the tool cannot run with nothing but itself (None: it can)."""
        if tool == "prettier":
            plugins = prettier_needs(root)
            if plugins:
                return f"prettier --write needs the project's plugins ({', '.join(plugins)})"
            return None
        config = eslint_config(root)
        if config is None:
            return "eslint --fix was not run: no eslint configuration at the top of the repository"
        if config.needs:
            return f"eslint --fix needs the project's plugins ({', '.join(config.needs)})"
        return None

    def _run(self, ctx: RepairContext, ws: Workspace, run: Run, result: FixerResult) -> None:
        skip = self._skip(ctx, ws, run)
        if skip is not None:
            if skip:
                result.unrepaired.append(skip)
            return
        wanted = js_tools.declared(ws.path, run.tool)
        if wanted is None:
            result.unrepaired.append(
                f"the project does not declare {run.tool} (package-lock.json, package.json): "
                f"{run.tool} was not run"
            )
            return
        try:
            folder = js_tools.install(run.tool, wanted.spec)
        except ToolInstallError as exc:
            result.unrepaired.append(f"{wanted.describe()}, could not be installed: {exc}")
            return
        paths = [p for p in (resolve_path(r, ws.path) for r in run.reported) if p]
        version = js_tools.installed_version(folder, run.tool) or wanted.spec
        note = f"{run.tool} {version}, " + wanted.describe().split(", ", 1)[1]
        links = _tool_modules(ws, folder) if run.tool == "eslint" else contextlib.nullcontext()
        with links:
            out = self._command(ctx, ws, folder, run.tool, paths, fix=True)
            if out.timed_out:
                ws.reset()
                result.unrepaired.append(f"{run.tool} timed out; nothing it did is proposed")
                return
            left = self._leftover(ctx, ws, folder, run.tool, paths, out)
        result.unrepaired.extend(left)
        self._propose(ws, run, result, note, left)

    def _command(
        self,
        ctx: RepairContext,
        ws: Workspace,
        folder: Path,
        tool: str,
        paths: list[str],
        *,
        fix: bool,
    ) -> CommandResult:
        node = str(_node())
        script = str(js_tools.script(folder, tool))
        mode = ["--write"] if tool == "prettier" else ["--fix"] if fix else ["--format", "json"]
        env = {"PATH": os.pathsep.join([os.path.dirname(node), scrubbed_env()["PATH"]])}
        config = eslint_config(ws.path) if tool == "eslint" else None
        if config and config.legacy:
            env["ESLINT_USE_FLAT_CONFIG"] = "false"  # eslint 9 reads a legacy one only so
        out = run_command(
            [node, script, *mode, *(paths or ["."])],
            cwd=ws.path,
            timeout=ctx.config.job_timeout_minutes * 60,
            output_cap=ctx.config.output_cap_bytes,
            env_extra=env,
            readable=[str(folder), *js_tools.node_readable(node)],
        )
        log.info("%s: %s %s exited %s", self.name, tool, " ".join(mode), out.returncode)
        return out

    def _leftover(
        self,
        ctx: RepairContext,
        ws: Workspace,
        folder: Path,
        tool: str,
        paths: list[str],
        out: CommandResult,
    ) -> list[str]:
        """What the tool could not fix, with its location."""
        if tool == "prettier":
            return [
                f"prettier cannot format {m['where']}: {m['why']}"
                for m in map(_PRETTIER_ERROR.match, out.output.splitlines())
                if m
            ][:_MAX_REPORTED]
        check = self._command(ctx, ws, folder, tool, paths, fix=False)
        if check.returncode == 0 or check.timed_out:
            return []
        problems = eslint_problems(check.output, ws.path)
        if not problems:
            return [f"eslint still fails: {check.output.strip()[-300:]}"]
        return [f"eslint: no safe fix: {p}" for p in problems[:_MAX_REPORTED]]

    def _propose(
        self, ws: Workspace, run: Run, result: FixerResult, note: str, left: list[str]
    ) -> None:
        change = pending_change(ws)
        if change is None:
            if not left:
                result.unrepaired.append(f"{run.tool} changed nothing: the failure remains")
            return
        result.repairs.append(
            change_repair(
                run.tool,
                FailureCategory.QUALITY,
                change,
                run.failures,
                description=f"{run.tool} on {', '.join(change.files)} ({note})",
                commit_message=run.commit_message,
                confidence=run.confidence if not left else 0.5,
                notes=[note, *left[:5]],
            )
        )
        ws.commit(run.commit_message)


_PRETTIER_ERROR = re.compile(r"^\[error\] (?P<where>[^\s:]+(?::\d+:\d+)?):? (?P<why>.+)$")
