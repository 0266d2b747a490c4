from __future__ import annotations

from cicd_devkit import builders

from cicd_orchestrator import session
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import (
    FailureCategory,
    Outcome,
    Priority,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import Context, Issue, Published, Repair, SessionState
from cicd_orchestrator.report import render_report
from cicd_orchestrator.serde import from_json_obj, to_json_obj

NOW = builders.NOW
make_run = builders.failed_run
failure = builders.failure
new_state = builders.new_state


def test_session_id_is_stable_and_unique_per_push():
    sha = "ab12" * 10
    a = session.session_id_for("local", "acme/shop", sha, "main")
    assert a == session.session_id_for("local", "acme/shop", sha, "main")
    assert a != session.session_id_for("local", "acme/shop", "cd34" * 10, "main")
    assert a != session.session_id_for("local", "acme/shop", sha, "feature")
    assert a != session.session_id_for("local", "acme/other", sha, "main")
    assert a != session.session_id_for("github", "acme/shop", sha, "main")
    assert len(a) < 250


def test_two_workflows_of_one_push_have_one_session_id():
    lint, tests = make_run(7), make_run(8)
    tests.workflow_path = ".github/workflows/tests.yml"
    assert session.session_id_of_run("local", lint) == session.session_id_of_run("local", tests)


def test_a_session_id_needs_a_commit_and_shows_only_hex():
    import pytest

    with pytest.raises(ValueError, match="head commit"):
        session.session_id_for("local", "acme/shop", "", "main")
    sid = session.session_id_for("local", "acme/shop", "../$(x)deadbeef", "main")
    assert "/" not in sid and "$" not in sid and "(" not in sid


def test_a_failing_workflow_of_the_same_push_joins_the_session():
    state = new_state()
    other = make_run(9)
    other.workflow_path = ".github/workflows/tests.yml"
    assert session.join_run(state, other)
    assert not session.join_run(state, other)  # once
    assert session.session_runs(state) == [7, 9]


def test_a_run_of_another_push_never_joins():
    import pytest

    state = new_state()
    later = make_run(9)
    later.head_sha = "b" * 40
    with pytest.raises(ValueError, match="not of the push"):
        session.join_run(state, later)
    elsewhere = make_run(10)
    elsewhere.head_branch = "feature"
    with pytest.raises(ValueError):
        session.join_run(state, elsewhere)
    assert session.session_runs(state) == [7]


def test_an_older_state_without_failed_runs_still_has_its_run():
    state = new_state()
    state.failed_runs = []
    again = from_json_obj(
        SessionState, {k: v for k, v in to_json_obj(state).items() if k != "failed_runs"}
    )
    assert session.session_runs(again) == [7]


def test_priorities():
    assert session.branch_priority("main", "main") is Priority.CRITICAL
    assert session.branch_priority("release/2.0", "main") is Priority.HIGH
    assert session.branch_priority("hotfix/x", "main") is Priority.URGENT
    assert session.branch_priority("feature/x", "main") is Priority.MEDIUM


def _change(fixer: str) -> Repair:
    return Repair(
        fixer=fixer,
        kind=RepairKind.CHANGE,
        category=FailureCategory.TEST,
        description=f"a change by {fixer}",
        patch="diff",
    )


def _attempt(state, n, strategy, kind, green, config, changes=()):
    session.start_attempt(state, n, strategy, NOW)
    state.attempt_record(n).repairs.extend(_change(c) for c in changes)
    published = Published(kind=kind)
    if kind is RepairKind.ISSUE:
        published.issue = Issue(number=1, title="t", url="local://acme/shop/issues/1")
    session.record_published(state, n, published, NOW)
    session.record_ci_result(state, n, green, [], NOW)
    return session.decide(state, n, green, config)


def test_green_fix_closes_fixed():
    config = load_config()
    state = new_state(config)
    decision = _attempt(
        state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, True, config
    )
    assert decision.action == "close" and decision.outcome is Outcome.FIXED
    session.apply_decision(state, decision, NOW)
    assert state.status is SessionStatus.CLOSED and state.green_threshold_met


def test_red_escalates_through_the_strategies_with_growing_delays():
    config = load_config({"delay_scale": 0.5})
    state = new_state(config)
    state.failures = [failure()]
    state.context = Context(failing_sha="a" * 40, culprit_sha="b" * 40)
    d1 = _attempt(
        state,
        1,
        Strategy.STANDARD_PARALLEL_FIXING,
        RepairKind.CHANGE,
        False,
        config,
        changes=["a", "b"],  # several changes: validating each alone is something new
    )
    assert (d1.action, d1.next_attempt, d1.next_strategy) == (
        "escalate",
        2,
        Strategy.EXTENDED_ANALYSIS,
    )
    assert d1.delay_seconds == 15
    d2 = _attempt(state, 2, Strategy.EXTENDED_ANALYSIS, RepairKind.NONE, False, config)
    assert d2.next_strategy is Strategy.SEQUENTIAL_FIXING and d2.delay_seconds == 22.5
    d3 = _attempt(state, 3, Strategy.SEQUENTIAL_FIXING, RepairKind.NONE, False, config)
    assert d3.next_strategy is Strategy.MANUAL_INTERVENTION
    d4 = _attempt(state, 4, Strategy.MANUAL_INTERVENTION, RepairKind.ISSUE, False, config)
    assert d4.next_strategy is Strategy.EMERGENCY_ROLLBACK
    d5 = _attempt(state, 5, Strategy.EMERGENCY_ROLLBACK, RepairKind.REVERT, True, config)
    assert d5.outcome is Outcome.ROLLED_BACK
    assert state.total_failures == 4 and state.consecutive_failures == 0


def test_a_strategy_that_would_repeat_the_earlier_attempts_is_skipped():
    """Without several changes to take apart, sequential fixing would run the same fixers on
    the same evidence: the issue comes at attempt 3, the rollback at 4, and a red rollback
    is not rolled back again: the session ends escalated, each skip in the reasons."""
    config = load_config()
    state = new_state(config)
    state.failures = [failure()]
    state.context = Context(failing_sha="a" * 40, culprit_sha="b" * 40)
    _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, False, config, ["a"])
    d2 = _attempt(state, 2, Strategy.EXTENDED_ANALYSIS, RepairKind.NONE, False, config)
    assert (d2.next_attempt, d2.next_strategy) == (3, Strategy.MANUAL_INTERVENTION)
    assert any("sequential-fixing-with-validation skipped" in r for r in d2.reasons)
    d3 = _attempt(state, 3, Strategy.MANUAL_INTERVENTION, RepairKind.ISSUE, False, config)
    assert (d3.next_attempt, d3.next_strategy) == (4, Strategy.EMERGENCY_ROLLBACK)
    d4 = _attempt(state, 4, Strategy.EMERGENCY_ROLLBACK, RepairKind.REVERT, False, config)
    assert d4.action == "close" and d4.outcome is Outcome.ESCALATED
    assert any("revert was published already" in r for r in d4.reasons)
    # the skips are in the report, on the attempt that decided them
    session.apply_decision(state, d2, NOW)
    assert "sequential-fixing-with-validation skipped" in render_report(state)


