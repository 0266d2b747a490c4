"""The JavaScript formatters (prettier, eslint) at the version the project uses: another
version formats differently from the one the project's CI runs, so its fix would not pass.

:func:`declared` reads, in this order: the exact version the lock file holds
(``package-lock.json`` or ``npm-shrinkwrap.json``: ``packages["node_modules/<tool>"]`` of
lockfileVersion 2 and 3, ``dependencies.<tool>`` of version 1), then an exact pin in the top
``package.json`` (``devDependencies``, then ``dependencies``: ``3.1.0``, ``=3.1.0``), then a
range there (``^3.1.0``, ``~3.1``, ``>=2 <4``) used as it is as the npm spec (which version
of the range is newest cannot be told offline). A project that declares no such tool (or
only as a git, file, alias or workspace reference) gets none: the fixer does not run it.

:func:`install` puts ``<tool>@<spec>`` once per machine under the cache folder,
``tools/npm/<tool>-<version or spec>``, with ``npm install --ignore-scripts`` (no package
code runs while it is installed) from the registry npm is configured with, outside the
command sandbox; the tool itself later runs in the sandbox, with no network. An install
that fails (no npm, no network, no such version) raises :class:`ToolInstallError` with the
reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator import runner_tools
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.project_tools import ToolInstallError, made_once, tools_root

#: the tools this module knows, and the script of each, relative to its package folder
SCRIPTS = {"prettier": ("bin/prettier.cjs", "bin-prettier.js"), "eslint": ("bin/eslint.js",)}
#: how long installing one tool may take
INSTALL_TIMEOUT = 300
LOCK_FILES = ("package-lock.json", "npm-shrinkwrap.json")
_EXACT = re.compile(r"^(?:=\s*|v)?(?P<v>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$")
# a semver range of plain comparators (``^1.2.3``, ``~1.2``, ``>=2 <4``, ``1.x``, ``2 || 3``)
_RANGE = re.compile(r"^[\dxX*^~<>=.|\s-]+$")
#: the environment npm keeps (its configuration, the proxy, the certificates it trusts),
#: nothing else of the host's
_NPM_ENV: tuple[str, ...] = (
    "PATH",
    "HOME",
    "LANG",
    "npm_config_",
    "NPM_CONFIG_",
    "NODE_EXTRA_CA_CERTS",
)
_NPM_ENV += ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class Declared:
    """How the project asks for a tool: an exact version or a range, and where."""

    tool: str
    spec: str
    source: str
    exact: bool

    def describe(self) -> str:
        return f"{self.tool} {self.spec}, as {self.source} {'pins' if self.exact else 'asks'} it"


def _json(root: Path, rel: str) -> dict[str, Any] | None:
    try:
        data = json.loads(files.read_text(root, rel))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def exact_version(spec: str) -> str | None:
    """``3.1.0`` of ``3.1.0`` / ``=3.1.0`` / ``v3.1.0``; None for anything else."""
    m = _EXACT.match(spec.strip())
    return m["v"] if m else None


def _entry_version(entry: Any) -> str | None:
    version = entry.get("version") if isinstance(entry, dict) else None
    return exact_version(version) if isinstance(version, str) else None


def from_lock_file(root: Path, tool: str) -> Declared | None:
    """The version of ``tool`` the project's npm lock file holds."""
    for rel in LOCK_FILES:
        data = _json(root, rel)
        if data is None:
            continue
        packages = data.get("packages")
        version = None
        if isinstance(packages, dict):  # lockfileVersion 2 and 3
            version = _entry_version(packages.get(f"node_modules/{tool}"))
        dependencies = data.get("dependencies")
        if version is None and isinstance(dependencies, dict):  # lockfileVersion 1
            version = _entry_version(dependencies.get(tool))
        if version:
            return Declared(tool, version, rel, exact=True)
    return None


def from_package_json(root: Path, tool: str) -> Declared | None:
    """An exact pin of ``tool`` in ``package.json``, else a plain range of it."""
    data = _json(root, "package.json") or {}
    specs = [
        spec
        for section in ("devDependencies", "dependencies")
        if isinstance(table := data.get(section), dict) and isinstance(spec := table.get(tool), str)
    ]
    for spec in specs:
        version = exact_version(spec)
        if version:
            return Declared(tool, version, "package.json", exact=True)
    for spec in specs:
        spec = " ".join(spec.split())
        if spec and (_RANGE.match(spec) or spec == "latest"):
            return Declared(tool, spec, "package.json", exact=False)
    return None


