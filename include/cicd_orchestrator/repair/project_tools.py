"""The repair tools at the versions the project pins: a formatter of another version may
format differently from the one the project's CI runs, so the fix would not pass.

:func:`pinned_version` reads where projects pin their tools, in this order: the
``.pre-commit-config.yaml`` hook's ``rev``, then requirement files (``requirements*.txt``,
``requirements/*.txt``, ``*.in``, constraints), ``pyproject.toml`` (PEP 621 optional
dependencies, PEP 735 dependency groups, Poetry groups, PDM dev dependencies),
``setup.cfg`` extras, ``tox.ini`` ``deps``; only an exact pin (``==1.2.3``, a bare Poetry
version, a hook's ``rev``) counts. :func:`environment` gives a virtual environment with that
version, made once per machine under the cache folder: ``pip install --only-binary :all:``
(wheels only, so nothing of a package runs while it is installed) from the index pip is
configured with, by the runner tool folder's python; never the orchestrator's environment.
When the pin cannot be installed, the fixer uses the runner tool folder's version and says
so in the repair's notes.
"""

from __future__ import annotations

import configparser
import fcntl
import functools
import logging
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator import process, runner_tools
from cicd_orchestrator.repair import files

log = logging.getLogger(__name__)

#: the pre-commit repositories of the tools (the hook's ``rev`` is the tool's version)
HOOK_REPOSITORIES = {
    "black": ("psf/black", "psf/black-pre-commit-mirror"),
    "isort": ("pycqa/isort", "timothycrosley/isort"),
    "ruff": ("astral-sh/ruff-pre-commit", "charliermarsh/ruff-pre-commit"),
}
#: how long installing one tool may take
INSTALL_TIMEOUT = 300
_VERSION = re.compile(r"^v?(?P<v>\d+(?:\.\d+){0,3}(?:(?:a|b|rc)\d+)?)$")
_REQUIREMENT_FILES = re.compile(r"(^|/)(requirements[^/]*|constraints[^/]*|[^/]*\.in)$", re.I)


@dataclass(frozen=True)
class Pin:
    """A tool's version and the file that pins it."""

    tool: str
    version: str
    source: str


def _exact(spec: str) -> str | None:
    """``1.2.3`` of ``==1.2.3`` / ``1.2.3`` (a Poetry bare version); None for a range."""
    spec = spec.strip().split(";", 1)[0].strip()
    if spec.startswith("=="):
        spec = spec[2:].strip()
    m = _VERSION.match(spec)
    return m["v"] if m and not spec.endswith(".*") else None


def _requirement_pin(line: str, tool: str) -> str | None:
    """The pinned version of ``tool`` in one requirement line (``black[jupyter]==24.1.0``)."""
    line = line.split("#", 1)[0].strip()
    m = re.match(
        rf"^{re.escape(tool)}(?:\[[^\]]*\])?\s*(?P<spec>==\s*[^\s,;]+)\s*(?:;.*)?$", line, re.I
    )
    return _exact(m["spec"]) if m else None


