"""Build repairs for JavaScript: a package the code imports but ``package.json`` does not
declare (node's ``Cannot find module 'x'``, webpack's ``Can't resolve 'x'``, ESM's ``Cannot
find package 'x' imported from``, tsc's ``TS2307``) becomes a dependency under its package
name: ``@scope/name`` for a scoped import, ``lodash`` for ``lodash/fp``; never a relative
path, an alias or a node builtin, never the repository's own packages. It goes to
``devDependencies`` when a test or configuration file imports it, into the ``package.json``
nearest to that file, by a minimal text edit that keeps the file's indentation and key order.
The version is the one the lock file or ``node_modules`` holds, with the range prefix the
manifest uses; the lock file is brought up to date only when npm can do it offline.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.process import run_command
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    evidence_of,
    failure_lines,
    pending_change,
)
from cicd_orchestrator.repair.package_json import PackageJsonError, add_dependency

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- package names
NODE_PATTERNS = frozenset({"node-module-not-found"})
#: the modules node provides itself (``require('module').builtinModules``)
NODE_BUILTINS = frozenset(
    {
        "assert",
        "async_hooks",
        "buffer",
        "child_process",
        "cluster",
        "console",
        "constants",
        "crypto",
        "dgram",
        "diagnostics_channel",
        "dns",
        "domain",
        "events",
        "fs",
        "http",
        "http2",
        "https",
        "inspector",
        "module",
        "net",
        "os",
        "path",
        "perf_hooks",
        "process",
        "punycode",
        "querystring",
        "readline",
        "repl",
        "stream",
        "string_decoder",
        "sys",
        "timers",
        "tls",
        "trace_events",
        "tty",
        "url",
        "util",
        "v8",
        "vm",
        "wasi",
        "worker_threads",
        "zlib",
        "test",
        "sqlite",
        "sea",
    }
)
_PACKAGE = re.compile(r"(?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*")
_IMPORTERS = (
    re.compile(r"^\s*-\s+(?P<path>\S+\.[cm]?[jt]sx?)\s*$"),  # node's "Require stack:"
    re.compile(r"Cannot find package '[^']+' imported from (?P<path>\S+)"),  # ESM
    re.compile(r"Can't resolve '[^']+' in '(?P<folder>[^']+)'"),  # webpack
    re.compile(r"^ERROR in (?P<path>\S+\.(?:[cm]?[jt]sx?|vue|svelte))"),  # webpack's header
    re.compile(
        r"(?P<path>[\w./@-]+\.(?:[cm]?[jt]sx?|vue|svelte))(?:\(\d+,\d+\)|:\d+:\d+)"
        r"\s*(?:-\s*)?:?\s*error TS2307"
    ),  # tsc
)
_DEV_PATH = re.compile(
    r"(?:^|/)(?:__tests__|__mocks__|tests?|spec|e2e|cypress|playwright)(?:/|$)"
    r"|\.(?:test|spec|stories|cy)\.[cm]?[jt]sx?$"
    r"|(?:^|/)[^/]*\.config\.[cm]?[jt]s$"
    r"|(?:^|/)(?:\.eslintrc|\.prettierrc|\.babelrc|babel\.config|gulpfile|gruntfile"
    r"|karma\.conf|jest\.setup|setuptests)[^/]*$",
    re.I,
)


def package_name(spec: str) -> tuple[str | None, str]:
    """The package a module specifier names, or None and why it names none (a relative
    path, a node builtin, a path alias)."""
    if spec.startswith("node:") or spec.split("/")[0] in NODE_BUILTINS:
        return None, f"{spec} is a node builtin module: not a missing dependency"
    if spec.startswith((".", "/", "~", "#")) or re.match(r"^[A-Za-z]:[\\/]", spec):
        return None, f"{spec} is a path, not a package: not a missing dependency"
    parts = spec.split("/")
    name = "/".join(parts[:2]) if spec.startswith("@") else parts[0]
    if not _PACKAGE.fullmatch(name) or (spec.startswith("@") and len(parts) < 2):
        return None, f"{spec} is not a package name (a path alias?): not a missing dependency"
    return name, ""


def repository_path(root: Path, path: str, folder: bool = False) -> str | None:
    """``path`` (relative, or absolute on the CI machine) as a file (or folder) of the
    repository: the longest tail of it that is one."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    check = files.is_dir if folder else files.is_file
    for i in range(len(parts)):
        if ".." not in parts[i:] and check(root, "/".join(parts[i:])):
            return "/".join(parts[i:])
    return None


