"""The report as the seed's template shows it: trigger and pull request, workflow, total
duration, stages completed out of 4, fixes by category, success rate, learned patterns."""

from __future__ import annotations

from cicd_orchestrator import session
from cicd_orchestrator.constants import FailureCategory, Outcome, RepairKind, Strategy
from cicd_orchestrator.models import LearnedPattern, Repair, SessionState
from cicd_orchestrator.report import render_report, stages_completed, total_duration

START = "2026-01-01T00:00:00+00:00"


def _repair(fixer: str, category: FailureCategory, validated: bool | None) -> Repair:
    return Repair(fixer, RepairKind.CHANGE, category, f"{fixer} repair", validated=validated)


def _state() -> SessionState:
    state = SessionState(
        "cicd-github-run42-abc",
        "github",
        "acme/shipping",
        42,
        "feature/x",
        "b" * 40,
        workflow="CI",
        event="pull_request",
        pull_request_number=17,
        start_time=START,
    )
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, START)
    record = state.attempt_record(1)
    assert record is not None
    record.repairs = [
        _repair("ruff-fix", FailureCategory.QUALITY, True),
        _repair("ruff-format", FailureCategory.QUALITY, True),
        _repair("add-requirement", FailureCategory.BUILD, False),
        _repair("k8s-schema", FailureCategory.CONFIGURATION, True),
        Repair("issue", RepairKind.ISSUE, FailureCategory.TEST, "hand over", validated=True),
    ]
    for stage in ("discovery", "classification", "fixing"):
        session.record_stage(state, 1, stage, 1.5)
    record.finished_at = "2026-01-01T00:02:05+00:00"
    state.learned_patterns = [
        LearnedPattern("0123456789abcdef", FailureCategory.QUALITY, "ruff", "ruff-fix", True, 3)
    ]
    return state


def test_the_report_has_the_seed_template_lines() -> None:
    report = render_report(_state())
    assert "- Pipeline: acme/shipping / CI run 42 on `feature/x`" in report
    assert "- Trigger: pull_request (pull request #17)" in report
    assert "- Total duration: 2m 5s so far" in report
    assert "- Stages completed: 3/4 (attempt 1)" in report
    assert "- Success rate: 75% (3 of 4 repair(s) validated)" in report
    assert "- Quality fixes: 2 (`ruff-fix`, `ruff-format`)" in report
    assert "- Build fixes: 0" in report and "- Test fixes: 0" in report
    assert "- Deployment fixes: 0" in report and "- Configuration fixes: 1" in report
    assert "- Flaky fixes" not in report  # other categories only when they have fixes
    assert "`0123456789ab` quality `ruff`: repair `ruff-fix` worked (seen 3x)" in report


def test_a_closed_session_reports_its_whole_duration() -> None:
    state = _state()
    session.close(state, Outcome.FIXED, "2026-01-01T01:00:07+00:00", [])
    assert total_duration(state) == "1h 0m 7s"
    assert "- Outcome: **fixed**" in render_report(state)


def test_a_session_without_facts_says_so() -> None:
    state = SessionState("s", "local", "a/b", 1, "main", "c" * 40)
    report = render_report(state)
    assert total_duration(state) == "-" and stages_completed(state) == "0/4 (attempt 1)"
    assert "- Trigger: unknown event (no PR)" in report
    assert "- Success rate: - (no repair tried)" in report
    assert "## Learned patterns\n\n- none yet" in report
