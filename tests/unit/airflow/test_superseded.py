"""A session whose failure a newer commit supersedes ends as ``superseded`` when the
monitor looks (before it watches, before it escalates), and its open fix pull request is
closed with a comment saying why; its own fix never supersedes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from cicd_devkit.hostile import HOSTILE, NOW, push_commit
from cicd_devkit.worlds import REPO, start_world

from cicd_orchestrator import session
from cicd_orchestrator.airflow import monitor, state_store, tasks
from cicd_orchestrator.airflow.handoff import WatchTarget, from_xcom
from cicd_orchestrator.airflow.triggers import superseded_state
from cicd_orchestrator.constants import Outcome, RepairKind, SessionStatus, Strategy
from cicd_orchestrator.models import Published, SessionState
from cicd_orchestrator.serde import to_json_obj


@pytest.fixture
def world(tmp_path: Path, variables: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    made = start_world("local", tmp_path / "world")
    variables.configure({"local_ci_root": str(made.local.root)})
    yield made
    made.stop()


def _session_with_a_fix(world: Any) -> tuple[SessionState, int]:
    """A session on the failed head run whose attempt 1 published a fix pull request."""
    config = state_store.load_orchestrator_config()
    run = world.local.get_run(REPO, world.head_run_id)
    state = session.new_session("local", run, config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    fix_sha = push_commit(world, "cicd-fix/main-attempt1", {"FIXED.md": "fixed\n"})
    pr = world.local.open_or_update_pull_request(
        REPO, "cicd-fix/main-attempt1", "main", "Fix CI", "the fix", "<!-- fix -->"
    )
    published = Published(kind=RepairKind.CHANGE, branch=pr.head, sha=fix_sha, pull_request=pr)
    session.record_published(state, 1, published, NOW)
    state_store.save_session(state)
    return state, pr.number


def _load(state: SessionState) -> None:
    params = {"session_id": state.session_id, "attempt": 1}
    monitor.load_target(params=params)


def test_a_newer_commit_on_the_branch_ends_the_session_as_superseded(world: Any) -> None:
    state, number = _session_with_a_fix(world)
    newer = push_commit(world, "main", {"NEWER.md": HOSTILE})
    with pytest.raises(AirflowSkipException, match="superseded"):
        _load(state)
    after = state_store.load_session(state.session_id)
    assert after.status is SessionStatus.CLOSED and after.outcome is Outcome.SUPERSEDED
    assert any(newer[:12] in n for n in after.attempt_history[0].notes)
    pull = world.local.get_pull_request(REPO, number)
    assert pull.state == "closed"
    (comment,) = world.local.list_comments(REPO, number)
    assert "superseded" in comment.body and newer[:12] in comment.body


def test_the_sessions_own_fix_does_not_supersede_it(world: Any) -> None:
    state, number = _session_with_a_fix(world)
    target = monitor.load_target(params={"session_id": state.session_id, "attempt": 1})
    assert target["session_id"] == state.session_id
    after = state_store.load_session(state.session_id)
    assert after.status is not SessionStatus.CLOSED
    assert world.local.get_pull_request(REPO, number).state == "open"


def test_a_red_fix_is_not_escalated_when_a_newer_commit_superseded_the_failure(
    world: Any,
) -> None:
    state, number = _session_with_a_fix(world)
    push_commit(world, "main", {"NEWER.md": "next\n"})
    record = state.attempt_record(1)
    assert record is not None and record.published is not None
    target = {
        "session_id": state.session_id,
        "attempt": 1,
        "provider": "local",
        "config": {"local_ci_root": str(world.local.root)},
        "repository": REPO,
        "head_sha": state.head_sha,
        "published": to_json_obj(record.published),
        "poll_interval": 1.0,
        "timeout": 60.0,
    }
    red = {"done": True, "green": False, "detail": "CI on the fix: failure"}
    out = monitor.decide(target, red, params={})
    assert (out["action"], out["outcome"]) == ("close", "superseded")
    after = state_store.load_session(state.session_id)
    assert after.outcome is Outcome.SUPERSEDED
    assert world.local.get_pull_request(REPO, number).state == "closed"


def test_a_red_fix_escalates_while_nothing_superseded_the_failure(world: Any) -> None:
    state, _ = _session_with_a_fix(world)
    record = state.attempt_record(1)
    assert record is not None and record.published is not None
    target = {
        "session_id": state.session_id,
        "attempt": 1,
        "provider": "local",
        "config": {"local_ci_root": str(world.local.root)},
        "repository": REPO,
        "head_sha": state.head_sha,
        "published": to_json_obj(record.published),
        "poll_interval": 1.0,
        "timeout": 60.0,
    }
    red = {"done": True, "green": False, "detail": "CI on the fix: failure"}
    out = monitor.decide(target, red, params={})
    assert out["action"] == "escalate"
    after = state_store.load_session(state.session_id)
    assert after.status is not SessionStatus.CLOSED


FIRST = "cicd_attempt_1_standard_parallel_fixing"


class _DagRun:
    """The DAG run named after the session of the world's failed run (where it is created)."""

    def __init__(self, world: Any) -> None:
        run = world.local.get_run(REPO, world.head_run_id)
        self.run_id = f"{session.session_id_of_run('local', run)}__attempt1"


def test_no_session_opens_for_a_failure_already_superseded(world: Any) -> None:
    params = {"repository": REPO, "run_id": world.head_run_id, "provider": "local"}
    push_commit(world, "main", {"NEWER.md": "next\n"})
    with pytest.raises(AirflowSkipException, match="no session: a newer commit"):
        tasks.open_session(FIRST, "standard-parallel-fixing", params=params, dag_run=_DagRun(world))
    assert (
        state_store.session_exists(
            session.session_id_of_run("local", world.local.get_run(REPO, world.head_run_id))
        )
        is False
    )


def test_a_session_opens_for_the_newest_failure(world: Any) -> None:
    params = {"repository": REPO, "run_id": world.head_run_id, "provider": "local"}
    tasks.open_session(FIRST, "standard-parallel-fixing", params=params, dag_run=_DagRun(world))
    run = world.local.get_run(REPO, world.head_run_id)
    state = state_store.load_session(session.session_id_of_run("local", run))
    assert session.session_runs(state) == [run.id]


def test_the_watch_ends_early_once_the_failure_is_superseded(world: Any) -> None:
    state, number = _session_with_a_fix(world)
    raw = monitor.load_target(params={"session_id": state.session_id, "attempt": 1})
    watch = from_xcom(WatchTarget, raw)
    assert watch is not None and watch.supersession is not None
    provider = world.local
    assert superseded_state(provider, watch) is None  # its own fix does not end it
    newer = push_commit(world, "main", {"NEWER.md": "next\n"})
    ended = superseded_state(provider, watch)
    assert ended is not None and ended.done and ended.superseded and newer[:12] in ended.detail
    # the trigger's event: the session closes as superseded; nothing is learned of the fix
    out = monitor.decide(raw, to_json_obj(ended), params={})
    assert (out["action"], out["outcome"]) == ("close", "superseded")
    after = state_store.load_session(state.session_id)
    assert after.outcome is Outcome.SUPERSEDED
    record = after.attempt_record(1)
    assert record is not None and record.ci_conclusion is None
    assert after.total_failures == 0
    assert world.local.get_pull_request(REPO, number).state == "closed"