def importer(root: Path, failure: Failure) -> str | None:
    """The repository file (or, for webpack, folder) whose import failed."""
    for line in failure_lines([failure]):
        for rx in _IMPORTERS:
            m = rx.search(line)
            if not m or "/node_modules/" in line:
                continue
            folder = "folder" in rx.groupindex
            found = repository_path(root, m.group("folder" if folder else "path"), folder)
            if found is not None:
                return found
    return None


def is_dev_path(path: str) -> bool:
    """Whether a repository path is a test or tool configuration file."""
    return bool(_DEV_PATH.search(path))


# --------------------------------------------------------------------------- the project
def manifest_for(root: Path, source: str | None) -> str | None:
    """The ``package.json`` nearest above ``source`` (the root one without a source)."""
    folder = PurePosixPath(source or ".")
    candidates = [folder, *folder.parents] if source else [PurePosixPath(".")]
    for base in candidates:
        path = str(base / "package.json") if str(base) != "." else "package.json"
        if files.is_file(root, path):
            return path
    return None


def own_packages(root: Path, manifest: dict[str, Any]) -> set[str]:
    """The names of the repository's own packages (the manifest's and its workspaces')."""
    root_manifest = _load(root, "package.json")
    names = {str(manifest.get("name", "")), str(root_manifest.get("name", ""))}
    for pattern in [*_workspaces(manifest), *_workspaces(root_manifest)]:
        for path in files.glob(root, f"{pattern.rstrip('/')}/package.json"):
            names.add(str(_load(root, path).get("name", "")))
    return names - {""}


def _workspaces(manifest: dict[str, Any]) -> list[str]:
    """The workspace folder patterns of a manifest (npm/yarn list, or yarn's object)."""
    found = manifest.get("workspaces") or []
    if isinstance(found, dict):
        found = found.get("packages") or []
    return [p for p in found if isinstance(p, str)] if isinstance(found, list) else []


def _load(root: Path, path: str | PurePath) -> dict[str, Any]:
    """The JSON object of a repository file ({} when it is missing or not one)."""
    if not files.is_file(root, path):
        return {}
    try:
        data = json.loads(files.read_text(root, path))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def installed_version(root: Path, folder: PurePosixPath, name: str) -> str | None:
    """The version of ``name`` in the lock file or ``node_modules`` beside the manifest."""
    for base in dict.fromkeys([folder, PurePosixPath(".")]):
        lock = _load(root, base / "package-lock.json")
        entry = (lock.get("packages") or {}).get(f"node_modules/{name}") or (
            lock.get("dependencies") or {}
        ).get(name)
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            return str(entry["version"])
        installed = base / "node_modules" / name / "package.json"
        if files.is_file(root, installed):
            version = _load(root, installed).get("version")
            if isinstance(version, str):
                return version
    return None


def range_for(manifest: dict[str, Any], version: str | None) -> str:
    """``version`` with the range prefix most of the manifest's dependencies use (``*``
    without a version)."""
    if not version:
        return "*"
    specs = [
        str(v)
        for section in ("dependencies", "devDependencies")
        for v in (manifest.get(section) or {}).values()
    ]
    prefixes = Counter(
        s[0] if s[:1] in ("^", "~") else "" for s in specs if re.match(r"^[\^~]?\d", s)
    )
    prefix = prefixes.most_common(1)[0][0] if prefixes else "^"
    return f"{prefix}{version}"


def declared_section(manifest: dict[str, Any], name: str) -> str | None:
    for section in SECTIONS:
        if name in (manifest.get(section) or {}):
            return section
    return None


SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")
_LOCK_COMMANDS = {
    "yarn.lock": "yarn install",
    "pnpm-lock.yaml": "pnpm install",
    "bun.lockb": "bun install",
    "bun.lock": "bun install",
}
NPM_OFFLINE = (
    "install",
    "--package-lock-only",
    "--offline",
    "--ignore-scripts",
    "--no-audit",
    "--no-fund",
)


def update_locks(ws: Workspace, folder: PurePosixPath) -> list[str]:
    """Bring ``package-lock.json`` up to date with npm when it can do so offline (in the
    command sandbox); otherwise leave the lock files and say which command a person runs."""
    notes: list[str] = []
    root = ws.path
    for base in dict.fromkeys([folder, PurePosixPath(".")]):
        lock = base / "package-lock.json"
        if files.is_file(root, lock):
            notes.append(_npm_lock(ws, base, lock))
        for name, command in _LOCK_COMMANDS.items():
            if files.is_file(root, base / name):
                notes.append(f"{base / name} was left as it is: run `{command}`")
    return notes


