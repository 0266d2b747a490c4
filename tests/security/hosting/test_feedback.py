"""Feedback where people look, on the local provider and on the GitHub and GitLab providers
against their servers: the status of the failing commit says what the session does (and
never counts in the commit's CI state), the report comment is edited in place at every step
(never a comment somebody else wrote with a copy of its marker), and the escalation issue is
told about attempt 5 and the session's end."""

from __future__ import annotations

import pytest
from cicd_devkit.hostile import HOSTILE, StartWorld, attempt_on, fix
from cicd_devkit.worlds import REPO, World

from cicd_orchestrator import session
from cicd_orchestrator.constants import (
    SESSION_STATUS_CONTEXT,
    CombinedState,
    Outcome,
    RepairKind,
    Strategy,
)
from cicd_orchestrator.publish.change import publish_change
from cicd_orchestrator.publish.feedback import Audience, post_feedback
from cicd_orchestrator.publish.issue import publish_issue
from cicd_orchestrator.publish.markers import key_of, marker

HOSTINGS = ("local", "github", "gitlab")
BASE = "https://airflow.example.com"
NOW = "2026-01-01T00:10:00+00:00"


def _session_status(world: World, sha: str):
    found = [
        s for s in world.local.commit_statuses(REPO, sha) if s.context == SESSION_STATUS_CONTEXT
    ]
    assert len(found) == 1, found
    return found[0]


def _ours(world: World, number: int, login: str) -> list[str]:
    return [c.body for c in world.local.list_comments(REPO, number) if c.author == login]


@pytest.mark.parametrize("kind", HOSTINGS)
def test_the_failing_commit_and_the_report_follow_the_session(start: StartWorld, kind: str):
    world = start(kind)
    attempt = attempt_on(world)
    state, provider = attempt.state, attempt.provider
    audience = Audience(provider, key_of(attempt), BASE)

    assert post_feedback(audience, state) == []
    status = _session_status(world, world.head_sha)
    assert status.state is CombinedState.PENDING
    assert status.description == "attempt 1 of 5: standard parallel fixing"
    assert status.target_url == f"{BASE}/cicd/sessions/{state.session_id}"

    published = publish_change(attempt, [fix()], "report: in progress")
    session.fold_publish(state, 1, 0.1, published, NOW)
    pr = published.pull_request
    # somebody else writes a comment carrying a copy of the report's signed marker
    mark = marker(key_of(attempt), state.session_id, "report", 1)
    mallory = world.as_user("mallory")
    mallory.comment(REPO, pr.number, f"{mark}\nmallory's text {HOSTILE}", mark)

    assert post_feedback(audience, state) == []
    status = _session_status(world, world.head_sha)
    if kind != "gitlab":  # GitLab keeps a status' text until its state changes (400 otherwise)
        assert (
            status.description == f"attempt 1 of 5: fix published in #{pr.number}, waiting for CI"
        )

    session.record_ci_result(state, 1, True, [], NOW)
    session.close(state, Outcome.FIXED, NOW, ["CI is green on the fix"])
    assert post_feedback(audience, state) == []
    assert post_feedback(audience, state) == []  # a retried task edits, never adds

    status = _session_status(world, world.head_sha)
    assert status.state is CombinedState.SUCCESS
    assert status.description == f"fixed: the fix in #{pr.number} is green"
    reports = _ours(world, pr.number, provider.identity())
    assert len(reports) == 1
    assert "Outcome: **fixed**" in reports[0] and "report: in progress" not in reports[0]
    assert "Stages completed:" in reports[0] and "Trigger: push" in reports[0]
    theirs = _ours(world, pr.number, "mallory")
    assert len(theirs) == 1 and "mallory's text" in theirs[0]


@pytest.mark.parametrize("kind", HOSTINGS)
def test_the_session_status_never_counts_in_the_ci_state(start: StartWorld, kind: str):
    world = start(kind)
    provider = world.provider()
    before = provider.ref_status(REPO, world.head_sha).state
    assert before is CombinedState.FAILURE  # the failed run of the head
    for state in (CombinedState.PENDING, CombinedState.SUCCESS):
        provider.set_commit_status(
            REPO, world.head_sha, state, "attempt 2 of 5", context=SESSION_STATUS_CONTEXT
        )
        assert _session_status(world, world.head_sha).state is state
        assert provider.ref_status(REPO, world.head_sha).state is before


@pytest.mark.parametrize("kind", ["local", "github"])
def test_the_escalation_issue_hears_of_attempt_5_and_the_end(start: StartWorld, kind: str):
    world = start(kind)
    attempt = attempt_on(world, number=4)
    state, provider = attempt.state, attempt.provider
    audience = Audience(provider, key_of(attempt), BASE)
    published = publish_issue(attempt)
    assert published.kind is RepairKind.ISSUE and published.issue is not None
    session.fold_publish(state, 4, 0.1, published, NOW)
    number = published.issue.number
    assert post_feedback(audience, state) == []
    assert _ours(world, number, provider.identity()) == []  # nothing new yet
    assert _session_status(world, world.head_sha).description == (
        f"attempt 4 of 5: handed over in issue #{number}"
    )

    session.start_attempt(state, 5, Strategy.EMERGENCY_ROLLBACK, NOW)
    post_feedback(audience, state)
    post_feedback(audience, state)
    updates = _ours(world, number, provider.identity())
    assert len(updates) == 1 and "attempt 5 of 5" in updates[0]

    session.close(state, Outcome.ESCALATED, NOW, ["no attempt left"])
    post_feedback(audience, state)
    post_feedback(audience, state)
    updates = _ours(world, number, provider.identity())
    assert len(updates) == 2 and "The session is closed: **escalated**" in updates[1]
    assert f"{BASE}/cicd/sessions/{state.session_id}" in updates[1]
    status = _session_status(world, world.head_sha)
    assert status.state is CombinedState.FAILURE
    assert status.description == f"handed over in issue #{number}"


def test_without_a_marker_key_only_the_status_is_kept_current(start: StartWorld):
    world = start("local")
    attempt = attempt_on(world)
    state = attempt.state
    published = publish_change(attempt, [fix()], "report")
    session.fold_publish(state, 1, 0.1, published, NOW)
    before = world.local.list_comments(REPO, published.pull_request.number)
    notes = post_feedback(Audience(attempt.provider, None, None), state)
    assert notes and "no marker key" in notes[0]
    assert world.local.list_comments(REPO, published.pull_request.number) == before
    assert _session_status(world, world.head_sha).target_url == ""
