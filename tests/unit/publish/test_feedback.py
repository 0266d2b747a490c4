"""What the status of the failing commit says at each step of a session (pure)."""

from __future__ import annotations

from cicd_orchestrator import session
from cicd_orchestrator.constants import (
    CombinedState,
    Outcome,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import Issue, Published, PullRequest, SessionState
from cicd_orchestrator.publish.feedback import describe

NOW = "2026-01-01T00:00:00+00:00"


def _state() -> SessionState:
    state = SessionState("s", "local", "a/b", 1, "main", "c" * 40)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return state


def test_each_step_of_a_session_in_a_status() -> None:
    state = _state()
    assert describe(state) == (CombinedState.PENDING, "attempt 1 of 5: standard parallel fixing")
    pr = PullRequest(12, "cicd-fix/x", "main", "Fix", "https://h/a/b/pull/12")
    session.fold_publish(state, 1, 0.1, Published(kind=RepairKind.CHANGE, pull_request=pr), NOW)
    assert describe(state)[1] == "attempt 1 of 5: fix published in #12, waiting for CI"
    state.status = SessionStatus.WAITING_TO_ESCALATE
    assert describe(state)[1] == "attempt 1 of 5 did not turn CI green: escalating"
    session.start_attempt(state, 2, Strategy.EXTENDED_ANALYSIS, NOW)
    assert describe(state)[1] == "attempt 2 of 5: extended analysis"
    session.fold_publish(state, 2, 0.1, Published(kind=RepairKind.RERUN, rerun_run_id=1), NOW)
    assert describe(state)[1] == "attempt 2 of 5: failed jobs re-run, waiting for CI"
    session.close(state, Outcome.RERUN_GREEN, NOW, [])
    assert describe(state) == (CombinedState.SUCCESS, "fixed: the failed jobs passed when re-run")


def test_a_hand_over_and_a_failure_are_red() -> None:
    state = _state()
    issue = Issue(3, "t", "https://h/a/b/issues/3")
    session.fold_publish(state, 1, 0.1, Published(kind=RepairKind.ISSUE, issue=issue), NOW)
    assert describe(state)[1] == "attempt 1 of 5: handed over in issue #3"
    session.close(state, Outcome.ESCALATED, NOW, [])
    assert describe(state) == (CombinedState.FAILURE, "handed over in issue #3")
    other = _state()
    session.close(other, Outcome.FAILED, NOW, [])
    assert describe(other) == (
        CombinedState.FAILURE,
        "not repaired after 1 attempt(s): see the session",
    )
