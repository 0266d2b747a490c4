"""Fixes the real CI verifies: when validation says so (by policy), what the gate folds, and
what the monitor does to the draft once CI has spoken (pure)."""

from __future__ import annotations

import datetime

import pytest
from cicd_devkit.builders import NOW, failure, new_state

from cicd_orchestrator import session
from cicd_orchestrator.config import CiVerifiedPolicy, load_config
from cicd_orchestrator.constants import (
    Conclusion,
    DecisionAction,
    FailureCategory,
    Outcome,
    RepairKind,
    Strategy,
)
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.models import (
    CIState,
    JobResult,
    Published,
    PullRequest,
    Repair,
    RepairRound,
    ValidationResult,
)

WINDOWS = "runs-on: windows-latest: no Windows runner on this machine"


def _started():
    state = new_state()
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return state


def _change(fixer: str = "ruff-fix") -> Repair:
    return Repair(fixer, RepairKind.CHANGE, FailureCategory.QUALITY, "lint", jobs=["lint"])


def _job(name: str, passed: bool, why: str | None = None) -> JobResult:
    conclusion = Conclusion.SUCCESS if passed else Conclusion.FAILURE
    return JobResult(name, conclusion, not_replayable=why)


def _validation(*after: JobResult) -> ValidationResult:
    passed = all(r.conclusion is Conclusion.SUCCESS and not r.not_replayable for r in after)
    return ValidationResult(reproduced=True, passed=passed, after=list(after))


@pytest.mark.parametrize(
    ("after", "policy", "verified"),
    [
        ([_job("lint", False, WINDOWS)], CiVerifiedPolicy.WHEN_NOT_REPLAYABLE, True),
        ([_job("lint", True, WINDOWS)], CiVerifiedPolicy.WHEN_NOT_REPLAYABLE, True),
        ([_job("lint", False, WINDOWS), _job("test", False)], "when-not-replayable", False),
        ([_job("lint", True)], CiVerifiedPolicy.WHEN_NOT_REPLAYABLE, False),
        ([_job("lint", True)], CiVerifiedPolicy.ALWAYS, True),
        ([_job("lint", False)], CiVerifiedPolicy.ALWAYS, False),
        ([_job("lint", False, WINDOWS)], CiVerifiedPolicy.NEVER, False),
    ],
)
def test_when_the_real_ci_verifies_a_fix(after, policy, verified):
    result = _validation(*after)
    session.settle_ci_verification(result, CiVerifiedPolicy(policy))
    assert result.ci_verified is verified
    assert not result.ok or policy == CiVerifiedPolicy.ALWAYS or not verified
    assert result.publishable is (result.ok or verified)


def test_a_replayable_regression_withdraws_the_ci_verification():
    state = _started()
    state.attempt_record(1).repairs = [_change()]
    validation = _validation(_job("lint", False, WINDOWS))
    regression = ValidationResult(regression_passed=False, regression=[_job("test", False)])
    assert not session.fold_validation(state, 1, 0.1, validation, regression)
    assert not state.attempt_record(1).validation.ci_verified

    state = _started()
    change = _change()
    state.attempt_record(1).repairs = [change]
    unreplayable = ValidationResult(regression_passed=False, regression=[_job("mac", False, "x")])
    assert not session.fold_validation(state, 1, 0.1, _validation(_job("lint", True)), unreplayable)
    result = state.attempt_record(1).validation
    assert result.ci_verified and result.publishable and not result.ok
    assert result.not_replayable == ["mac: x"] and change.validated is None


def test_the_gate_adds_the_repairs_of_later_rounds():
    state = _started()
    record = state.attempt_record(1)
    first, second = _change("ruff-format"), _change("ruff-fix")
    record.repairs = [first]
    validation = _validation(_job("lint", True))
    validation.regression_passed = True
    validation.rounds = [RepairRound(1, repairs=[first]), RepairRound(2, repairs=[second])]
    stale = ValidationResult(regression_passed=False, notes=["ran with round 1 only"])
    assert session.fold_validation(state, 1, 0.1, validation, stale)
    assert [r.fixer for r in record.repairs] == ["ruff-format", "ruff-fix"]
    assert [r.number for r in record.rounds] == [1, 2] and record.validation.regression_passed
    assert all(r.validated for r in record.repairs)
    assert session.fold_validation(state, 1, 0.1, validation, stale)  # a retried gate
    assert len(record.repairs) == 2


def _published(verified: bool) -> Published:
    pr = PullRequest(7, "cicd-fix/x", "main", "Fix", "local://pr/7", draft=verified)
    return Published(RepairKind.CHANGE, "cicd-fix/x", "abc", pr, ci_verified=verified)


def test_what_ci_s_verdict_does_to_the_draft():
    green, red = CIState(True, True, "green"), CIState(True, False, "red", ["lint"])
    no_ci = CIState(True, False, "no run", no_ci=True)
    assert session.follow_up(_published(True), green) is session.DraftFollowUp.READY
    assert session.follow_up(_published(True), red) is session.DraftFollowUp.CLOSE
    assert session.follow_up(_published(False), green) is None
    assert session.follow_up(_published(False), red) is None
    assert session.follow_up(_published(False), no_ci) is session.DraftFollowUp.NO_CI
    assert session.follow_up(_published(True), CIState(False, False, "running")) is None
    assert session.follow_up(Published(), green) is None
    gone = CIState(True, False, "gone", gone=True)
    assert session.follow_up(_published(True), gone) is None


def test_a_fix_without_ci_escalates_at_once():
    state = _started()
    state.failures = [failure(category=FailureCategory.QUALITY, job="lint")]
    session.fold_publish(state, 1, 0.2, _published(False), NOW)
    ci = CIState(True, False, "no workflow runs on a push of `cicd-fix/x`", no_ci=True)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    decision = session.conclude(state, 1, ci, load_config(), now)
    assert decision.action is DecisionAction.ESCALATE and decision.next_attempt == 2
    assert ci.detail in state.attempt_record(1).notes

    state = _started()
    session.fold_publish(state, 1, 0.2, _published(True), NOW)
    decision = session.conclude(state, 1, CIState(True, True, "green"), load_config(), now)
    assert decision.action is DecisionAction.CLOSE and decision.outcome is Outcome.FIXED


def test_the_configuration_keys():
    config = load_config()
    assert config.ci_verified_fixes is CiVerifiedPolicy.WHEN_NOT_REPLAYABLE
    assert config.repair_rounds == 3 and config.ci_no_run_grace == 300
    assert load_config({"ci_verified_fixes": "always"}).ci_verified_fixes is CiVerifiedPolicy.ALWAYS
    for bad in ({"ci_verified_fixes": "sometimes"}, {"repair_rounds": 0}, {"ci_no_run_grace": -1}):
        with pytest.raises(ConfigError):
            load_config(bad)
    with pytest.raises(ConfigError, match="only by the deployment"):
        config.with_run_overrides({"ci_verified_fixes": "never"})
