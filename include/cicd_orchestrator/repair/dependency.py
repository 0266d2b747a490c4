"""Build repairs: a module the code imports but the repository does not declare becomes a
requirement, under its distribution's name, in the file the repository uses."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import time
from pathlib import Path

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.repair.workspace import Workspace

log = logging.getLogger(__name__)

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
_STDLIB = frozenset(getattr(__import__("sys"), "stdlib_module_names", ()))
_REQ_INSTALL = re.compile(r"(?:-r|--requirement)\s+(?P<file>[\w./-]+\.txt)")


def distribution_for(module: str) -> str | None:
    """The distribution that provides ``module`` (curated map, then installed metadata)."""
    top = module.split(".")[0]
    for name in (module, top):
        if name in IMPORT_TO_DISTRIBUTION:
            return IMPORT_TO_DISTRIBUTION[name]
    if top in _STDLIB:
        return None
    installed = importlib.metadata.packages_distributions().get(top)
    if installed:
        return installed[0]
    return top.replace("_", "-")


def _declared(text: str, distribution: str) -> bool:
    norm = re.sub(r"[-_.]+", "-", distribution).lower()
    for line in text.splitlines():
        name = re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0]
        if re.sub(r"[-_.]+", "-", name).lower() == norm and not line.strip().startswith("#"):
            return True
    return False


def _requirement_files(ws: Workspace, workflow_text: str) -> list[Path]:
    named = [ws.path / m.group("file") for m in _REQ_INSTALL.finditer(workflow_text)]
    found = [p for p in named if p.is_file()]
    return found or sorted(ws.path.glob("requirements*.txt"))


def _add_to_requirements(path: Path, distribution: str) -> bool:
    text = path.read_text()
    if _declared(text, distribution):
        return False
    pinned = [ln for ln in text.splitlines() if "==" in ln and not ln.startswith("#")]
    line = distribution
    if pinned:
        try:
            line = f"{distribution}=={importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            line = distribution
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + line + "\n")
    return True


def _add_to_pyproject(path: Path, distribution: str) -> bool:
    text = path.read_text()
    match = re.search(r"(?ms)^\[project\].*?^dependencies\s*=\s*\[(?P<body>.*?)\]", text)
    if match:
        if _declared(match.group("body").replace('"', "\n").replace("'", "\n"), distribution):
            return False
        body = match.group("body")
        sep = "" if not body.strip() else ("," if not body.rstrip().endswith(",") else "")
        new_body = body.rstrip() + f'{sep}\n    "{distribution}",\n'
        text = text[: match.start("body")] + new_body + text[match.end("body") :]
    else:
        project = re.search(r"(?m)^\[project\][^\n]*\n", text)
        if not project:
            return False
        insert = f'dependencies = [\n    "{distribution}",\n]\n'
        end = re.search(r"(?m)^\[", text[project.end() :])
        at = project.end() + (end.start() if end else len(text) - project.end())
        text = text[:at].rstrip("\n") + "\n" + insert + ("\n" + text[at:] if end else "")
    path.write_text(text)
    return True


class MissingDependencyFixer(Fixer):
    """ModuleNotFoundError -> a requirement under the distribution's name."""

    name = "add-requirement"
    categories = frozenset({FailureCategory.BUILD, FailureCategory.TEST})
    recipes = frozenset({"add-requirement"})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = [f for f in self.relevant(ctx.failures) if f.captures.get("module")]
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or "add-requirement" not in ctx.config.enabled_fixers:
            return result
        with ctx.workspace() as ws:
            workflow = ws.path / ctx.workflow_path if ctx.workflow_path else None
            workflow_text = workflow.read_text() if workflow and workflow.is_file() else ""
            added: dict[str, Failure] = {}
            for failure in relevant:
                module = failure.captures["module"]
                dist = distribution_for(module)
                if dist is None:
                    result.unrepaired.append(
                        f"{module} is in the standard library: not a missing requirement"
                    )
                    continue
                if dist in added or self._declare(ws, workflow_text, dist):
                    added[dist] = failure
                else:
                    result.unrepaired.append(
                        f"{dist} (import {module}) is already declared or "
                        "no requirements file was found"
                    )
            patch = ws.diff()
            if patch:
                files = ws.changed_files()
                result.repairs.append(
                    Repair(
                        fixer=self.name,
                        kind=RepairKind.CHANGE,
                        category=FailureCategory.BUILD,
                        description=f"declare {', '.join(added)} in {', '.join(files)}",
                        jobs=sorted({f.job for f in added.values()}),
                        patch=patch,
                        files=files,
                        commit_message=f"Declare the missing requirement {', '.join(added)}",
                        confidence=0.85,
                        evidence=[e for f in added.values() for e in f.evidence[:2]],
                    )
                )
        result.seconds = round(time.monotonic() - start, 3)
        return result

    @staticmethod
    def _declare(ws: Workspace, workflow_text: str, dist: str) -> bool:
        for req in _requirement_files(ws, workflow_text):
            return _add_to_requirements(req, dist)
        pyproject = ws.path / "pyproject.toml"
        return pyproject.is_file() and _add_to_pyproject(pyproject, dist)