def declared(root: Path, tool: str) -> Declared | None:
    """How the project asks for ``tool`` (lock file, exact pin, range); None when it does not."""
    return from_lock_file(root, tool) or from_package_json(root, tool)


# --------------------------------------------------------------------------- installing
def folder_of(tool: str, spec: str) -> Path:
    """Where ``tool@spec`` is installed: ``<tool>-<version>`` for an exact version, else the
    spec made safe for a file name, with a short hash (``^1`` and ``~1`` stay apart)."""
    base = tools_root() / "npm"
    if exact_version(spec) == spec:
        return base / f"{tool}-{spec}"
    safe = re.sub(r"[^0-9A-Za-z.]+", "_", spec).strip("_") or "any"
    digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
    return base / f"{tool}-range-{safe}-{digest}"


def script(folder: Path, tool: str) -> Path | None:
    """The tool's node script in an install folder, when it is there."""
    package = folder / "node_modules" / tool
    for rel in SCRIPTS.get(tool, ()):
        if (package / rel).is_file():
            return package / rel
    return None


def installed_version(folder: Path, tool: str) -> str:
    """The version of ``tool`` installed in ``folder`` (empty when it cannot be read)."""
    try:
        data = json.loads((folder / "node_modules" / tool / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return ""
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else ""


@functools.lru_cache(maxsize=64)
def install(tool: str, spec: str) -> Path:
    """The folder holding ``tool@spec`` (installed once, under a lock, by npm).

    Raises :class:`ToolInstallError` with the reason when it cannot be installed."""
    if tool not in SCRIPTS or not (exact_version(spec) or _RANGE.match(spec) or spec == "latest"):
        raise ToolInstallError(f"not a tool and version: {tool!r} {spec!r}")
    folder = folder_of(tool, spec)
    npm = runner_tools.find("npm")
    if npm is None and script(folder, tool) is None:
        raise ToolInstallError(f"npm is not available to install {tool}@{spec}")

    def found() -> str | None:
        path = script(folder, tool)
        return str(path) if path else None

    done = made_once(folder, found, lambda: _npm_install(str(npm), folder, tool, spec), spec)
    if done is None:
        raise ToolInstallError(f"{tool}@{spec} was installed without its script")
    return folder


def _npm_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(_NPM_ENV)}
    node = runner_tools.find("node")
    if node:  # npm's own script finds node on PATH
        env["PATH"] = os.pathsep.join([os.path.dirname(node), env.get("PATH", "")])
    return env


@functools.lru_cache(maxsize=4)
def _global_config(npm: str) -> list[str]:
    """``--globalconfig`` of npm's own global configuration (its certificates, its registry):
    ``--prefix`` would otherwise move it under the install folder."""
    try:
        done = subprocess.run(
            [npm, "config", "get", "globalconfig"],
            env=_npm_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    path = done.stdout.strip()
    return [f"--globalconfig={path}"] if done.returncode == 0 and os.path.isfile(path) else []


def _npm_install(npm: str, folder: Path, tool: str, spec: str) -> None:
    folder.mkdir(parents=True)
    argv = [
        npm,
        "install",
        *_global_config(npm),
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--loglevel=error",
        "--prefix",
        str(folder),
        f"{tool}@{spec}",
    ]
    try:
        done = subprocess.run(
            argv,
            cwd=folder,
            env=_npm_env(),
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolInstallError(f"{tool}@{spec}: {exc}") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "npm error" in ln and "code" not in ln), "")
        why = (reason or (lines[-1] if lines else "no output")).removeprefix("npm error ")
        raise ToolInstallError(f"{tool}@{spec} could not be installed: {why.strip()}")


def node_readable(node: str) -> list[str]:
    """The folders the sandbox must show for ``node`` to run (none for a system node)."""
    real = Path(os.path.realpath(node))
    if any(runner_tools.inside(real, d) for d in ("/usr", "/bin")):
        return []
    return [str(real.parent.parent)]


def clear_cache() -> None:
    """Forget the folders found in this process (a test changes the cache folder)."""
    install.cache_clear()
