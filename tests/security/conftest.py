"""Fixtures of the adversarial suite: hostile repositories and commands, run the worst way.

A repository command runs here without the command sandbox (``CICD_COMMAND_SANDBOX=off``),
so it may do whatever it likes in the work tree: each attack writes a marker file into
``markers`` if it ever runs, and the tests assert that none was written.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.config import load_config
from cicd_orchestrator.git import checkout
from cicd_orchestrator.models import Context, Failure
from cicd_orchestrator.process import CommandResult, run_command
from cicd_orchestrator.repair.base import RepairContext

Attack = Callable[[Path, str], CommandResult]
MakeContext = Callable[..., RepairContext]


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Repository commands run without the command sandbox: the worst case."""
    monkeypatch.setenv("CICD_COMMAND_SANDBOX", "off")


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    """Where an attack leaves a file when it runs; it must stay empty."""
    path = tmp_path / "markers"
    path.mkdir()
    return path


@pytest.fixture
def attack(tmp_path: Path, markers: Path, no_sandbox: None) -> Attack:
    """``attack(work_tree, script)``: run the Python ``script`` as a repository command in
    the work tree, unsandboxed; ``M`` in the script is the markers folder."""

    def run(cwd: Path, script: str) -> CommandResult:
        path = tmp_path / "hostile.py"
        path.write_text(f"M = {str(markers)!r}\n" + textwrap.dedent(script), encoding="utf-8")
        result = run_command([sys.executable, str(path)], cwd=cwd, timeout=120)
        assert result.returncode == 0, result.output
        return result

    return run


@pytest.fixture
def fixer_context() -> MakeContext:
    """``fixer_context(repo, failures, sha, context=None, **config)``: what a fixer is given
    for commit ``sha`` of the test repository ``repo``."""

    def make(
        repo: Any, failures: list[Failure], sha: str, context: Context | None = None, **config: Any
    ) -> RepairContext:
        return RepairContext(
            repository="acme/shop",
            head_sha=sha,
            failures=failures,
            context=context,
            config=load_config(config or None),
            workspace=lambda: checkout(repo.path, sha),
        )

    return make
