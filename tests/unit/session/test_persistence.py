"""The seed's orchestration settings in the monitor's decisions: persistence_mode,
failure_threshold, monitor_until_green and the configured strategy of each attempt."""

from __future__ import annotations

import pytest
from cicd_devkit import builders

from cicd_orchestrator import session
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import (
    DecisionAction,
    FailureCategory,
    Outcome,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import Issue, Published, Repair
from cicd_orchestrator.report import render_report

NOW = builders.NOW


def _attempt(state, n, strategy, kind, signatures, config, reruns=0):
    """Attempt ``n`` published ``kind`` (two changes, so that the sequential strategy has
    something to add) and CI failed in the jobs ``signatures``."""
    session.start_attempt(state, n, strategy, NOW)
    state.attempt_record(n).repairs.extend(
        Repair(fixer=f, kind=RepairKind.CHANGE, category=FailureCategory.TEST, description=f)
        for f in ("ruff-fix", "add-requirement")
    )
    published = Published(kind=kind, reruns=reruns)
    if kind is RepairKind.ISSUE:
        published.issue = Issue(number=1, title="t", url="local://acme/shop/issues/1")
    session.record_published(state, n, published, NOW)
    session.record_ci_result(state, n, False, signatures, NOW)
    return session.decide(state, n, False, config)


def _state(config, category=FailureCategory.TEST):
    state = builders.new_state(config)
    state.failures = [builders.failure(category=category)]
    return state


# --------------------------------------------------------------------------- persistence_mode
def test_oneshot_makes_one_attempt_and_closes_on_the_first_red_verdict():
    config = load_config({"persistence_mode": "oneshot"})
    state = _state(config)
    assert (state.persistence_mode, state.max_attempts) == ("oneshot", 1)
    d = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, ["lint"], config)
    assert d.action is DecisionAction.CLOSE and d.outcome is Outcome.FAILED
    assert "persistence_mode is oneshot" in d.reasons[-1]


def test_oneshot_takes_a_single_verdict_even_for_a_flaky_rerun():
    config = load_config({"persistence_mode": "oneshot"})
    state = _state(config, FailureCategory.FLAKY)
    d = _attempt(
        state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.RERUN, ["test"], config, reruns=1
    )
    assert d.action is DecisionAction.CLOSE


def test_continuous_escalates_when_an_attempt_fails_as_the_one_before():
    config = load_config()
    state = _state(config)
    _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, ["lint"], config)
    d = _attempt(state, 2, Strategy.EXTENDED_ANALYSIS, RepairKind.CHANGE, ["lint"], config)
    assert d.action is DecisionAction.ESCALATE and d.next_attempt == 3
    assert d.next_strategy is Strategy.SEQUENTIAL_FIXING
    assert not any("no progress" in r for r in d.reasons)


def test_adaptive_hands_over_to_a_person_when_an_attempt_makes_no_progress():
    config = load_config({"persistence_mode": "adaptive"})
    state = _state(config)
    first = _attempt(
        state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, ["lint"], config
    )
    assert first.next_strategy is Strategy.EXTENDED_ANALYSIS  # nothing to compare yet
    d = _attempt(state, 2, Strategy.EXTENDED_ANALYSIS, RepairKind.CHANGE, ["lint"], config)
    assert d.action is DecisionAction.ESCALATE
    assert d.next_strategy is Strategy.MANUAL_INTERVENTION
    assert any("failed as attempt 1 did (lint): no progress" in r for r in d.reasons)


def test_adaptive_goes_on_while_the_failures_change():
    config = load_config({"persistence_mode": "adaptive"})
    state = _state(config)
    _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, ["lint"], config)
    d = _attempt(state, 2, Strategy.EXTENDED_ANALYSIS, RepairKind.CHANGE, ["tests"], config)
    assert d.action is DecisionAction.ESCALATE
    assert d.next_strategy is Strategy.SEQUENTIAL_FIXING
    assert not any("no progress" in r for r in d.reasons)


