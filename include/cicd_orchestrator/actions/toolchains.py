"""The interpreters and tools of this machine by version, for the setup actions.

A hosted runner installs the version a workflow asks for (``actions/setup-python`` with
``python-version: "3.12"``); the local runner takes it from what the machine has:

- **python**: ``python3`` and ``python3.X`` in the system directories
  (:data:`cicd_orchestrator.process.SYSTEM_PATH`), the base installation of the interpreter
  the orchestrator runs on (never its virtual environment: the resolved
  ``sys._base_executable``), the pythons uv installed (``$UV_PYTHON_INSTALL_DIR``, else
  ``~/.local/share/uv/python/*/bin/python3*``) and the toolchain folder;
- **node**, **go**, **java**, **uv**: the executable in the system directories (for go also
  ``/usr/local/go/bin`` and ``/usr/lib/go/bin``; for java every ``/usr/lib/jvm/*/bin``; for
  uv the runner tool folder and ``~/.local/bin``) and the toolchain folder.

The toolchain folder is the directory named by the environment variable
``CICD_TOOLCHAINS``: one sub-folder per installed version, named ``<tool>-<version>``, with
the executables in its ``bin``::

    $CICD_TOOLCHAINS/
        python-3.12.1/bin/python3
        node-20.11.0/bin/node
        go-1.22.1/bin/go
        java-21/bin/java
        uv-0.5.4/bin/uv

Each candidate is asked its version (a real process with a timeout, once per process and
executable); the folder name is not trusted. A request matches as ``setup-python`` does:
``3.12`` any 3.12.x (the highest), ``3.12.1`` exactly, ``3.x`` or ``3`` the highest 3.
Ranges (``>=3.10``, ``>=3.10,<3.13``, ``^3.10``, ``~3.10``, ``~=3.10``) are approximated:
each comparator is applied to the version numbers (pre-release tags are ignored) and the
highest version satisfying all of them is taken. ``latest``, ``stable``, ``node``,
``lts/*`` and ``*`` take the highest. PyPy, GraalPy and what cannot be read as a version
are not found. When nothing matches, :func:`select` takes the nearest version of the same
major (the closest minor, the higher one on a tie) and says so.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator import process, runner_tools
from cicd_orchestrator.exceptions import WorkflowError

ENV_VAR = "CICD_TOOLCHAINS"
#: the tools the setup actions look for
TOOLS = ("python", "node", "go", "java", "uv")
#: how long a candidate may take to say its version
PROBE_TIMEOUT = 15.0
#: the most of a version file that is read
_MAX_VERSION_FILE = 65536

Version = tuple[int, ...]


@dataclass(frozen=True)
class Toolchain:
    """One interpreter or tool of this machine."""

    tool: str
    version: Version
    executable: str  # as found (a link in a system directory stays a link)
    source: str  # system, base interpreter, uv, toolchains, runner tools

    @property
    def version_text(self) -> str:
        return ".".join(str(n) for n in self.version)

    @property
    def bin_dir(self) -> str:
        return os.path.dirname(self.executable)

    @property
    def root(self) -> str:
        """The installation the executable belongs to (the folder above its real ``bin``)."""
        return os.path.dirname(os.path.dirname(os.path.realpath(self.executable)))


@dataclass(frozen=True)
class Selection:
    """What :func:`select` chose for a request."""

    requested: str
    toolchain: Toolchain | None
    exact: bool

    def note(self) -> str | None:
        """Why the chosen version is not the requested one (None when it is)."""
        if self.toolchain is None or self.exact:
            return None
        return (
            f"{self.toolchain.tool} {self.requested} was asked for but is not installed on "
            f"this machine; the nearest installed version, {self.toolchain.version_text} "
            f"({self.toolchain.executable}), is used instead."
        )


# --------------------------------------------------------------------------- versions
_NUMBERS = re.compile(r"^(\d+(?:\.\d+)*)")
_COMPARATOR = re.compile(r"(>=|<=|==|!=|~=|>|<|\^|~|=)?\s*v?(\d+(?:\.(?:\d+|x|\*))*)")
_HIGHEST = frozenset({"latest", "stable", "node", "current", "lts/*", "*", "x", ""})
_UNSUPPORTED = ("pypy", "graalpy", "jython", "ironpython")


def parse_version(text: str) -> Version | None:
    """The leading numbers of a version text (``v20.1.0``, ``go1.22.1``, ``1.8.0_292``)."""
    match = _NUMBERS.match(text.strip().lower().removeprefix("go").removeprefix("v"))
    if match is None:
        return None
    return tuple(int(n) for n in match.group(1).split("."))


@dataclass(frozen=True)
class VersionSpec:
    """A requested version: a prefix of numbers, or comparators (see the module docstring)."""

    text: str
    prefix: Version | None = None
    comparators: tuple[tuple[str, Version], ...] = ()

    def matches(self, version: Version) -> bool:
        if self.prefix is not None:
            return version[: len(self.prefix)] == self.prefix
        return all(_compare(version, op, bound) for op, bound in self.comparators)

    def target(self) -> Version:
        """The version the request is closest to (for the nearest match)."""
        if self.prefix is not None:
            return self.prefix
        for op, bound in self.comparators:
            if op in (">=", ">", "==", "~=", "^", "~"):
                return bound
        return self.comparators[0][1] if self.comparators else ()


def _compare(version: Version, op: str, bound: Version) -> bool:
    width = max(len(version), len(bound))
    v = version + (0,) * (width - len(version))
    b = bound + (0,) * (width - len(bound))
    if op == "==":
        return version[: len(bound)] == bound
    if op == "!=":
        return version[: len(bound)] != bound
    results = {">=": v >= b, "<=": v <= b, ">": v > b, "<": v < b}
    return results[op]


def _expand(op: str, bound: Version) -> list[tuple[str, Version]]:
    """A comparator as plain ones: ``^3.10`` is ``>=3.10,<4``, ``~3.10`` ``>=3.10,<3.11``,
    ``~=3.10`` ``>=3.10,<4`` and ``~=3.10.1`` ``>=3.10.1,<3.11``."""
    if op == "^":
        return [(">=", bound), ("<", (bound[0] + 1,))]
    if op == "~":
        upper = (bound[0], bound[1] + 1) if len(bound) > 1 else (bound[0] + 1,)
        return [(">=", bound), ("<", upper)]
    if op == "~=":
        head = bound[:-1] if len(bound) > 1 else bound
        return [(">=", bound), ("<", (*head[:-1], head[-1] + 1))]
    return [("==" if op in ("", "=") else op, bound)]


def parse_spec(text: str, tool: str = "python") -> VersionSpec | None:
    """A requested version, or None when it is not one this machine can have (PyPy, a name
    that is not a version)."""
    raw = str(text).strip()
    low = raw.lower()
    if low.startswith(_UNSUPPORTED):
        return None
    low = low.removeprefix("cpython").removeprefix("python").removeprefix("node").strip("-@ ")
    low = re.sub(r"^(v|go)(?=\d)", "", low)  # v20, go1.22
    if low in _HIGHEST or low.startswith("lts/") or low == "oldstable":
        return VersionSpec(raw, prefix=())
    if tool == "java" and low.startswith("1."):  # 1.8 is java 8
        low = low[2:]
    if any(ch in low for ch in "<>=^~,!") or " " in low:
        comparators: list[tuple[str, Version]] = []
        for op, numbers in _COMPARATOR.findall(low):
            bound = tuple(int(n) for n in numbers.split(".") if n.isdigit())
            if bound:
                comparators += _expand(op, bound)
        return VersionSpec(raw, comparators=tuple(comparators)) if comparators else None
    parts: list[int] = []
    for part in low.split("."):
        number = _NUMBERS.match(part)
        if number is None or part in ("x", "*"):
            break
        parts.append(int(number.group(1)))
        if number.group(1) != part:  # 3.13-dev, 21-ea: the rest is a pre-release tag
            break
    return VersionSpec(raw, prefix=tuple(parts)) if parts else None


def select(requested: str, candidates: Iterable[Toolchain], tool: str = "python") -> Selection:
    """The highest candidate matching ``requested``; else the nearest of the same major
    (closest minor, the higher on a tie); else none."""
    spec = parse_spec(requested, tool)
    found = list(candidates)
    if spec is None:
        return Selection(str(requested), None, False)
    matching = [c for c in found if spec.matches(c.version)]
    if matching:
        return Selection(str(requested), max(matching, key=lambda c: c.version), True)
    target = spec.target()
    if not target:
        return Selection(str(requested), None, False)
    same_major = [c for c in found if c.version[:1] == target[:1]]
    if not same_major:
        return Selection(str(requested), None, False)
    minor = target[1] if len(target) > 1 else 0

    def distance(c: Toolchain) -> tuple[int, int, Version]:
        own = c.version[1] if len(c.version) > 1 else 0
        return (abs(own - minor), 0 if own >= minor else 1, tuple(-n for n in c.version))

    return Selection(str(requested), min(same_major, key=distance), False)


# --------------------------------------------------------------------------- discovery
_PYTHON_NAME = re.compile(r"^python3(\.\d+)?$")
_PROBES: dict[str, tuple[list[str], str]] = {
    # tool: (arguments, what to read the version from)
    "python": (
        ["-I", "-c", "import sys; print(sys.implementation.name, *sys.version_info[:3])"],
        r"^cpython (\d+) (\d+) (\d+)",
    ),
    "node": (["--version"], r"^v(\d+(?:\.\d+)*)"),
    "go": (["version"], r"\bgo(\d+(?:\.\d+)*)"),
    "java": (["-version"], r'version "(?:1\.)?(\d+(?:\.\d+)*)'),
    "uv": (["--version"], r"^uv (\d+(?:\.\d+)*)"),
}
_cache: dict[tuple[str, int], Version | None] = {}
_cache_lock = threading.Lock()


def probe(tool: str, executable: str) -> Version | None:
    """The version an executable says it is (cached per process); None when it does not
    answer in time or is not that tool."""
    try:
        key = (os.path.realpath(executable), os.stat(executable).st_mtime_ns)
    except OSError:
        return None
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    args, pattern = _PROBES[tool]
    env = {"PATH": os.pathsep.join(process.SYSTEM_PATH), "LANG": "C.UTF-8", "HOME": "/"}
    try:
        done = subprocess.run(
            [executable, *args],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        text = (done.stdout + done.stderr).decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        text = ""
    match = re.search(pattern, text, re.MULTILINE)
    version = None
    if match:
        version = tuple(int(n) for n in ".".join(match.groups()).split("."))
    with _cache_lock:
        _cache[key] = version
    return version


def clear_cache() -> None:
    """Forget the versions asked so far (the machine's tools changed)."""
    with _cache_lock:
        _cache.clear()
    _system_candidates.cache_clear()


def toolchain_folder() -> Path | None:
    """The toolchain folder (``CICD_TOOLCHAINS``), or None."""
    raw = os.environ.get(ENV_VAR, "").strip()
    return Path(raw).expanduser() if raw and Path(raw).expanduser().is_dir() else None


def _uv_python_dir() -> Path:
    raw = os.environ.get("UV_PYTHON_INSTALL_DIR", "").strip()
    if raw:
        return Path(raw).expanduser()
    data = os.environ.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(data) / "uv" / "python"


def _system_paths(tool: str) -> list[str]:
    dirs = list(process.SYSTEM_PATH)
    names = {"node": ["node", "nodejs"], "go": ["go"], "java": ["java"], "uv": ["uv"]}[tool]
    found = [os.path.join(d, n) for d in dirs for n in names]
    if tool == "go":
        found += ["/usr/local/go/bin/go", "/usr/lib/go/bin/go"]
    if tool == "java":
        found += sorted(glob.glob("/usr/lib/jvm/*/bin/java"))
    if tool == "uv":
        found = [p for p in (runner_tools.find("uv"),) if p] + found
        found.append(str(Path.home() / ".local" / "bin" / "uv"))
    return found


def _python_paths() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for d in process.SYSTEM_PATH:
        for path in sorted(glob.glob(os.path.join(d, "python3*"))):
            if _PYTHON_NAME.match(os.path.basename(path)):
                out.append((path, "system"))
    base = getattr(sys, "_base_executable", None) or sys.executable
    out.append((os.path.realpath(base), "base interpreter"))
    for path in sorted(glob.glob(str(_uv_python_dir() / "*" / "bin" / "python3*"))):
        folder = os.path.basename(os.path.dirname(os.path.dirname(path))).lower()
        if _PYTHON_NAME.match(os.path.basename(path)) and not folder.startswith(_UNSUPPORTED):
            out.append((path, "uv"))
    return out


def _allowed(path: str) -> bool:
    """An executable that may serve a job: runnable, and never the orchestrator's own
    environment (its virtual environment is not a toolchain)."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return False
    own = runner_tools.orchestrator_environment()
    return not (
        own
        and (
            runner_tools.inside(path, own)
            or runner_tools.inside(os.path.dirname(os.path.abspath(path)), own)
        )
    )


@functools.cache
def _system_candidates(tool: str, where: tuple[str, str]) -> tuple[Toolchain, ...]:
    """The tool's system candidates; ``where`` (uv's folder, the home) keys the cache."""
    paths = _python_paths() if tool == "python" else [(p, "system") for p in _system_paths(tool)]
    return _probe_all(tool, paths)


def _probe_all(tool: str, paths: Iterable[tuple[str, str]]) -> tuple[Toolchain, ...]:
    seen: set[str] = set()
    out: list[Toolchain] = []
    for path, source in paths:
        real = os.path.realpath(path)
        if real in seen or not _allowed(path):
            continue
        seen.add(real)
        version = probe(tool, path)
        if version is not None:
            out.append(Toolchain(tool, version, path, source))
    return tuple(out)


def candidates(tool: str) -> list[Toolchain]:
    """Every installed version of ``tool`` found on this machine (the toolchain folder
    first)."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}: one of {', '.join(TOOLS)}")
    found: list[tuple[str, str]] = []
    folder = toolchain_folder()
    if folder is not None:
        exe = {"python": "python3", "node": "node", "go": "go", "java": "java", "uv": "uv"}
        for sub in sorted(folder.glob(f"{tool}-*")):
            found.append((str(sub / "bin" / exe[tool]), "toolchains"))
    own = _probe_all(tool, found)
    reals = {os.path.realpath(t.executable) for t in own}
    where = (str(_uv_python_dir()), str(Path.home()))
    rest = [
        t for t in _system_candidates(tool, where) if os.path.realpath(t.executable) not in reals
    ]
    return [*own, *rest]


