"""Finding the machine's interpreters and tools by version: real executables, real probes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.actions import toolchains
from cicd_orchestrator.actions.toolchains import Toolchain, parse_spec, select
from cicd_orchestrator.exceptions import WorkflowError


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv(toolchains.ENV_VAR, raising=False)
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "no-uv"))
    toolchains.clear_cache()
    yield
    toolchains.clear_cache()


def py(*version: int, path: str = "/x/python3") -> Toolchain:
    return Toolchain("python", tuple(version), f"{path}{'.'.join(map(str, version))}", "system")


HOST = [py(3, 10, 4), py(3, 11, 2), py(3, 11, 9), py(3, 12, 1), py(3, 12, 3), py(3, 13, 0)]


def chosen(requested: str, found: list[Toolchain] = HOST, tool: str = "python") -> str | None:
    selection = select(requested, found, tool)
    return selection.toolchain.version_text if selection.toolchain else None


def test_versions_match_as_setup_python_does() -> None:
    assert chosen("3.12") == "3.12.3"  # any 3.12.x, the highest
    assert chosen("3.12.1") == "3.12.1"  # exactly
    assert chosen("3.x") == chosen("3") == chosen("3.*") == "3.13.0"
    assert chosen(">=3.10,<3.12") == "3.11.9"
    assert chosen("^3.10") == "3.13.0" and chosen("~3.11") == "3.11.9"
    assert chosen("~=3.11.1") == "3.11.9" and chosen("==3.10.*") == "3.10.4"
    assert chosen("3.13-dev") == "3.13.0"
    assert select("3.12", HOST).exact and select("3.12", HOST).note() is None


def test_unsupported_or_unreadable_requests_find_nothing() -> None:
    for requested in ("pypy3.10", "pypy-3.9", "graalpy-24", "banana", "2.7"):
        selection = select(requested, HOST)
        assert selection.toolchain is None, requested
    assert parse_spec("pypy3.10") is None and parse_spec("banana") is None


def test_the_nearest_version_is_taken_with_a_note() -> None:
    selection = select("3.14", HOST)
    assert selection.toolchain is not None and not selection.exact
    assert selection.toolchain.version_text == "3.13.0"
    note = selection.note() or ""
    assert "3.14 was asked for" in note and "3.13.0" in note
    # the closest minor; on a tie the higher one
    assert chosen("3.9") == "3.10.4"
    assert chosen("3.12.7") == "3.12.3"  # not installed exactly: the same minor
    tie = [py(3, 10, 1), py(3, 12, 1)]
    assert chosen("3.11", tie) == "3.12.1"
    assert chosen("3.99.1", HOST) == "3.13.0"


def test_other_tools_versions() -> None:
    node = [
        Toolchain("node", (18, 19, 0), "/n18", "system"),
        Toolchain("node", (20, 11, 1), "/n20", "system"),
    ]
    assert chosen("20", node, "node") == "20.11.1" and chosen("v18", node, "node") == "18.19.0"
    assert chosen("lts/*", node, "node") == "20.11.1" and chosen("22", node, "node") is None
    java = [
        Toolchain("java", (8, 0, 392), "/j8", "system"),
        Toolchain("java", (17, 0, 9), "/j17", "system"),
    ]
    assert chosen("1.8", java, "java") == "8.0.392" and chosen("17", java, "java") == "17.0.9"
    assert chosen("21", java, "java") is None
    go = [Toolchain("go", (1, 21, 5), "/g", "system")]
    assert chosen("1.22", go, "go") == "1.21.5"  # nearest minor of go 1
    assert toolchains.parse_version("go1.22.1") == (1, 22, 1)
    assert toolchains.parse_version("v20.1.0") == (20, 1, 0)


def test_the_system_python_is_found_with_its_real_version() -> None:
    system = "/usr/bin/python3"
    if not os.access(system, os.X_OK):
        pytest.skip("no /usr/bin/python3 on this machine")
    expected = subprocess.run(
        [system, "-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    found = toolchains.candidates("python")
    versions = {os.path.realpath(t.executable): t.version_text for t in found}
    assert versions[os.path.realpath(system)] == expected
    own = runner_tools.orchestrator_environment()
    for t in found:  # never the orchestrator's own environment
        assert not (own and runner_tools.inside(t.executable, own)), t
        assert os.path.dirname(t.executable) != os.path.dirname(sys.executable) or not own
    major_minor = ".".join(expected.split(".")[:2])
    selection = toolchains.find("python", major_minor)
    assert selection.exact and selection.toolchain is not None
    assert selection.toolchain.version_text.startswith(major_minor + ".")


def fake_tool(path: Path, output: str) -> Path:
    """An executable that answers its version probe with ``output``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


