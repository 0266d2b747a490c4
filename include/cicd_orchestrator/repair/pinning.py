"""Build repairs: an upstream release that broke the build is pinned to the version of the last
green run, in the file the repository declares it in; a lock file out of sync is regenerated
with the repository's own tool (when that tool is on PATH).

Every edit is textual and local: the rest of a requirements file, a ``pyproject.toml`` or a
``package.json`` stays byte-identical.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import DependencyChange, Failure, FixerResult, Repair
from cicd_orchestrator.process import run_command
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import Change, Fixer, RepairContext, jobs_of, pending_change
from cicd_orchestrator.repair.dependency import (
    distribution_for,
    read_workflow,
    requirement_files,
)

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 300.0
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "target", "__pycache__"})
_NPM_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies")


@dataclass(frozen=True)
class LockTool:
    """How to regenerate one kind of lock file: the tool and its commands, tried in order."""

    lockfile: str
    manifest: str
    tool: str
    commands: tuple[tuple[str, ...], ...]
    # the next command is tried only when the previous one's output matches this
    fallback_when: str = r"(?!)"
    env: tuple[tuple[str, str], ...] = ()


_NPM = LockTool(
    "package-lock.json",
    "package.json",
    "npm",
    (("install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"),),
    env=(("NPM_CONFIG_UPDATE_NOTIFIER", "false"), ("NPM_CONFIG_PREFER_OFFLINE", "true")),
)
LOCK_TOOLS: dict[str, LockTool] = {
    "package-lock.json": _NPM,
    "npm-shrinkwrap.json": LockTool(
        "npm-shrinkwrap.json", "package.json", "npm", _NPM.commands, env=_NPM.env
    ),
    "pnpm-lock.yaml": LockTool(
        "pnpm-lock.yaml",
        "package.json",
        "pnpm",
        (("install", "--lockfile-only", "--ignore-scripts", "--prefer-offline"),),
    ),
    "poetry.lock": LockTool(
        "poetry.lock",
        "pyproject.toml",
        "poetry",
        (("lock", "--no-update", "--no-interaction"), ("lock", "--no-interaction")),
        # poetry 2 dropped --no-update (it no longer updates on lock by default)
        fallback_when=(
            r"(?i)(?:option|argument).{0,20}no-update|no-update.{0,40}(?:does not exist|unknown)"
        ),
    ),
    "uv.lock": LockTool("uv.lock", "pyproject.toml", "uv", (("lock", "--offline"),)),
    "Cargo.lock": LockTool(
        "Cargo.lock",
        "Cargo.toml",
        "cargo",
        (("update", "--workspace", "--offline"), ("generate-lockfile", "--offline")),
        fallback_when=r"(?i)unexpected argument|unrecognized|wasn't expected",
    ),
}

# A lock file named in a failure, with the words that say it is out of date.
_LOCK_HINT = re.compile(
    r"(?P<lockfile>package-lock\.json|npm-shrinkwrap\.json|pnpm-lock\.yaml|poetry\.lock|uv\.lock"
    r"|Cargo\.lock)"
    r".{0,160}?(?:in sync|needs to be updated|not up to date|was last generated|not consistent"
    r"|--locked|--frozen|out of date)"
    r"|(?:in sync|changed significantly since|cannot update the lock file|lockfile at)"
    r".{0,160}?(?P<lockfile2>package-lock\.json|npm-shrinkwrap\.json|pnpm-lock\.yaml|poetry\.lock"
    r"|uv\.lock|Cargo\.lock)",
    re.IGNORECASE,
)


def normalize(name: str) -> str:
    """PEP 503 normal form (npm names are lowercase already)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------- matching
def _failure_text(failure: Failure) -> str:
    parts = [failure.message, *failure.evidence, *failure.captures.values()]
    parts += [e.text for e in failure.excerpts]
    return "\n".join(p for p in parts if p)


