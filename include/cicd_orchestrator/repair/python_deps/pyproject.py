"""``pyproject.toml``: PEP 621 ``[project]`` dependencies and optional dependencies, PEP 735
``[dependency-groups]``, Poetry, Hatch environments and PDM development groups, edited with
tomlkit so that the rest of the file (comments, layout) is kept as written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Array, Table

from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.python_deps.model import TEST_GROUPS, CannotEditError
from cicd_orchestrator.repair.python_deps.names import normalize, requirement_name
from cicd_orchestrator.repair.python_deps.versions import operator_style, styled

PATH = "pyproject.toml"
# A place of dependencies: (description, container, kind) where kind is "list" (PEP 508
# strings) or "poetry" (a table of name = constraint).
Place = tuple[str, Any, str]


def load(root: Path) -> tomlkit.TOMLDocument | None:
    """The parsed ``pyproject.toml`` (None when there is none); CannotEditError when it does
    not parse."""
    if not files.is_file(root, PATH):
        return None
    try:
        return tomlkit.parse(files.read_text(root, PATH))
    except (TOMLKitError, UnicodeDecodeError) as exc:
        raise CannotEditError(f"{PATH} does not parse: {exc}") from exc


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not hasattr(doc, "get"):
            return None
        doc = doc.get(key)
        if doc is None:
            return None
    return doc


def project_name(doc: Any) -> str | None:
    name = _get(doc, "project", "name") or _get(doc, "tool", "poetry", "name")
    return str(name) if name else None


def dynamic_requirement_files(doc: Any) -> list[str]:
    """The files setuptools reads ``[project]`` dependencies from (``dynamic``)."""
    if "dependencies" not in (_get(doc, "project", "dynamic") or []):
        return []
    spec = _get(doc, "tool", "setuptools", "dynamic", "dependencies")
    found = _get(spec, "file") if spec is not None else None
    if isinstance(found, str):
        return [found]
    return [str(f) for f in found or ()]


def runtime_places(doc: Any) -> list[Place]:
    """Where the project's runtime dependencies are declared, the preferred first."""
    places: list[Place] = []
    deps = _get(doc, "project", "dependencies")
    if isinstance(deps, Array):
        places.append(("[project] dependencies", deps, "list"))
    poetry = _get(doc, "tool", "poetry", "dependencies")
    if isinstance(poetry, Table):
        places.append(("[tool.poetry.dependencies]", poetry, "poetry"))
    return places


def _test_candidates(doc: Any) -> Iterator[Place]:
    for group in TEST_GROUPS:
        yield (f"[dependency-groups] {group}", _get(doc, "dependency-groups", group), "list")
    for group in TEST_GROUPS:
        where = f"[project.optional-dependencies] {group}"
        yield (where, _get(doc, "project", "optional-dependencies", group), "list")
    for group in TEST_GROUPS:
        table = _get(doc, "tool", "poetry", "group", group, "dependencies")
        yield (f"[tool.poetry.group.{group}.dependencies]", table, "poetry")
    yield (
        "[tool.poetry.dev-dependencies]",
        _get(doc, "tool", "poetry", "dev-dependencies"),
        "poetry",
    )
    for group in TEST_GROUPS:
        where = f"[tool.pdm.dev-dependencies] {group}"
        yield (where, _get(doc, "tool", "pdm", "dev-dependencies", group), "list")
    for env in ("test", "tests", "default"):
        where = f"[tool.hatch.envs.{env}] dependencies"
        yield (where, _get(doc, "tool", "hatch", "envs", env, "dependencies"), "list")


def test_places(doc: Any) -> list[Place]:
    """Where the project declares the dependencies of its tests, the preferred first."""
    return [
        (where, found, kind)
        for where, found, kind in _test_candidates(doc)
        if isinstance(found, Array if kind == "list" else Table)
    ]


def declares(doc: Any) -> bool:
    """Whether the file declares runtime dependencies (not only tool settings)."""
    return bool(runtime_places(doc))


def _names(container: Any, kind: str) -> list[str]:
    if kind == "poetry":
        return [normalize(str(k)) for k in container]
    return [normalize(requirement_name(str(v))) for v in container if isinstance(v, str)]


def declared_in(doc: Any, dist: str) -> str | None:
    """The place of ``doc`` that already declares ``dist``, or None."""
    every = runtime_places(doc) + test_places(doc)
    extras = _get(doc, "project", "optional-dependencies")
    for group, deps in (extras or {}).items():
        if isinstance(deps, Array):
            every.append((f"[project.optional-dependencies] {group}", deps, "list"))
    for where, container, kind in every:
        if normalize(dist) in _names(container, kind):
            return where
    return None


def _poetry_spec(value: Any) -> str:
    if hasattr(value, "get"):
        return str(value.get("version", ""))
    return str(value)


def add(root: Path, doc: Any, place: Place, dist: str, version: str | None) -> str:
    """Add ``dist`` to ``place`` in the style of its entries, write the file; the entry."""
    where, container, kind = place
    if kind == "poetry":
        specs = [_poetry_spec(v) for k, v in container.items() if k != "python"]
        style = operator_style(specs)
        value = f"{style}{version}" if version and style else "*"
        container.add(dist, value)
        entry = f'{dist} = "{value}"'
    else:
        entry = styled(dist, version, operator_style(str(v) for v in container))
        container.append(entry)
    files.write_text(root, PATH, tomlkit.dumps(doc))
    return f"{entry} ({where})"


def add_project_dependencies(root: Path, doc: Any, dist: str) -> str:
    """Create ``[project] dependencies`` (the project declared none) with ``dist``."""
    project = _get(doc, "project")
    if not isinstance(project, Table):
        raise CannotEditError(f"{PATH} has no [project] table")
    deps = tomlkit.array()
    deps.multiline(True)
    deps.append(dist)
    project.add("dependencies", deps)
    files.write_text(root, PATH, tomlkit.dumps(doc))
    return f"{dist} ([project] dependencies)"
