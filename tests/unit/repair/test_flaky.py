from __future__ import annotations

import pytest

from cicd_orchestrator import sandbox
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.repair.flaky import FlakyTestFixer

FLAKY_WF = """name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: python flip.py
"""
# fails on the first run in a fresh checkout directory, passes afterwards (state in $HOME)
FLIP = """import os, pathlib, sys
mark = pathlib.Path(os.environ["HOME"]) / "seen"
first = not mark.exists()
mark.write_text("x")
sys.exit(1 if first else 0)
"""


def test_flaky_test_is_confirmed_by_local_reruns_and_rerun(
    repo, tmp_path, make_failure, monkeypatch: pytest.MonkeyPatch
):
    # the reruns remember the first one in a folder of the host, which no sandboxed job sees:
    # this test of the fixer's logic runs them plainly
    monkeypatch.setenv(sandbox.ENV_VAR, "off")
    sha = repo.commit(
        {
            ".github/workflows/ci.yml": FLAKY_WF,
            "flip.py": FLIP.replace('os.environ["HOME"]', f'"{tmp_path}"'),
        },
        "init",
    )
    f = make_failure(FailureCategory.TEST)
    f.tests = ["tests/test_x.py::test_y"]
    ctx = repo.context([f], sha)
    ctx.workflow_path = ".github/workflows/ci.yml"
    result = FlakyTestFixer().propose(ctx)
    repair = result.repairs[0]
    assert repair.kind is RepairKind.RERUN and repair.category is FailureCategory.FLAKY
    assert "tests/test_x.py::test_y" in repair.description


def test_deterministic_failure_is_not_called_flaky(repo, make_failure):
    sha = repo.commit(
        {".github/workflows/ci.yml": FLAKY_WF, "flip.py": "raise SystemExit(1)\n"}, "init"
    )
    ctx = repo.context([make_failure(FailureCategory.TEST)], sha, flaky_local_reruns=2)
    ctx.workflow_path = ".github/workflows/ci.yml"
    result = FlakyTestFixer().propose(ctx)
    assert not result.repairs and "deterministic" in result.unrepaired[0]