def _from_pre_commit(root: Path, tool: str) -> Pin | None:
    try:
        data = yaml.safe_load(files.read_text(root, ".pre-commit-config.yaml"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    repos = data.get("repos") if isinstance(data, dict) else None
    for repo in repos if isinstance(repos, list) else []:
        if not isinstance(repo, dict):
            continue
        url = str(repo.get("repo", "")).lower().removesuffix(".git").rstrip("/")
        if url.endswith(HOOK_REPOSITORIES.get(tool, ())):
            version = _exact(str(repo.get("rev", "")))
            if version:
                return Pin(tool, version, ".pre-commit-config.yaml")
    return None


def _requirement_files(root: Path) -> list[str]:
    """The requirement and constraint files at the top and in ``requirements/``."""
    found: list[str] = []
    for folder in ("", "requirements"):
        if folder and not files.is_dir(root, folder):
            continue
        for name, kind in files.entries(root, folder):
            rel = f"{folder}/{name}" if folder else name
            wanted = name.endswith((".txt", ".in")) if folder else _REQUIREMENT_FILES.search(name)
            if kind == "file" and wanted:
                found.append(rel)
    return found


def _from_requirement_files(root: Path, tool: str) -> Pin | None:
    for rel in _requirement_files(root):
        try:
            lines = files.read_lines(root, rel)
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            version = _requirement_pin(line, tool)
            if version:
                return Pin(tool, version, rel)
    return None


def _toml_requirement_lists(data: dict[str, Any]) -> list[Any]:
    project = data.get("project") or {}
    tool = data.get("tool") or {}
    lists: list[Any] = [*(project.get("optional-dependencies") or {}).values()]
    lists += list((data.get("dependency-groups") or {}).values())
    lists += list(((tool.get("pdm") or {}).get("dev-dependencies") or {}).values())
    return lists


def _poetry_tables(data: dict[str, Any]) -> list[Any]:
    poetry = (data.get("tool") or {}).get("poetry") or {}
    tables = [poetry.get("dev-dependencies") or {}]
    tables += [g.get("dependencies") or {} for g in (poetry.get("group") or {}).values()]
    return tables


def _from_pyproject(root: Path, tool: str) -> Pin | None:
    try:
        data = tomllib.loads(files.read_text(root, "pyproject.toml"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    for entries in _toml_requirement_lists(data):
        for entry in entries if isinstance(entries, list) else []:
            version = _requirement_pin(str(entry), tool)
            if version:
                return Pin(tool, version, "pyproject.toml")
    for table in _poetry_tables(data):
        spec = table.get(tool) if isinstance(table, dict) else None
        if isinstance(spec, dict):
            spec = spec.get("version")
        version = _exact(str(spec)) if isinstance(spec, str) else None
        if version:
            return Pin(tool, version, "pyproject.toml")
    return None


def _from_ini(root: Path, tool: str) -> Pin | None:
    for name, keys in (("setup.cfg", ("options.extras_require",)), ("tox.ini", ())):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(files.read_text(root, name))
        except (OSError, UnicodeDecodeError, configparser.Error):
            continue
        for section in parser.sections():
            if keys and section not in keys:
                continue
            for key, value in parser.items(section):
                if keys or key == "deps":
                    for line in value.splitlines():
                        version = _requirement_pin(line, tool)
                        if version:
                            return Pin(tool, version, name)
    return None


def pinned_version(root: Path, tool: str) -> Pin | None:
    """Where and at which version the project pins ``tool``; None when it does not pin it."""
    for finder in (_from_pre_commit, _from_requirement_files, _from_pyproject, _from_ini):
        pin = finder(root, tool)
        if pin is not None:
            return pin
    return None


# --------------------------------------------------------------------------- environments
class ToolInstallError(Exception):
    """A pinned tool could not be installed (the reason is the message)."""


def tools_root() -> Path:
    """Where the tool environments are kept (``CICD_CACHE_DIR``/tools, else the user's cache)."""
    base = os.environ.get("CICD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cicd-orchestrator"
    )
    return Path(base) / "tools"


#: written last into a finished environment (one without it is a crash's leftover)
_COMPLETE = ".cicd-complete"


def _installed(folder: Path, tool: str) -> str | None:
    executable = folder / "bin" / tool
    done = (folder / _COMPLETE).is_file()
    return str(executable) if done and os.access(executable, os.X_OK) else None


def made_once(
    folder: Path, found: Callable[[], str | None], make: Callable[[], None], stamp: str
) -> str | None:
    """What ``found`` gives for ``folder`` once it is complete: made by ``make`` (which
    raises when it cannot) under a lock, so that one process makes it while the others wait;
    a crash's leftover (a folder without the marker) is made again, a failed ``make`` leaves
    nothing behind. ``stamp`` goes into the marker."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = found() if (folder / _COMPLETE).is_file() else None
        if done:
            return done
        shutil.rmtree(folder, ignore_errors=True)
        try:
            make()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / _COMPLETE).write_text(stamp, encoding="utf-8")
    return found()


@functools.lru_cache(maxsize=64)
def environment(tool: str, version: str) -> str:
    """The executable of ``tool`` ``version`` in its own virtual environment (made once, in
    place, under a lock: its scripts name their interpreter by absolute path).

    Raises :class:`ToolInstallError` with the reason when it cannot be made."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", tool) or not _VERSION.match(version):
        raise ToolInstallError(f"not a tool and version: {tool!r} {version!r}")
    folder = tools_root() / f"{tool}-{version}"
    python = runner_tools.python()
    if python is None and not _installed(folder, tool):
        raise ToolInstallError("no runner tool folder python to make the environment with")
    found = made_once(
        folder,
        lambda: _installed(folder, tool),
        lambda: _make(str(python), folder, tool, version),
        f"{tool}=={version}\n",
    )
    if not found:
        raise ToolInstallError(f"{tool} {version} installed no {tool} command")
    return found


def _make(python: str, folder: Path, tool: str, version: str) -> None:
    env = {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "HOME", "PATH", "LANG"))}
    steps = (
        [python, "-m", "venv", "--clear", str(folder)],
        [
            str(folder / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary",
            ":all:",
            f"{tool}=={version}",
        ],
    )
    for argv in steps:
        try:
            done = subprocess.run(
                argv,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolInstallError(f"{tool} {version}: {exc}") from exc
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ToolInstallError(f"{tool} {version} could not be installed: {last[0]}")


@dataclass(frozen=True)
class ToolChoice:
    """The executable a fixer runs, and what to say about its version."""

    executable: str | None
    readable: tuple[str, ...] = ()
    note: str = ""


def choose(root: Path, tool: str) -> ToolChoice:
    """The project's pinned ``tool`` when it pins one and it can be installed; else the runner
    tool folder's (with a note when the pin could not be honoured)."""
    fallback = runner_tools.find(tool)
    pin = pinned_version(root, tool)
    if pin is None:
        return ToolChoice(fallback)
    try:
        executable = environment(tool, pin.version)
    except ToolInstallError as exc:
        log.warning("%s", exc)
        return ToolChoice(
            fallback,
            note=(
                f"{pin.source} pins {tool} {pin.version}, which could not be installed "
                f"({exc}); the runner's {tool} was used and may format differently"
            ),
        )
    venv = str(Path(executable).parent.parent)
    readable = [venv, *_interpreter_dirs(Path(venv))]
    return ToolChoice(
        executable, tuple(readable), note=f"{tool} {pin.version}, as {pin.source} pins it"
    )


def _interpreter_dirs(venv: Path) -> list[str]:
    prefix = runner_tools.interpreter_prefix(venv)
    if prefix is None or any(runner_tools.inside(prefix, d) for d in process.SYSTEM_PATH):
        return []
    return [str(prefix)]
