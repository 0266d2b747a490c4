"""Repair rounds: a step runs chained tools (``ruff format --check . && ruff check .``) and
stops at the first that fails; repairing the formatting reveals the lint error behind it,
which validation analyses and hands back to the fixers. A real git repository in the local
CI provider, its jobs replayed for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from cicd_devkit.scenarios import materialize
from cicd_devkit.worlds import MARKER_KEY

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.report import render_report
from cicd_orchestrator.stages import classification, discovery, fixing
from cicd_orchestrator.validation import replay

#: whole attempts, real tool installs: the slow tier (`make test-slow`)
pytestmark = pytest.mark.slow

NOW = "2026-01-01T00:00:00+00:00"
WORKFLOW = """name: CI
on: [push, pull_request]
jobs:
  quality:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Format and lint
        run: ruff format --check . && ruff check .
"""
CLEAN = "def total(a: int, b: int) -> int:\n    return a + b\n"
# badly formatted (ruff format fixes it) and an unused import (ruff format leaves it)
LAYERED = (
    'import os\nimport sys\n\n\ndef label(name):\n    return   "label-" + name + sys.platform\n'
)


def _scenario(root: Path, labels: str = LAYERED) -> Path:
    folder = root / "layered"
    first = folder / "commits" / "01-initial"
    second = folder / "commits" / "02-labels"
    for path, text in {
        first / ".github" / "workflows" / "ci.yml": WORKFLOW,
        first / "src" / "calc.py": CLEAN,
        first / "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1.0"\n',
        first / ".scenario-message": "initial",
        second / "src" / "labels.py": labels,
        second / ".scenario-message": "add labels",
    }.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (folder / "scenario.yaml").write_text(
        "name: layered\nsummary: chained tools\ncategory: quality\nfailing_jobs: [quality]\n"
        "culprit: 02-labels\nexpect:\n  outcome: fixed\n  by_attempt: 1\nrequires: []\n",
        encoding="utf-8",
    )
    return folder


def _attempt(
    tmp_path: Path, labels: str = LAYERED, **config: object
) -> tuple[Attempt, LocalProvider]:
    provider = LocalProvider(tmp_path / "ci")
    made = materialize(_scenario(tmp_path, labels), provider, "acme/calc")
    assert made.head_run is not None and [j.name for j in made.head_run.failed_jobs] == ["quality"]
    cfg = load_config({"local_ci_root": str(tmp_path / "ci"), "marker_key": MARKER_KEY, **config})
    state = session.new_session("local", made.head_run, cfg, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return Attempt(state, 1, cfg, provider, cache_dir=tmp_path / "cache"), provider


def _fixed_once(attempt: Attempt) -> list:
    state = attempt.state
    session.fold_discovery(state, 1, 0.0, discovery.detect_failures(attempt, {}))
    session.fold_classification(state, 1, 0.0, classification.classify_failures(attempt, {}))
    assert [f.recipe for f in state.failures] == ["ruff-format"]
    kept = fixing.merge_repairs(attempt, fixing.fix_group(attempt, "quality"))
    assert [r.fixer for r in kept.repairs] == ["ruff-format"]
    session.fold_fixing(state, 1, 0.0, kept.repairs, [], kept.notes)
    return kept.repairs


def test_a_failure_behind_the_repaired_one_is_repaired_in_a_second_round(tmp_path: Path) -> None:
    attempt, _ = _attempt(tmp_path)
    repairs = _fixed_once(attempt)
    validation = fixing.validate_in_rounds(attempt, repairs)
    assert validation.reproduced and validation.passed, validation.after
    assert [r.number for r in validation.rounds] == [1, 2]
    first, second = validation.rounds
    assert [r.fixer for r in first.repairs] == ["ruff-format"]
    assert [f.recipe for f in second.failures] == ["ruff-fix"]
    assert [r.fixer for r in second.repairs] == ["ruff-fix"]
    regression = replay.regression_run(attempt, repairs)
    assert session.fold_validation(attempt.state, 1, 0.0, validation, regression)
    record = attempt.record
    assert [r.fixer for r in record.repairs] == ["ruff-format", "ruff-fix"]
    assert all(r.validated for r in record.repairs) and len(record.rounds) == 2
    # the final set, together, is what the fix branch gets: both tools pass on it
    with attempt.fixed_workspace(record.repairs) as ws:
        text = (ws.path / "src" / "labels.py").read_text()
    assert "import os" not in text and 'return "label-" + name + sys.platform' in text
    report = render_report(attempt.state)
    assert "repair rounds: 2" in report
    assert "round 1: found quality" in report and "round 2: found quality" in report
    assert "`ruff-fix`" in report


def test_the_rounds_are_bounded_by_the_configuration(tmp_path: Path) -> None:
    attempt, _ = _attempt(tmp_path, repair_rounds=1)
    repairs = _fixed_once(attempt)
    validation = fixing.validate_in_rounds(attempt, repairs)
    assert validation.rounds == [] and validation.passed is False
    assert not session.fold_validation(attempt.state, 1, 0.0, validation, None)
    assert [r.fixer for r in attempt.record.repairs] == ["ruff-format"]


def test_a_failure_the_last_round_brought_back_gets_a_round_of_its_own(tmp_path: Path) -> None:
    """Removing the only import leaves blank lines the formatter removes: the third round
    formats again (it differs from the lint failure the second round repaired)."""
    only_import = 'import os\n\n\ndef label(name):\n    return   "label-" + name\n'
    attempt, _ = _attempt(tmp_path, only_import)
    repairs = _fixed_once(attempt)
    validation = fixing.validate_in_rounds(attempt, repairs)
    assert validation.passed and [r.number for r in validation.rounds] == [1, 2, 3]
    fixers = [[r.fixer for r in rnd.repairs] for rnd in validation.rounds]
    assert fixers == [["ruff-format"], ["ruff-fix"], ["ruff-format"]]