def test_without_escalation_the_same_strategy_may_run_again():
    config = load_config({"strategy_escalation": False})
    state = new_state(config)
    state.failures = [failure()]
    d1 = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.NONE, False, config)
    assert d1.next_strategy is Strategy.STANDARD_PARALLEL_FIXING


def test_a_cause_only_a_person_can_fix_goes_straight_to_the_issue_and_ends_there():
    config = load_config()
    state = new_state(config)
    state.failures = [failure("escalate-secret", FailureCategory.CONFIGURATION)]
    d1 = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.NONE, False, config)
    assert d1.next_strategy is Strategy.MANUAL_INTERVENTION
    d2 = _attempt(state, 2, Strategy.MANUAL_INTERVENTION, RepairKind.ISSUE, False, config)
    assert d2.action == "close" and d2.outcome is Outcome.ESCALATED


def test_no_rollback_without_a_culprit_or_when_policy_is_plan():
    config = load_config()
    state = new_state(config)
    state.failures = [failure()]
    d = _attempt(state, 1, Strategy.MANUAL_INTERVENTION, RepairKind.ISSUE, False, config)
    assert d.outcome is Outcome.ESCALATED
    plan = load_config({"rollback_policy": "plan"})
    state = new_state(plan)
    state.failures = [failure()]
    state.context = Context(failing_sha="a" * 40, culprit_sha="b" * 40)
    d = _attempt(state, 1, Strategy.MANUAL_INTERVENTION, RepairKind.ISSUE, False, plan)
    assert d.outcome is Outcome.ESCALATED


