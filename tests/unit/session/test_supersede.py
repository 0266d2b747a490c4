"""When a session's failure is moot: a newer commit on the branch, or the failed run green."""

from __future__ import annotations

import dataclasses

from cicd_devkit import builders

from cicd_orchestrator import session
from cicd_orchestrator.constants import (
    Conclusion,
    Outcome,
    RepairKind,
    RunStatus,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import Published, Run

NOW = builders.NOW


def _run(run_id: int, sha: str, conclusion: Conclusion | None = Conclusion.FAILURE, **kw) -> Run:
    run = dataclasses.replace(builders.failed_run(run_id), head_sha=sha, **kw)
    if conclusion is None:
        run.status, run.conclusion = RunStatus.IN_PROGRESS, None
    else:
        run.conclusion = conclusion
    return run


FAILED = _run(7, "a" * 40)


def _started():
    state = builders.new_state()
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return state


def test_a_newer_run_of_the_workflow_on_a_newer_commit_supersedes():
    newer = _run(9, "b" * 40, None)  # still running: the newer commit is what matters
    why = session.superseded_failure(FAILED, [newer, FAILED])
    assert why and "newer commit bbbbbbbbbbbb" in why


def test_the_failure_is_not_superseded_while_it_is_the_newest():
    older_green = _run(5, "0" * 40, Conclusion.SUCCESS)
    assert session.superseded_failure(FAILED, [FAILED, older_green]) is None


def test_a_newer_run_of_another_workflow_or_branch_does_not_supersede():
    other_workflow = _run(9, "b" * 40, workflow_path=".github/workflows/docs.yml")
    other_branch = _run(10, "c" * 40, head_branch="feature")
    assert session.superseded_failure(FAILED, [other_workflow, other_branch, FAILED]) is None


def test_a_newer_run_of_the_same_commit_does_not_supersede():
    # the pull_request run of the same commit, listed after the push run
    same_commit = _run(9, "a" * 40, event="pull_request")
    assert session.superseded_failure(FAILED, [same_commit, FAILED]) is None


def test_the_failed_run_green_by_itself_supersedes():
    rerun_green = dataclasses.replace(FAILED, conclusion=Conclusion.SUCCESS, run_attempt=2)
    why = session.superseded_failure(rerun_green, [rerun_green])
    assert why and "went green by itself" in why


def test_the_sessions_own_fix_commit_on_the_branch_never_supersedes():
    state = _started()
    fix = _run(9, "f" * 40)  # the fix pushed onto a pull request's own branch
    state.attempt_history[0].published = Published(kind=RepairKind.CHANGE, sha="f" * 40)
    assert session.superseded_session(state, [fix, FAILED]) is None
    after = _run(10, "e" * 40)  # someone pushed on top of the fix
    assert session.superseded_session(state, [after, fix, FAILED])


def test_the_sessions_own_rerun_going_green_is_its_success_not_a_supersession():
    state = _started()
    state.attempt_history[0].published = Published(kind=RepairKind.RERUN, rerun_run_id=7)
    green = dataclasses.replace(FAILED, conclusion=Conclusion.SUCCESS, run_attempt=2)
    assert session.superseded_session(state, [green]) is None


def test_a_joined_workflow_superseded_supersedes_the_session():
    state = builders.new_state()
    tests = _run(8, "a" * 40, workflow_path=".github/workflows/tests.yml")
    session.join_run(state, tests)
    newer_tests = _run(12, "b" * 40, workflow_path=".github/workflows/tests.yml")
    assert session.superseded_session(state, [newer_tests, tests, FAILED])


def test_closing_as_superseded():
    state = _started()
    session.close_superseded_session(state, "a newer commit", NOW)
    assert state.status is SessionStatus.CLOSED
    assert state.outcome is Outcome.SUPERSEDED
    assert state.extra[session.CLOSED_BECAUSE] == session.SUPERSEDED
    assert "a newer commit" in state.attempt_history[0].notes