def mentioned(name: str, failure: Failure) -> bool:
    """Whether the failure's evidence, captures or excerpts name the package."""
    norm = normalize(name)
    module = failure.captures.get("module")
    if module:
        dist = distribution_for(module)
        if dist and normalize(dist) == norm:
            return True
    variants = {name, norm, norm.replace("-", "_"), norm.replace("-", ".")}
    alternation = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    rx = re.compile(rf"(?<![\w.@-])(?:{alternation})(?![\w-])", re.IGNORECASE)
    return bool(rx.search(_failure_text(failure)))


def lockfile_named(failure: Failure) -> tuple[str, str] | None:
    """(lock file name, the path as the log gave it) when the failure says it is out of sync."""
    captured = failure.captures.get("lockfile", "")
    if captured:
        base = PurePosixPath(captured).name
        for name in LOCK_TOOLS:
            if name.lower() == base.lower():
                return name, captured
    m = _LOCK_HINT.search(_failure_text(failure))
    if not m:
        return None
    found = m.group("lockfile") or m.group("lockfile2")
    for name in LOCK_TOOLS:
        if name.lower() == found.lower():
            return name, found
    return None


# --------------------------------------------------------------------------- editing
_REQ_LINE = re.compile(
    r"^(?P<indent>\s*)(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\s*\[[^\]]*\])?"
    r"(?P<spec>[^;#]*?)(?P<marker>\s*;[^#]*?)?(?P<comment>\s+#.*)?$"
)


def pin_requirement_line(line: str, name: str, version: str) -> str | None:
    """``line`` with its version specifier replaced by ``==version`` (None: not this package)."""
    stripped = line.strip()
    if not stripped or stripped.startswith(("#", "-")):
        return None
    m = _REQ_LINE.match(line)
    if not m or normalize(m.group("name")) != normalize(name):
        return None
    return (
        f"{m.group('indent')}{m.group('name')}{m.group('extras') or ''}=={version}"
        f"{m.group('marker') or ''}{m.group('comment') or ''}"
    )


def pin_in_requirements(text: str, name: str, version: str) -> str | None:
    """The file with the package pinned (None when it does not declare the package)."""
    lines = text.split("\n")
    found = False
    for i, line in enumerate(lines):
        body, cr = (line[:-1], "\r") if line.endswith("\r") else (line, "")
        pinned = pin_requirement_line(body, name, version)
        if pinned is not None:
            found = True
            lines[i] = pinned + cr
    return "\n".join(lines) if found else None


_STRING = re.compile(r'"(?P<dq>(?:[^"\\\n]|\\.)*)"|\'(?P<sq>[^\'\n]*)\'')


def _toml_array_strings(text: str, start: int) -> list[tuple[int, int, str]]:
    """(start, end, value) of the string items of the TOML array opening at ``start``."""
    items: list[tuple[int, int, str]] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "]":
            return items
        if ch in " \t\r\n,":
            pos += 1
        elif ch == "#":
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl
        elif ch in "\"'":
            m = _STRING.match(text, pos)
            if not m:
                return []
            group = "dq" if ch == '"' else "sq"
            items.append((m.start(group), m.end(group), m.group(group)))
            pos = m.end()
        else:
            return []
    return []