def test_adaptive_closes_escalated_when_the_issue_is_open_and_nothing_changes():
    config = load_config({"persistence_mode": "adaptive", "max_attempts": 6})
    state = _state(config)
    _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.ISSUE, [], config)
    state.failures[0].category = FailureCategory.TEST
    _attempt(state, 2, Strategy.EXTENDED_ANALYSIS, RepairKind.CHANGE, ["lint"], config)
    d = _attempt(state, 3, Strategy.SEQUENTIAL_FIXING, RepairKind.CHANGE, ["lint"], config)
    assert d.action is DecisionAction.CLOSE and d.outcome is Outcome.ESCALATED
    assert "no progress" in d.reasons[-1]


# --------------------------------------------------------------------------- failure_threshold
@pytest.mark.parametrize("threshold", [1, 2, 3])
def test_a_flaky_rerun_escalates_after_failure_threshold_red_verdicts(threshold):
    config = load_config({"failure_threshold": threshold, "max_ci_reruns": 10})
    state = _state(config, FailureCategory.FLAKY)
    actions = []
    for verdict in range(1, threshold + 1):
        if verdict == 1:
            d = _attempt(
                state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.RERUN, ["t"], config, 1
            )
        else:  # the monitor re-ran the failed jobs: one more verdict of the same attempt
            state.attempt_record(1).published.reruns = verdict
            session.record_ci_result(state, 1, False, ["t"], NOW)
            d = session.decide(state, 1, False, config)
        actions.append(d.action)
    assert actions == [DecisionAction.REWATCH] * (threshold - 1) + [DecisionAction.ESCALATE]
    assert state.consecutive_failures == threshold


def test_max_ci_reruns_still_bounds_the_session():
    config = load_config({"failure_threshold": 5, "max_ci_reruns": 1})
    state = _state(config, FailureCategory.FLAKY)
    d = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.RERUN, ["t"], config, 1)
    assert d.action is DecisionAction.ESCALATE


# --------------------------------------------------------------------------- monitor_until_green
def _published(config, kind):
    state = _state(config)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    published = Published(kind=kind, sha="c" * 40)
    if kind is RepairKind.ISSUE:
        published.issue = Issue(number=1, title="t", url="local://acme/shop/issues/1")
    session.record_published(state, 1, published, NOW)
    return state


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        (RepairKind.CHANGE, Outcome.PUBLISHED),
        (RepairKind.REVERT, Outcome.PUBLISHED),
        (RepairKind.RERUN, Outcome.PUBLISHED),
        (RepairKind.ISSUE, Outcome.ESCALATED),
    ],
)
def test_without_monitoring_the_session_ends_once_the_repair_is_published(kind, outcome):
    config = load_config({"monitor_until_green": False})
    state = _published(config, kind)
    d = session.close_unwatched(state, 1, config, NOW)
    assert d is not None and d.outcome is outcome
    assert state.status is SessionStatus.CLOSED and state.outcome is outcome
    assert not state.monitoring_active and not state.green_threshold_met
    assert "monitor_until_green is false" in " ".join(state.attempt_record(1).notes)
    if outcome is Outcome.PUBLISHED:  # the next step says CI is not watched
        assert "the orchestrator does not" in render_report(state)


def test_without_monitoring_an_attempt_that_published_nothing_still_escalates():
    config = load_config({"monitor_until_green": False})
    state = _published(config, RepairKind.NONE)
    assert session.close_unwatched(state, 1, config, NOW) is None
    assert state.status is SessionStatus.WAITING_FOR_CI


def test_with_monitoring_ci_is_watched():
    config = load_config()
    state = _published(config, RepairKind.CHANGE)
    assert session.close_unwatched(state, 1, config, NOW) is None
    assert state.status is SessionStatus.WAITING_FOR_CI


# --------------------------------------------------------------------------- retry_strategy
def test_escalation_follows_the_configured_strategy_of_each_attempt():
    config = load_config({"retry_strategy": {"attempt_2": "manual-intervention-preparation"}})
    state = _state(config)
    d = _attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, RepairKind.CHANGE, ["x"], config)
    assert d.next_attempt == 2 and d.next_strategy is Strategy.MANUAL_INTERVENTION
