"""Import names, distribution names, and the modules a repository provides itself."""

from __future__ import annotations

import functools
import importlib.metadata
import re
import sys
from pathlib import Path, PurePosixPath

from cicd_orchestrator import runner_tools
from cicd_orchestrator.repair import files

# Import names whose distribution is named otherwise (the well-known cases).
IMPORT_TO_DISTRIBUTION = {
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "PyJWT",
    "Crypto": "pycryptodome",
    "OpenSSL": "pyOpenSSL",
    "serial": "pyserial",
    "usb": "pyusb",
    "git": "GitPython",
    "github": "PyGithub",
    "gitlab": "python-gitlab",
    "jenkins": "python-jenkins",
    "magic": "python-magic",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "attr": "attrs",
    "google.protobuf": "protobuf",
    "zmq": "pyzmq",
    "lxml": "lxml",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "fitz": "PyMuPDF",
    "win32api": "pywin32",
    "Levenshtein": "python-Levenshtein",
    "slugify": "python-slugify",
    "multipart": "python-multipart",
}
STDLIB = frozenset(sys.stdlib_module_names)
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_SKIP_DIRS = frozenset({"tests", "test", "docs", "doc", "examples", "scripts", "build", "dist"})


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(text: str) -> str:
    """The distribution name of a requirement string (``"requests[socks]>=2; ..."``)."""
    return re.split(r"[\s<>=!~;\[@(,]", text.strip(), maxsplit=1)[0]


def site_packages(root: Path | None = None) -> list[Path]:
    """The ``site-packages`` folders of the runner tool folder (none without one)."""
    root = root or runner_tools.folder()
    return sorted(root.glob("lib/python3*/site-packages")) if root else []


@functools.cache
def _runner_distributions(paths: tuple[str, ...]) -> dict[str, list[str]]:
    """Top-level import name -> distributions installed in ``paths``."""
    found: dict[str, list[str]] = {}
    for dist in importlib.metadata.distributions(path=list(paths)):
        name = dist.metadata["Name"]
        if not name:
            continue
        tops = (dist.read_text("top_level.txt") or "").split()
        if not tops:
            tops = [
                PurePosixPath(str(f)).parts[0].removesuffix(".py")
                for f in dist.files or ()
                if not str(f).startswith(("..", "/")) and ".dist-info" not in str(f)
            ]
        for top in dict.fromkeys(t for t in tops if t and not t.startswith("__")):
            found.setdefault(top, []).append(name)
    return found


def distribution_for(module: str) -> str | None:
    """The distribution that provides ``module``: the curated map, then the installed
    metadata (the runner tool folder's, then this installation's); None for the standard
    library."""
    top = module.split(".")[0]
    for name in (module, top):
        if name in IMPORT_TO_DISTRIBUTION:
            return IMPORT_TO_DISTRIBUTION[name]
    if top in STDLIB:
        return None
    runner = _runner_distributions(tuple(str(p) for p in site_packages()))
    if top in runner:
        return runner[top][0]
    installed = importlib.metadata.packages_distributions().get(top)
    if installed:
        return installed[0]
    return top.replace("_", "-")


def local_module(root: Path, module: str) -> str | None:
    """Where the repository provides ``module``'s top-level package itself (a folder at the
    top, under ``src/`` or ``lib/``, or a module file), or None."""
    top = module.split(".")[0]
    for base in ("", "src/", "lib/", "python/"):
        if files.is_dir(root, f"{base}{top}") and (
            files.is_file(root, f"{base}{top}/__init__.py") or base == "src/"
        ):
            return f"{base}{top}/"
        if files.is_file(root, f"{base}{top}.py"):
            return f"{base}{top}.py"
    return _package_below(root, top)


def _package_below(root: Path, top: str) -> str | None:
    """A package ``top`` one level below a project folder (``packages/x/top/``, a
    monorepo's layout); test and documentation folders do not count."""
    for name, kind in files.entries(root):
        if kind != "dir" or name.startswith(".") or name in _SKIP_DIRS:
            continue
        for base in (f"{name}/", f"{name}/src/"):
            if files.is_file(root, f"{base}{top}/__init__.py"):
                return f"{base}{top}/"
    return None