def _npm_lock(ws: Workspace, base: PurePosixPath, lock: PurePosixPath) -> str:
    before = files.read_bytes(ws.path, lock)
    npm = runner_tools.find("npm")
    leave = f"{lock} was left as it is (no network for repair tools): run `npm install`"
    if npm is None:
        return leave
    try:
        done = run_command([npm, *NPM_OFFLINE], cwd=ws.path / base, timeout=180)
    except (CicdError, OSError) as exc:
        log.info("npm could not update %s: %s", lock, exc)
        done = None
    if done is not None and done.returncode == 0 and not done.timed_out:
        return f"{lock} updated offline with `npm {' '.join(NPM_OFFLINE)}`"
    if files.read_bytes(ws.path, lock) != before:
        files.write_bytes(ws.path, lock, before)
    return leave


# --------------------------------------------------------------------------- the fixer
class NotMissingError(Exception):
    """The package is not a missing dependency; the message says why."""


class NpmDependencyFixer(WorkspaceFixer):
    """``Cannot find module 'x'`` (node, webpack, ESM, tsc) -> ``x`` in ``package.json``:
    ``devDependencies`` when a test or configuration file imports it."""

    name = "add-npm-dependency"
    categories = frozenset({FailureCategory.BUILD, FailureCategory.TEST})
    recipes = frozenset({"add-requirement"})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return [
            f
            for f in super().relevant(failures)
            if f.pattern in NODE_PATTERNS and f.captures.get("module")
        ]

    def enabled(self, ctx: RepairContext) -> bool:
        return "add-requirement" in ctx.config.enabled_fixers  # the switch of the recipe

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        added: dict[str, Failure] = {}
        entries: list[str] = []
        folders: list[PurePosixPath] = []
        for failure in failures:
            done = self._add(ws.path, failure, result, added)
            if done is not None:
                added[done[0]] = failure
                entries.append(done[1])
                folders.append(PurePosixPath(done[2]).parent)
        if not added:
            return
        notes = [n for folder in dict.fromkeys(folders) for n in update_locks(ws, folder)]
        change = pending_change(ws)
        if change is not None:
            result.repairs.append(
                change_repair(
                    self.name,
                    FailureCategory.BUILD,
                    change,
                    list(added.values()),
                    description=" ".join([f"declare {'; '.join(entries)}.", *notes]),
                    commit_message=f"Declare the missing dependency {', '.join(added)}",
                    confidence=0.8,
                    evidence=evidence_of(added.values(), 2),
                    notes=notes,
                )
            )

    @staticmethod
    def _add(
        root: Path, failure: Failure, result: FixerResult, added: dict[str, Failure]
    ) -> tuple[str, str, str] | None:
        spec = failure.captures["module"]
        name, why = package_name(spec)
        if name is None or name in added:
            if why:
                result.unrepaired.append(why)
            return None
        source = importer(root, failure)
        path = manifest_for(root, source)
        if path is None:
            result.unrepaired.append(f"{name} (import {spec}): no package.json was found")
            return None
        try:
            return _declare(root, path, name, source)
        except files.RefusedPathError:
            raise  # noted; the fixer's work stops there
        except NotMissingError as exc:
            result.unrepaired.append(f"{name} (import {spec}): {exc}")
        except (PackageJsonError, OSError, UnicodeDecodeError) as exc:
            result.unrepaired.append(f"{name} (import {spec}): cannot edit {path} safely: {exc}")
        return None


def _declare(root: Path, path: str, name: str, source: str | None) -> tuple[str, str, str]:
    text = files.read_text(root, path)
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise PackageJsonError(f"not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise PackageJsonError("its top value is not an object")
    if name in own_packages(root, manifest):
        raise NotMissingError(f"{name} is a package of the repository itself: not a dependency")
    section = declared_section(manifest, name)
    if section is not None:
        raise NotMissingError(
            f"{name} is already declared in {section} of {path}: the installation is at fault"
        )
    section = "devDependencies" if source and is_dev_path(source) else "dependencies"
    version = range_for(manifest, installed_version(root, PurePosixPath(path).parent, name))
    files.write_text(root, path, add_dependency(text, section, name, version))
    return name, f'"{name}": "{version}" ({path} {section})', path