def find(tool: str, requested: str) -> Selection:
    """The installed ``tool`` for the request (see :func:`select`)."""
    return select(requested, candidates(tool), tool)


# --------------------------------------------------------------------------- version files
def read_version_file(workspace: Path, name: str, tool: str) -> str:
    """The version a file of the workspace asks for (``.python-version``, ``pyproject.toml``
    ``requires-python``, ``.nvmrc``, ``.node-version``, ``go.mod``, ``.java-version``,
    ``.tool-versions``). Raises WorkflowError when it is missing, outside the workspace or
    names no version."""
    path = workspace / name
    if not runner_tools.inside(os.path.realpath(path), workspace):
        raise WorkflowError(f"the version file {name} is outside the workspace")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise WorkflowError(f"the version file {name} cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        # what was opened, not what the name pointed to a moment before (a step may swap it)
        opened = os.path.realpath(f"/proc/self/fd/{fd}")
        if not runner_tools.inside(opened, workspace) or not os.path.isfile(opened):
            raise WorkflowError(f"the version file {name} is outside the workspace")
        text = fh.read(_MAX_VERSION_FILE).decode("utf-8", "replace")
    version = _version_in(os.path.basename(name), text, tool)
    if not version:
        raise WorkflowError(f"the version file {name} names no {tool} version")
    return version


def _version_in(base: str, text: str, tool: str) -> str | None:
    if base == "pyproject.toml":
        try:
            project = tomllib.loads(text).get("project", {})
        except tomllib.TOMLDecodeError:
            return None
        value = project.get("requires-python") if isinstance(project, dict) else None
        return str(value) if value else None
    if base == "go.mod":
        match = re.search(r"^\s*go\s+(\d+(?:\.\d+)*)", text, re.MULTILINE)
        return match.group(1) if match else None
    lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if base == ".tool-versions":
        names = {"python": ("python",), "node": ("nodejs", "node"), "go": ("golang", "go")}
        for line in lines:
            key, _, value = line.partition(" ")
            if key in names.get(tool, (tool,)) and value.strip():
                return value.split()[0]
        return None
    return lines[0] if lines else None
