"""The runner tool folder: the tools a repository's commands may use, never the
orchestrator's own interpreter or environment.

A hosted CI runner comes with tools preinstalled (python with pytest, ruff, PyYAML...); here
they come from a virtual environment of their own, separate from the orchestrator's and
read-only inside the command sandbox (:mod:`cicd_orchestrator.sandbox`): a workflow's
``pip install`` cannot reach it, nor the orchestrator's packages. Its ``bin`` folder is the
first entry of a job's PATH after what the job's steps added (``$GITHUB_PATH``), and the
fixers run their repair tools (ruff, black, isort, pre-commit) from it.

Where it is: the variable ``CICD_RUNNER_TOOLS`` (a folder; empty: none), else the
``.venv-runner`` of the source checkout the package runs from (``make runner-tools`` builds
it from ``runner-tools.txt``), else ``/opt/cicd-runner-tools`` (the image's, see the
Dockerfile). Without one, commands get the system's tools only.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)

ENV_VAR = "CICD_RUNNER_TOOLS"
#: where the image builds it
IMAGE_FOLDER = "/opt/cicd-runner-tools"
#: the name of the folder ``make runner-tools`` builds in the source checkout
CHECKOUT_FOLDER = ".venv-runner"
#: the system's own tool directories (read-only in the sandbox), after the tool folder
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def _candidates() -> list[Path]:
    checkout = Path(__file__).resolve().parents[2] / CHECKOUT_FOLDER
    return [checkout, Path(IMAGE_FOLDER)]


def folder() -> Path | None:
    """The runner tool folder in force (see the module docstring), or None."""
    raw = os.environ.get(ENV_VAR)
    if raw is not None:
        if not raw.strip():
            return None
        path = Path(raw).expanduser().absolute()
        if not path.is_dir():
            _warn_missing(str(path))
            return None
        return path
    for path in _candidates():
        if path.is_dir():
            return path
    return None


@functools.cache
def _warn_missing(path: str) -> None:
    log.warning("%s=%s is not a folder: commands get the system's tools only", ENV_VAR, path)


def bin_dirs() -> list[str]:
    """The tool folder's directories for PATH (its ``bin`` when it has one)."""
    root = folder()
    if root is None:
        return []
    bin_dir = root / "bin"
    return [str(bin_dir if bin_dir.is_dir() else root)]


def interpreter_prefix(root: Path | None = None) -> Path | None:
    """The installation of the interpreter a virtual environment is made from (``home`` in
    its ``pyvenv.cfg`` is that installation's ``bin``); None for another kind of folder."""
    root = root or folder()
    if root is None:
        return None
    try:
        lines = (root / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() == "home" and value.strip():
            home = Path(value.strip())
            return home.parent if home.name == "bin" else home
    return None


def readable_dirs() -> list[str]:
    """What the sandbox shows read-only for the tool folder to work: the folder and, for a
    virtual environment, its interpreter's installation (when not a system directory)."""
    root = folder()
    if root is None:
        return []
    out = [str(root.resolve())]
    prefix = interpreter_prefix(root)
    if prefix is not None and prefix.is_dir():
        out.append(str(prefix.resolve()))
    return out


def python() -> str | None:
    """The tool folder's python, or None."""
    for directory in bin_dirs():
        for name in ("python3", "python"):
            path = Path(directory, name)
            if os.access(path, os.X_OK):
                return str(path)
    return None


def find(tool: str) -> str | None:
    """A tool's absolute path: the tool folder first, then the system's directories; never
    the orchestrator's own PATH."""
    return shutil.which(tool, path=os.pathsep.join([*bin_dirs(), *SYSTEM_PATH]))


def has_module(module: str) -> bool:
    """Whether the tool folder's python has ``module`` (a top-level package or module)."""
    root = folder()
    if root is None:
        return False
    for site in root.glob("lib/python3*/site-packages"):
        if (site / module).is_dir() or (site / f"{module}.py").is_file():
            return True
    return False


def orchestrator_environment() -> str | None:
    """The orchestrator's own virtual environment (None when it runs on a system python):
    it never goes on a command's PATH nor into the sandbox."""
    if sys.prefix == sys.base_prefix:
        return None
    return str(Path(sys.prefix).resolve())


def inside(path: str | os.PathLike[str], folder_: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder_`` or below it (both resolved)."""
    p = os.path.realpath(path)
    f = os.path.realpath(folder_).rstrip("/") or "/"
    return p == f or p.startswith(f.rstrip("/") + "/")
