"""Which declaration a project really uses, and the requirement added there.

The order of preference: the requirements files the failing workflow installs (when it does
not install the project itself), ``pyproject.toml`` when it declares dependencies (or reads
them from a file), ``setup.cfg``, ``setup.py``, the requirements files of the repository,
and last a ``[project]`` table with no dependencies yet. A test import goes to the test
extra, development group or test requirements of that declaration when it has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.python_deps import pyproject, requirements, setup_cfg, setup_py
from cicd_orchestrator.repair.python_deps.model import CannotEditError, Declared
from cicd_orchestrator.repair.python_deps.names import normalize
from cicd_orchestrator.repair.python_deps.versions import lock_files, version_for

_REQ_INSTALL = re.compile(r"(?:-r|--requirement)[\s=]+(?P<file>[\w./-]+\.(?:txt|in))")
_INSTALLS_PROJECT = re.compile(
    r"pip3? install\b[^\n]*\s(?:-e\s+|--editable\s+)?\.(?:\[[\w,.-]+\])?(?:\s|$)"
    r"|\b(?:poetry|pdm) install\b|\buv sync\b|\bhatch (?:run|test)\b|\btox\b|\bnox\b"
)


class AlreadyDeclaredError(Exception):
    """The requirement is already declared; the message says where."""


@dataclass
class Project:
    """What the repository declares (each part None when it has no such file)."""

    root: Path
    workflow_text: str
    toml: Any
    cfg: Any
    setup: Any

    @classmethod
    def read(cls, root: Path, workflow_text: str) -> Project:
        return cls(
            root, workflow_text, pyproject.load(root), setup_cfg.load(root), setup_py.parse(root)
        )

    def names(self) -> set[str]:
        """The project's own distribution names."""
        found = [
            pyproject.project_name(self.toml) if self.toml is not None else None,
            setup_cfg.project_name(self.cfg) if self.cfg is not None else None,
            setup_py.project_name(self.setup) if self.setup is not None else None,
        ]
        return {normalize(n) for n in found if n}

    def named_requirements(self) -> list[str]:
        named = [m.group("file") for m in _REQ_INSTALL.finditer(self.workflow_text)]
        return [p for p in dict.fromkeys(named) if files.is_file(self.root, p)]

    def declared_in(self, dist: str) -> str | None:
        checks = [
            pyproject.declared_in(self.toml, dist) if self.toml is not None else None,
            setup_cfg.declared_in(self.cfg, dist) if self.cfg is not None else None,
            setup_py.declared_in(self.setup, dist) if self.setup is not None else None,
            requirements.declared_in(
                self.root, self.named_requirements() + requirements.candidates(self.root), dist
            ),
        ]
        return next((c for c in checks if c), None)


def declare(project: Project, dist: str, test: bool) -> Declared:
    """Add ``dist`` where ``project`` declares its dependencies (see the module docstring).

    Raises AlreadyDeclaredError, or CannotEditError with the reason."""
    where = project.declared_in(dist)
    if where:
        raise AlreadyDeclaredError(f"{dist} is already declared in {where}")
    named = project.named_requirements()
    if named and not _INSTALLS_PROJECT.search(project.workflow_text):
        return _in_requirements(project, named, dist, test)
    for layout in (_pyproject, _setup_cfg, _setup_py):
        done = layout(project, dist, test)
        if done is not None:
            return done
    found = requirements.candidates(project.root)
    if found:
        return _in_requirements(project, found, dist, test)
    if project.toml is not None and "project" in project.toml:
        entry = pyproject.add_project_dependencies(project.root, project.toml, dist)
        return Declared([pyproject.PATH], entry, _lock_notes(project.root))
    raise CannotEditError(
        "no dependency declaration (pyproject.toml, setup.cfg, setup.py, "
        "requirements file) was found"
    )


def _in_requirements(project: Project, pool: list[str], dist: str, test: bool) -> Declared:
    path = requirements.choose(pool, test)
    if path is None:
        raise CannotEditError("no requirements file was found")
    return requirements.add(project.root, path, dist, project.workflow_text)


def _lock_notes(root: Path) -> list[str]:
    return [
        f"{lock.path} was left as it is (no network for repair tools): run `{lock.command}`"
        for lock in lock_files(root)
    ]


def _pyproject(project: Project, dist: str, test: bool) -> Declared | None:
    doc = project.toml
    if doc is None:
        return None
    dynamic = pyproject.dynamic_requirement_files(doc)
    if dynamic:
        return _in_requirements(project, dynamic, dist, test)
    if not pyproject.declares(doc):
        return None
    places = (pyproject.test_places(doc) if test else []) + pyproject.runtime_places(doc)
    version = version_for(project.root, dist)
    entry = pyproject.add(project.root, doc, places[0], dist, version)
    return Declared([pyproject.PATH], entry, _lock_notes(project.root))


def _setup_cfg(project: Project, dist: str, test: bool) -> Declared | None:
    cfg = project.cfg
    if cfg is None or not cfg.has_option(*setup_cfg.RUNTIME):
        return None
    if not test or not setup_cfg.places(cfg, True)[:-1]:
        read = setup_cfg.requirement_file(cfg)
        if read:
            return _in_requirements(project, read, dist, test)
    place = setup_cfg.places(cfg, test)[0]
    entry = setup_cfg.add(project.root, cfg, place, dist, version_for(project.root, dist))
    return Declared([setup_cfg.PATH], entry, _lock_notes(project.root))


def _setup_py(project: Project, dist: str, test: bool) -> Declared | None:
    tree = project.setup
    if tree is None or not setup_py.declares(tree):
        return None
    site = (setup_py.test_site(project.root, tree) if test else None) or setup_py.runtime_site(
        project.root, tree
    )
    if isinstance(site, list):
        return _in_requirements(project, site, dist, test)
    entry = setup_py.add(project.root, site, dist, version_for(project.root, dist))
    return Declared([setup_py.PATH], entry, _lock_notes(project.root))