def test_last_attempt_closes_failed():
    config = load_config({"max_attempts": 1})
    state = new_state(config)
    d = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, False, config)
    assert d.action == "close" and d.outcome is Outcome.FAILED


def test_rollback_is_preceded_by_the_issue():
    config = load_config(
        {
            "retry_strategy": {
                "attempt_1": Strategy.EMERGENCY_ROLLBACK.value,
                "attempt_2": Strategy.EMERGENCY_ROLLBACK.value,
            }
        }
    )
    state = new_state(config)
    state.failures = [failure()]
    d = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.NONE, False, config)
    assert d.next_strategy is Strategy.MANUAL_INTERVENTION


def test_state_round_trips_through_json_and_report_renders():
    config = load_config()
    state = new_state(config)
    state.failures = [failure()]
    _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.RERUN, True, config)
    session.learn(state, state.failures, "rerun", True)
    again = from_json_obj(SessionState, to_json_obj(state))
    assert again == state
    report = render_report(state)
    for heading in ("## Summary", "## Failures", "## Stage breakdown and fixes", "## Next steps"):
        assert heading in report


def test_session_id_never_carries_a_word_airflow_masks():
    sid = session.session_id_for("local", "acme/secret-token-passwd", "f" * 40, "token")
    for word in ("secret", "token", "passwd", "acme"):
        assert word not in sid


def test_a_flaky_failure_is_not_rolled_back():
    config = load_config()
    state = new_state(config)
    state.failures = [failure(category=FailureCategory.FLAKY)]
    state.context = Context(failing_sha="a" * 40, culprit_sha="b" * 40)
    d = _attempt(state, 1, Strategy.MANUAL_INTERVENTION, RepairKind.ISSUE, False, config)
    assert d.action == "close" and d.outcome is Outcome.ESCALATED
    assert "flaky" in d.reasons[-1]


def test_flaky_rerun_is_repeated_within_the_attempt_then_escalates():
    config = load_config({"failure_threshold": 2, "max_ci_reruns": 3})
    state = new_state(config)
    state.failures = [failure(category=FailureCategory.FLAKY)]
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    session.record_published(state, 1, Published(kind=RepairKind.RERUN, reruns=1), NOW)
    session.record_ci_result(state, 1, False, ["test"], NOW)
    first = session.decide(state, 1, False, config)
    assert first.action == "rewatch" and first.next_attempt == 1
    state.attempt_record(1).published.reruns = 2
    second = session.decide(state, 1, False, config)
    assert second.action == "escalate" and second.next_attempt == 2
    session.start_attempt(state, 2, Strategy.EXTENDED_ANALYSIS, NOW)
    session.record_published(state, 2, Published(kind=RepairKind.RERUN, reruns=1), NOW)
    assert session.decide(state, 2, False, config).action == "escalate"  # 3 re-runs in all


def test_infrastructure_rerun_is_not_repeated_within_the_attempt():
    config = load_config()
    state = new_state(config)
    state.failures = [failure(category=FailureCategory.INFRASTRUCTURE)]
    d = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.RERUN, False, config)
    assert d.action == "escalate"


def test_a_session_whose_repository_is_gone_closes_with_the_reason():
    state = new_state()
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    state.failures = [failure()]
    state.failures[0].notes = ["log: 3 binary line(s) blanked"]
    state.failures[0].repeated_after_rerun = True
    reason = session.not_found_reason("acme/shop", "unknown repository 'acme/shop'")
    assert reason.startswith("acme/shop is not found at the CI provider any more")
    session.close_not_found(state, reason, NOW)
    session.close_not_found(state, reason, NOW)  # a retried task: said once
    assert state.status is SessionStatus.CLOSED and state.outcome is Outcome.FAILED
    assert state.errors == [reason] and state.end_time == NOW
    assert reason in state.attempt_record(1).notes
    report = render_report(state)
    assert f"## Errors\n\n- {reason}" in report
    assert "  - log: 3 binary line(s) blanked" in report
    assert "  - failed again after a CI re-run" in report and "repeated-after-rerun" not in report
    assert "Nothing to do here: the repository or run is gone from the CI provider" in report
    assert "No repair turned CI green" not in report