def pin_in_pyproject(text: str, name: str, version: str) -> str | None:
    """``[project].dependencies`` with the package's entry pinned, all else byte-identical."""
    project = re.search(r"(?m)^\[project\][ \t]*\r?$", text)
    if not project:
        return None
    end = re.search(r"(?m)^\[", text[project.end() :])
    section_end = project.end() + end.start() if end else len(text)
    deps = re.compile(r"(?m)^dependencies[ \t]*=[ \t]*\[").search(text, project.end(), section_end)
    if not deps:
        return None
    out = text
    for start, stop, value in reversed(_toml_array_strings(text, deps.end() - 1)):
        pinned = pin_requirement_line(value, name, version)
        if pinned is not None and pinned != value:
            out = out[:start] + pinned + out[stop:]
        elif pinned is not None:
            return None  # already pinned there
    return out if out != text else None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _object_span(text: str, open_at: int) -> int:
    """Index just past the JSON object opening at ``open_at`` (-1 when unbalanced)."""
    depth = 0
    i = open_at
    while i < len(text):
        ch = text[i]
        if ch == '"':
            m = _JSON_STRING.match(text, i)
            i = m.end() if m else len(text)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def pin_in_package_json(text: str, name: str, version: str) -> str | None:
    """package.json with an exact version for ``name``; the rest byte-identical."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for section in _NPM_SECTIONS:
        deps = data.get(section)
        if not isinstance(deps, dict) or name not in deps or deps[name] == version:
            continue
        key = re.compile(rf'"{re.escape(section)}"\s*:\s*\{{').search(text)
        if not key:
            continue
        close = _object_span(text, key.end() - 1)
        entry = re.compile(rf'("{re.escape(name)}"\s*:\s*)"(?:[^"\\]|\\.)*"')
        m = entry.search(text, key.end(), close)
        if not m:
            continue
        out = text[: m.start()] + m.group(1) + json.dumps(version) + text[m.end() :]
        expected = json.loads(text)
        expected[section][name] = version
        if json.loads(out) == expected:
            return out
    return None


# --------------------------------------------------------------------------- lock files
def find_tool(tool: str) -> str | None:
    """The tool's absolute path in the runner tool folder or the system's directories (None
    when it is not installed there); never from the orchestrator's own PATH."""
    return runner_tools.find(tool)


def _tool_env(exe: str, lock: LockTool) -> dict[str, str]:
    """PATH with the tool's directory first; rustup's homes for a rustup-managed cargo."""
    from cicd_orchestrator.process import scrubbed_env

    tool_dir = os.path.dirname(exe)
    env = {"PATH": os.pathsep.join([tool_dir, scrubbed_env()["PATH"]]), **dict(lock.env)}
    if lock.tool == "cargo":
        for var in ("CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"):
            if os.environ.get(var):
                env[var] = os.environ[var]
        home = Path(tool_dir).parent
        if home.name == ".cargo":
            env.setdefault("CARGO_HOME", str(home))
            if (home.parent / ".rustup").is_dir():
                env.setdefault("RUSTUP_HOME", str(home.parent / ".rustup"))
    return env


def regenerate_lock(directory: Path, lock: LockTool, timeout: float = LOCK_TIMEOUT) -> str | None:
    """Run the repository's own tool in ``directory``; None when it worked, else why not."""
    exe = find_tool(lock.tool)
    if exe is None:
        return f"{lock.tool} is not installed in the runner tool folder or the system"
    env = _tool_env(exe, lock)
    output = ""
    for args in lock.commands:
        result = run_command([exe, *args], cwd=directory, timeout=timeout, env_extra=env)
        log.info("%s %s: exit %s", lock.tool, " ".join(args), result.returncode)
        if result.timed_out:
            return f"`{lock.tool} {' '.join(args)}` timed out after {timeout:.0f}s"
        if result.returncode == 0:
            return None
        output = result.output
        if not re.search(lock.fallback_when, output):
            break
    tail = " ".join(output.strip().splitlines()[-3:])[:300]
    return f"`{lock.tool} {' '.join(lock.commands[0])}` failed: {tail}"


def _walk(root: Path, name: str) -> list[Path]:
    found: list[Path] = []
    for folder, _, names in files.walk(root, _SKIP_DIRS, lambda n: n == name):
        if name in names:
            found.append(folder / name)
    return found


def lock_targets(root: Path, name: str, as_logged: str, changed: Iterable[str]) -> list[Path]:
    """The lock files the failure means: by the logged path, else beside a changed manifest."""
    lock = LOCK_TOOLS[name]
    candidates = [p for p in _walk(root, name) if files.is_file(root, p.parent / lock.manifest)]
    logged = as_logged.replace("\\", "/")
    by_path = [p for p in candidates if logged.endswith(str(p.relative_to(root)))]
    if len(by_path) == 1:
        return by_path
    changed_dirs = {str(PurePosixPath(c).parent) for c in changed}
    near = [p for p in candidates if str(p.parent.relative_to(root)) in changed_dirs]
    if len(candidates) <= 1:
        return candidates
    return near or candidates[:1]


