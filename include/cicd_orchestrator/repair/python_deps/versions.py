"""The version to write for a new requirement, and the lock files that must follow it.

There is no network for repair tools: the version comes from the project's lock file when
it has one, else from the runner tool folder's installed metadata, else none (the bare
name). It is written in the style of the file's other entries (``==``, ``>=``, ``~=``, a
Poetry caret, or no version at all).
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.python_deps.names import normalize, site_packages

log = logging.getLogger(__name__)

TOML_LOCKS = ("poetry.lock", "pdm.lock", "uv.lock")
_COMPILED = re.compile(r"(?m)^#.*\b(?:pip-compile|uv pip compile)\b")
_PINNED = re.compile(
    r"(?m)^(?P<name>[A-Za-z0-9][\w.-]*)(?:\[[^\]]*\])?\s*==\s*(?P<version>[\w.+!-]+)"
)
_SPEC = re.compile(r"(===|==|>=|~=|<=|!=|<|>|\^|~)\s*[\w.*+!]")


@dataclass(frozen=True)
class LockFile:
    """A lock file of the project and the command a person runs to bring it up to date."""

    path: str
    command: str


def _toml_lock_version(root: Path, path: str, dist: str) -> str | None:
    try:
        data = tomllib.loads(files.read_text(root, path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.info("%s is not readable as a lock file: %s", path, exc)
        return None
    for package in data.get("package", []):
        if isinstance(package, dict) and normalize(str(package.get("name", ""))) == dist:
            version = package.get("version")
            return str(version) if version else None
    return None


def compiled(text: str) -> bool:
    """Whether a requirements file was written by pip-compile (or ``uv pip compile``)."""
    return bool(_COMPILED.search(text[:2000]))


def locked_version(root: Path, dist: str, compiled_files: Iterable[str] = ()) -> str | None:
    """The version of ``dist`` in a lock file of the project (TOML locks, then the
    requirements files compiled by pip-compile)."""
    norm = normalize(dist)
    for path in TOML_LOCKS:
        if files.is_file(root, path):
            version = _toml_lock_version(root, path, norm)
            if version:
                return version
    for path in compiled_files:
        try:
            text = files.read_text(root, path)
        except (OSError, UnicodeDecodeError):
            continue
        for m in _PINNED.finditer(text):
            if normalize(m.group("name")) == norm:
                return m.group("version")
    return None


def installed_version(dist: str) -> str | None:
    """The version of ``dist`` installed in the runner tool folder, if any."""
    norm = normalize(dist)
    paths = [str(p) for p in site_packages()]
    if not paths:
        return None
    for found in importlib.metadata.distributions(path=paths):
        if normalize(found.metadata["Name"] or "") == norm:
            return str(found.version)
    return None


def version_for(root: Path, dist: str, compiled_files: Iterable[str] = ()) -> str | None:
    return locked_version(root, dist, compiled_files) or installed_version(dist)


def operator_style(specs: Iterable[str]) -> str:
    """The version operator most entries use (``""`` when most have none)."""
    counts: Counter[str] = Counter()
    for spec in specs:
        m = _SPEC.search(spec)
        counts[m.group(1) if m else ""] += 1
    if not counts:
        return ""
    best = counts.most_common(1)[0][0]
    return best if best in ("==", ">=", "~=", "^", "~", "===") else ""


def styled(dist: str, version: str | None, style: str, separator: str = "") -> str:
    """``dist`` with ``version`` written in ``style`` (the bare name without either)."""
    if not version or not style:
        return dist
    if style == "~=" and version.count(".") == 0:
        style = ">="
    return f"{dist}{separator}{style}{version}"


def lock_files(root: Path) -> list[LockFile]:
    """The TOML lock files of the project, with the command that regenerates each."""
    commands = {
        "poetry.lock": "poetry lock --no-update",
        "uv.lock": "uv lock",
        "pdm.lock": "pdm lock",
    }
    return [LockFile(p, commands[p]) for p in TOML_LOCKS if files.is_file(root, p)]