def test_the_toolchain_folder_and_uv_pythons(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "toolchains"
    # the version is asked, not read from the folder's name
    fake_tool(folder / "python-3.98.0" / "bin" / "python3", "cpython 3 98 4")
    fake_tool(folder / "node-21.0.0" / "bin" / "node", "v21.6.2")
    fake_tool(folder / "go-1.22.1" / "bin" / "go", "go version go1.22.1 linux/amd64")
    fake_tool(folder / "java-21" / "bin" / "java", 'openjdk version "21.0.2" 2024-01-16')
    fake_tool(folder / "python-2.0" / "bin" / "python3", "not a python")
    uv_dir = tmp_path / "uv-pythons"
    fake_tool(uv_dir / "cpython-3.97.1-linux-x86_64-gnu" / "bin" / "python3.97", "cpython 3 97 1")
    fake_tool(uv_dir / "pypy-3.10.14-linux-x86_64-gnu" / "bin" / "python3.10", "cpython 3 10 14")
    monkeypatch.setenv(toolchains.ENV_VAR, str(folder))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(uv_dir))
    toolchains.clear_cache()
    pythons = {t.version_text: t for t in toolchains.candidates("python")}
    assert pythons["3.98.4"].source == "toolchains"
    assert pythons["3.97.1"].source == "uv"
    assert "3.10.14" not in pythons  # PyPy is not a CPython
    assert toolchains.find("python", "3.98").toolchain == pythons["3.98.4"]
    assert pythons["3.98.4"].root == str((folder / "python-3.98.0").resolve())
    assert toolchains.find("node", "21").toolchain is not None
    assert toolchains.find("go", "1.22").toolchain is not None
    java = toolchains.find("java", "21").toolchain
    assert java is not None and java.version == (21, 0, 2)


def test_a_probe_that_hangs_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    slow = tmp_path / "node"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(toolchains, "PROBE_TIMEOUT", 0.5)
    assert toolchains.probe("node", str(slow)) is None
    with pytest.raises(ValueError, match="unknown tool"):
        toolchains.candidates("cobol")


def test_version_files(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".python-version").write_text("# pinned\n3.12.1\n")
    (ws / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = ">=3.10"\n')
    (ws / "go.mod").write_text("module example.com/x\n\ngo 1.22\n")
    (ws / ".nvmrc").write_text("v20\n")
    (ws / ".tool-versions").write_text("nodejs 18.19.0\npython 3.11.4\n")
    (ws / "empty.txt").write_text("\n")
    (tmp_path / "secret").write_text("3.12\n")
    (ws / "link").symlink_to(tmp_path / "secret")
    read = toolchains.read_version_file
    assert read(ws, ".python-version", "python") == "3.12.1"
    assert read(ws, "pyproject.toml", "python") == ">=3.10"
    assert read(ws, "go.mod", "go") == "1.22"
    assert read(ws, ".nvmrc", "node") == "v20"
    assert read(ws, ".tool-versions", "node") == "18.19.0"
    assert read(ws, ".tool-versions", "python") == "3.11.4"
    with pytest.raises(WorkflowError, match="outside the workspace"):
        read(ws, "link", "python")
    with pytest.raises(WorkflowError, match="outside the workspace"):
        read(ws, "../secret", "python")
    with pytest.raises(WorkflowError, match="cannot be read"):
        read(ws, "missing.txt", "python")
    with pytest.raises(WorkflowError, match="names no python version"):
        read(ws, "empty.txt", "python")


def test_the_orchestrators_environment_is_never_a_toolchain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = runner_tools.orchestrator_environment()
    if own is None:
        pytest.skip("the tests do not run in a virtual environment")
    folder = tmp_path / "toolchains"
    folder.mkdir()
    (folder / "python-3.11.0").symlink_to(own)  # a toolchain folder entry that is the venv
    monkeypatch.setenv(toolchains.ENV_VAR, str(folder))
    toolchains.clear_cache()
    found = toolchains.candidates("python")
    assert found, "the machine's own pythons are still found"
    for t in found:
        assert not runner_tools.inside(os.path.dirname(os.path.abspath(t.executable)), own), t
        assert t.source != "toolchains", t