# --------------------------------------------------------------------------- the fixer
@dataclass
class _Plan:
    pins: dict[str, tuple[DependencyChange, Failure, bool]] = field(default_factory=dict)
    locks: dict[str, tuple[str, Failure]] = field(default_factory=dict)


class PinDependencyFixer(Fixer):
    """Pins the upstream release that broke the build; regenerates an out-of-sync lock file."""

    name = "pin-dependency"
    categories = frozenset({FailureCategory.BUILD, FailureCategory.TEST})
    recipes = frozenset({"pin-dependency"})

    def _candidates(self, ctx: RepairContext) -> list[Failure]:
        changes = [c for c in (ctx.context.dependency_changes if ctx.context else []) if c.before]
        return [
            f
            for f in ctx.failures
            if f.root_cause
            and f.category in self.categories
            and (
                f.recipe in self.recipes
                or lockfile_named(f) is not None
                or any(mentioned(c.name, f) for c in changes)
            )
        ]

    def _plan(self, ctx: RepairContext, failures: list[Failure], result: FixerResult) -> _Plan:
        plan = _Plan()
        changes = [c for c in (ctx.context.dependency_changes if ctx.context else []) if c.before]
        upgraded = [c for c in changes if c.after]
        for failure in failures:
            lock = lockfile_named(failure)
            if lock:
                plan.locks.setdefault(lock[0], (lock[1], failure))
                continue
            named = [c for c in changes if mentioned(c.name, failure)]
            if named:
                for change in named:
                    plan.pins.setdefault(normalize(change.name), (change, failure, True))
            elif failure.recipe in self.recipes and len(upgraded) == 1:
                # one upstream release changed since the last green run: the likely cause
                plan.pins.setdefault(normalize(upgraded[0].name), (upgraded[0], failure, False))
            else:
                result.unrepaired.append(
                    f"{failure.job}: no dependency version that changed since the last green "
                    "run is named by the failure: nothing to pin"
                    + ("" if changes else " (no dependency versions were compared)")
                )
        return plan

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self._candidates(ctx)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        plan = self._plan(ctx, relevant, result)
        if not plan.pins and not plan.locks:
            result.seconds = round(time.monotonic() - start, 3)
            return result
        with ctx.workspace() as ws, files.refusals(result):
            installs = read_workflow(ws, ctx.workflow_path)
            pinned, manifests = self._apply_pins(ws, installs, plan, result)
            changed = ctx.changed_files + manifests
            regenerated = self._apply_locks(ctx, ws, plan, manifests, changed, result)
            change = pending_change(ws)
            if change is not None:
                result.repairs.append(self._repair(plan, pinned, regenerated, change))
        result.seconds = round(time.monotonic() - start, 3)
        return result

    # ------------------------------------------------------------------ pins
    def _apply_pins(
        self, ws: Workspace, workflow_text: str, plan: _Plan, result: FixerResult
    ) -> tuple[list[str], list[str]]:
        pinned: list[str] = []
        touched: list[str] = []
        for change, failure, _ in plan.pins.values():
            version = change.before or ""
            files = self._pin(ws, workflow_text, change.name, version)
            if files:
                pinned.append(change.name)
                touched += files
            else:
                result.unrepaired.append(
                    f"{failure.job}: {change.name} changed from {change.before} to "
                    f"{change.after or '(removed)'} since the last green run, but no "
                    "requirements file, pyproject.toml or package.json of the repository "
                    "declares it (a transitive dependency?): pin it by hand"
                )
        return pinned, touched

    @staticmethod
    def _pin(ws: Workspace, workflow_text: str, name: str, version: str) -> list[str]:
        touched: list[str] = []
        requirements = {p: None for p in requirement_files(ws, workflow_text)}
        requirements.update({p: None for p in files.glob(ws.path, "requirements/*.txt")})
        requirements.update({p: None for p in files.glob(ws.path, "constraints*.txt")})
        editors = [(p, pin_in_requirements) for p in requirements if files.is_file(ws.path, p)]
        editors += [(p, pin_in_pyproject) for p in _walk(ws.path, "pyproject.toml")]
        editors += [(p, pin_in_package_json) for p in _walk(ws.path, "package.json")]
        for path, edit in editors:
            text = files.read_bytes(ws.path, path).decode("utf-8", errors="surrogateescape")
            out = edit(text, name, version)
            if out is not None and out != text:
                files.write_bytes(ws.path, path, out.encode("utf-8", errors="surrogateescape"))
                touched.append(str(path.relative_to(ws.path)))
        return touched

    # ------------------------------------------------------------------ lock files
    def _apply_locks(
        self,
        ctx: RepairContext,
        ws: Workspace,
        plan: _Plan,
        manifests: list[str],
        changed: list[str],
        result: FixerResult,
    ) -> list[str]:
        wanted: dict[Path, tuple[str, str]] = {}
        for name, (as_logged, failure) in plan.locks.items():
            targets = lock_targets(ws.path, name, as_logged, changed)
            if not targets:
                result.unrepaired.append(
                    f"{failure.job}: {name} is out of sync, but the repository has no {name} "
                    f"beside a {LOCK_TOOLS[name].manifest}"
                )
            for path in targets:
                wanted[path] = (name, failure.job)
        # a pin in a manifest puts the lock file beside it out of sync too
        for manifest in manifests:
            directory = (ws.path / manifest).parent
            for name, lock in LOCK_TOOLS.items():
                if lock.manifest == PurePosixPath(manifest).name and files.is_file(
                    ws.path, directory / name
                ):
                    wanted.setdefault(directory / name, (name, f"after the pin in {manifest}"))
        timeout = min(LOCK_TIMEOUT, ctx.config.job_timeout_minutes * 60)
        done: list[str] = []
        for path, (name, job) in wanted.items():
            rel = str(path.relative_to(ws.path))
            error = regenerate_lock(path.parent, LOCK_TOOLS[name], timeout)
            if error is None:
                done.append(rel)
            else:
                result.unrepaired.append(f"{job}: {rel} was not regenerated: {error}")
        return done

    # ------------------------------------------------------------------ the repair
    def _repair(
        self, plan: _Plan, pinned: list[str], regenerated: list[str], change: Change
    ) -> Repair:
        changes = [plan.pins[normalize(n)][0] for n in pinned]
        pins = [f"{c.name} {c.after or '(removed)'} -> {c.before}" for c in changes]
        failures = [plan.pins[normalize(n)][1] for n in pinned]
        failures += [f for _, f in plan.locks.values()]
        parts = []
        if pins:
            parts.append(
                "temporarily pin " + ", ".join(f"{c.name}=={c.before}" for c in changes) + " "
                f"(the last green run used {', '.join(f'{c.name} {c.before}' for c in changes)}; "
                f"the failing run got {', '.join(f'{c.name} {c.after}' for c in changes)})"
            )
        if regenerated:
            parts.append("regenerate " + ", ".join(regenerated))
        if pins:
            message = "Temporarily pin " + "; ".join(
                f"{c.name} to {c.before} (last green run) instead of {c.after or '(removed)'}"
                for c in changes
            )
            message += "\n\nA temporary pin: remove it once the upstream release is fixed."
            if regenerated:
                message += f"\nRegenerated {', '.join(regenerated)}."
        else:
            message = f"Regenerate {', '.join(regenerated)} (out of sync with its manifest)"
        heuristic = any(not plan.pins[normalize(n)][2] for n in pinned)
        confidence = 0.8 if not pins else (0.55 if heuristic else 0.75)
        return Repair(
            fixer=self.name,
            kind=RepairKind.CHANGE,
            category=FailureCategory.BUILD,
            description="; ".join(parts) + f" in {', '.join(change.files)}",
            jobs=jobs_of(failures),
            patch=change.patch,
            files=change.files,
            commit_message=message,
            confidence=confidence,
            evidence=[*(f"dependency changed: {p}" for p in pins)]
            + [e for f in failures for e in f.evidence[:2]],
            notes=[f"temporary pin: {c.name}=={c.before}" for c in changes],
        )
