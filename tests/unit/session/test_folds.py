"""What the gates fold into the session, and the monitor's conclusion, as pure functions."""

from __future__ import annotations

import datetime

from cicd_devkit.builders import NOW, failure, new_state

from cicd_orchestrator import session
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import (
    AttemptStatus,
    Conclusion,
    DecisionAction,
    FailureCategory,
    Outcome,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import (
    CIState,
    Context,
    Culprit,
    DependencyMap,
    Failure,
    FixerResult,
    Published,
    Repair,
    ValidationResult,
)


def _failure(job: str, category: FailureCategory = FailureCategory.TEST) -> Failure:
    return failure(category=category, job=job)


def _started():
    state = new_state()
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return state


def test_discovery_keeps_a_known_culprit_and_takes_the_bisection_s():
    state = _started()
    state.context = Context(failing_sha="a" * 40, culprit_sha="c" * 40, culprit_reason="earlier")
    session.fold_discovery(state, 1, 1.5, [_failure("test")], Context(failing_sha="a" * 40))
    assert state.context.culprit_sha == "c" * 40 and state.context.culprit_reason == "earlier"
    culprit = Culprit("d" * 40, "bisect over 3 commits", ["x: fail"])
    env = ["environment differs: python 3.12", "environment differs: python 3.12"]
    session.fold_discovery(state, 1, 2.0, [_failure("test")], None, culprit, env)
    assert state.context.culprit_sha == "d" * 40 and state.context.bisect_log == ["x: fail"]
    assert state.context.notes == ["environment differs: python 3.12"]
    assert state.attempt_record(1).stage_timings["discovery"] == 2.0
    assert state.completed_stages == ["attempt_1.discovery"]


def test_classification_marks_symptoms_and_names_the_categories():
    state = _started()
    state.failures = [_failure("build", FailureCategory.BUILD), _failure("test")]
    mapping = DependencyMap(root_causes=["build"], symptoms={"test": "build"})
    categories = session.fold_classification(state, 1, 0.5, None, mapping)
    assert categories == ["build", "test"]
    test = next(f for f in state.failures if f.job == "test")
    assert not test.root_cause and test.symptom_of == "build"


def test_fixing_says_why_nothing_applies_and_takes_what_fixers_found():
    state = _started()
    state.failures = [_failure("test")]
    session.fold_fixing(state, 1, 0.1, [], [FixerResult("x", True, unrepaired=["x: no"])], [])
    assert state.attempt_record(1).unrepaired == ["x: no", "no repair applies to test (test)"]
    flaky = Repair(
        "flaky-test",
        RepairKind.RERUN,
        FailureCategory.FLAKY,
        "re-run",
        jobs=["test"],
        evidence=["passed 2 of 5 local re-runs"],
    )
    session.fold_fixing(state, 1, 0.1, [flaky], [], [])
    assert state.failures[0].category is FailureCategory.FLAKY
    assert state.failures[0].notes == ["passed 2 of 5 local re-runs"]


def test_validation_marks_the_repairs():
    state = _started()
    record = state.attempt_record(1)
    change = Repair("ruff-fix", RepairKind.CHANGE, FailureCategory.QUALITY, "lint")
    issue = Repair("issue", RepairKind.ISSUE, FailureCategory.QUALITY, "person")
    record.repairs = [change, issue]
    assert not session.fold_validation(state, 1, 0.1, None, None)
    assert record.validation.notes == ["validation did not run (see its task log)"]
    assert (change.validated, issue.validated) == (False, True)
    change.validated = None
    ok = ValidationResult(reproduced=True, passed=True)
    regression = ValidationResult(regression_passed=True, notes=["others pass"])
    assert session.fold_validation(state, 1, 0.1, ok, regression)
    assert change.validated and record.validation.notes == ["others pass"]


def test_conclude_escalates_with_the_delay_and_learns():
    config = load_config({"delay_scale": 0.5})
    state = _started()
    state.failures = [_failure("test")]
    session.fold_publish(state, 1, 0.2, Published(), NOW)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    ci = CIState(True, False, "CI on abc: failure", ["test"])
    decision = session.conclude(state, 1, ci, config, now)
    assert decision.action is DecisionAction.ESCALATE and decision.next_attempt == 2
    assert decision.retry_at == (now + datetime.timedelta(seconds=15)).isoformat()
    record = state.attempt_record(1)
    assert record.ci_conclusion is Conclusion.FAILURE and record.status is AttemptStatus.CI_FAILED
    assert "CI on abc: failure" in record.notes
    assert state.status is SessionStatus.WAITING_TO_ESCALATE
    assert state.next_retry_time == decision.retry_at
    assert [p.signature for p in state.learned_patterns] == ["sig"]


def test_conclude_closes_a_session_whose_repository_is_gone():
    state = _started()
    session.fold_publish(state, 1, 0.2, Published(), NOW)
    ci = CIState(False, False, "acme/shop is not found any more", gone=True)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    decision = session.conclude(state, 1, ci, load_config(), now)
    assert decision.action is DecisionAction.CLOSE and decision.outcome is Outcome.FAILED
    assert state.status is SessionStatus.CLOSED
    assert state.errors == ["acme/shop is not found any more"]
