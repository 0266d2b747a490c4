"""A session whose repository or run is gone from the CI provider always ends: the monitor's
tasks and its trigger close it with the reason; stage tasks do not retry; the hand-off to the
monitor happens whatever publishing did."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from cicd_orchestrator import session
from cicd_orchestrator.airflow import monitor, runtime, state_store, tasks
from cicd_orchestrator.airflow.names import OPEN_TASK
from cicd_orchestrator.airflow.operators import HandoffOperator
from cicd_orchestrator.airflow.triggers import GONE_POLLS, CIStatusTrigger
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.config import load_config, to_mapping
from cicd_orchestrator.constants import Conclusion, Outcome, RunStatus, SessionStatus, Strategy
from cicd_orchestrator.exceptions import ProviderError, UnknownRepositoryError
from cicd_orchestrator.models import CIState, Published, Run, SessionState
from cicd_orchestrator.serde import to_json_obj

NOW = "2026-01-01T00:00:00+00:00"
REPO = "acme/gone"


class FakeTI:
    task_id = "discovery.detect_failures"

    def __init__(self, xcoms: dict[str, Any]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


@pytest.fixture
def store(tmp_path: Path, variables: Any) -> Any:
    """Sessions in (fake) Airflow Variables; the local CI under tmp_path, where the
    repository of the session does not exist (any more)."""
    LocalProvider(tmp_path / "ci")
    variables.configure({"local_ci_root": str(tmp_path / "ci")})
    config = state_store.load_orchestrator_config()
    run = Run(
        id=7,
        repository=REPO,
        workflow="CI",
        workflow_path=".github/workflows/ci.yml",
        head_branch="main",
        head_sha="a" * 40,
        event="push",
        status=RunStatus.COMPLETED,
        conclusion=Conclusion.FAILURE,
        run_number=1,
    )
    state = session.new_session("local", run, config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    state_store.save_session(state)
    return variables


def _only(store: Any) -> SessionState:
    (state,) = store.sessions()
    return state


def _assert_closed_gone(state: SessionState) -> None:
    assert state.status is SessionStatus.CLOSED and state.outcome is Outcome.FAILED
    assert len(state.errors) == 1
    assert state.errors[0].startswith(f"{REPO} is not found at the CI provider any more")
    assert "unknown repository" in state.errors[0]
    assert state.errors[0] in state.report


def test_the_monitor_closes_a_session_whose_repository_is_gone(store):
    state = _only(store)
    context = {"params": {"session_id": state.session_id, "attempt": 1}, "ti": FakeTI({})}
    with pytest.raises(AirflowSkipException, match="closed"):
        monitor.load_target(**context)
    _assert_closed_gone(_only(store))


def test_a_lost_watch_of_a_gone_repository_closes_the_session(store):
    state = _only(store)
    config = {k: v for k, v in to_mapping(load_config()).items() if k != "local_ci_secrets"}
    config["local_ci_root"] = str(state_store.load_orchestrator_config().local_root())
    target = {
        "session_id": state.session_id,
        "attempt": 1,
        "provider": "local",
        "config": config,
        "repository": REPO,
        "head_sha": state.head_sha,
        "published": to_json_obj(Published()),
        "poll_interval": 1.0,
        "timeout": 60.0,
    }
    # the watch failed (no watch_ci XCom): decide asks the provider itself
    out = monitor.decide(target, None, params={})
    assert out["action"] == "close" and out["outcome"] == "failed"
    _assert_closed_gone(_only(store))


def test_a_gone_event_of_the_watch_closes_the_session(store):
    state = _only(store)
    reason = session.not_found_reason(REPO, "unknown repository 'acme/gone'")
    event = {"done": True, "green": False, "gone": True, "detail": reason}
    target = {
        "session_id": state.session_id,
        "attempt": 1,
        "provider": "local",
        "config": {},
        "repository": REPO,
        "head_sha": state.head_sha,
        "published": to_json_obj(Published()),
        "poll_interval": 1.0,
        "timeout": 60.0,
    }
    out = monitor.decide(target, event, params={})
    assert (out["action"], out["outcome"], out["reasons"]) == ("close", "failed", [reason])
    _assert_closed_gone(_only(store))


def _target(**changes: Any) -> dict[str, Any]:
    target = {
        "session_id": "s",
        "attempt": 1,
        "provider": "local",
        "config": {},
        "repository": REPO,
        "head_sha": "a" * 40,
        "published": to_json_obj(Published()),
        "poll_interval": 0.001,
        "timeout": 60.0,
    }
    return {**target, **changes}


def _run_trigger(results: list[CIState]) -> dict[str, Any]:
    trigger = CIStatusTrigger(_target())
    answers = iter(results)
    trigger.poll_once = lambda: next(answers)  # type: ignore[method-assign]

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    # a loop of its own in a thread of its own: an earlier test may leave one running here
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, first_event()).result(timeout=60)


def test_the_watch_ends_when_the_repository_stays_gone():
    gone = CIState(False, False, "acme/gone is not found", gone=True)
    pending = CIState(False, False, "CI is pending")
    event = _run_trigger([gone, pending, *[gone] * GONE_POLLS])
    assert event["done"] and event["gone"] and not event["green"]
    assert event["polls"] == 2 + GONE_POLLS  # a glitch in between starts the count again
    assert event["detail"] == "acme/gone is not found"


def test_the_trigger_says_gone_for_an_unknown_repository(tmp_path):
    LocalProvider(tmp_path / "ci")
    trigger = CIStatusTrigger(_target(config={"local_ci_root": str(tmp_path / "ci")}))
    result = trigger.poll_once()
    assert result.gone and not result.done
    assert result.detail.startswith(f"{REPO} is not found at the CI provider any more")


def test_stage_tasks_do_not_retry_what_is_gone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(runtime, "load_attempt", lambda ticket: ticket)

    def stage(attempt: Any, error: Exception) -> None:
        raise error

    ticket = {"session_id": "s", "attempt": 1, "config": {}}
    with pytest.raises(AirflowFailException, match=r"unknown repository 'x/y' \(not retried"):
        tasks.run_stage(ticket, stage, UnknownRepositoryError("unknown repository 'x/y'"))
    with pytest.raises(ProviderError):  # anything else keeps Airflow's retries
        tasks.run_stage(ticket, stage, ProviderError("GitHub answered 502"))


def test_stage_errors_are_recorded_as_their_message(store):
    state = _only(store)
    ti = FakeTI({OPEN_TASK: {"session_id": state.session_id, "attempt": 1}})
    # as Airflow's task runner calls a callback: the context is the one positional argument
    tasks.record_stage_errors(
        {"ti": ti, "exception": AirflowFailException("unknown repository 'x/y'")}
    )
    tasks.record_stage_errors({"ti": ti, "exception": ValueError("bad value")})
    tasks.record_stage_errors({"ti": ti, "exception": ValueError("bad value")})  # said once
    assert _only(store).errors == [
        "attempt 1, task discovery.detect_failures: unknown repository 'x/y'",
        "attempt 1, task discovery.detect_failures: ValueError: bad value",
    ]


def test_the_hand_off_skips_when_no_session_was_opened():
    handoff = HandoffOperator(task_id="handoff_to_monitor", ticket=None)
    with pytest.raises(AirflowSkipException, match="no session was opened"):
        handoff.execute({"ti": FakeTI({})})


def test_the_watcher_fails_the_attempt_run():
    with pytest.raises(AirflowFailException, match="a task of this attempt failed"):
        tasks.attempt_watcher()


def test_a_retried_open_finds_its_own_session_and_a_duplicate_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_session is retried (an answer of the API server lost after the Variable was
    written): the retry of the same DAG run carries on with the session its first try made;
    another DAG run for the same failed run is a duplicate."""
    from cicd_devkit.worlds import start_world

    made = start_world("local", tmp_path).made
    config = load_config({"local_ci_root": str(tmp_path / "ci")})
    saved: dict[str, SessionState] = {}
    monkeypatch.setattr(state_store, "session_exists", lambda sid: sid in saved)
    monkeypatch.setattr(state_store, "load_session", lambda sid: saved[sid])
    monkeypatch.setattr(state_store, "save_session", lambda s: saved.__setitem__(s.session_id, s))
    monkeypatch.setattr(state_store, "load_orchestrator_config", lambda overrides=None: config)

    class DagRun:
        def __init__(self, run_id: str) -> None:
            self.run_id = run_id

    params = {"repository": made.repo, "run_id": made.head_run.id, "provider": "local"}
    dag_id, home = tasks.session_home(session.session_id_of_run("local", made.head_run), config)
    first = tasks.open_session(
        dag_id, "standard-parallel-fixing", params=params, dag_run=DagRun(home)
    )
    again = tasks.open_session(
        dag_id, "standard-parallel-fixing", params=params, dag_run=DagRun(home)
    )
    assert again == first
    assert len(saved) == 1
    assert len(saved[first["session_id"]].attempt_history) == 1
    with pytest.raises(AirflowSkipException, match="duplicate"):
        tasks.open_session(
            dag_id, "standard-parallel-fixing", params=params, dag_run=DagRun("manual__2")
        )


def test_a_request_in_another_dag_run_hands_the_session_to_its_own_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the DAG run named after the session creates it (Airflow refuses a second run of
    one id): a request in any other run, by hand or through the REST API, triggers that run
    for the failed run it found and creates nothing itself; the tasks after it skip."""
    from airflow.sdk.exceptions import DagRunTriggerException
    from cicd_devkit.worlds import start_world

    made = start_world("local", tmp_path).made
    config = load_config(
        {
            "local_ci_root": str(tmp_path / "ci"),
            "retry_strategy": {"attempt_1": "extended-analysis-with-context"},
        }
    )
    saved: dict[str, SessionState] = {}
    monkeypatch.setattr(state_store, "session_exists", lambda sid: sid in saved)
    monkeypatch.setattr(state_store, "save_session", lambda s: saved.__setitem__(s.session_id, s))
    monkeypatch.setattr(state_store, "load_orchestrator_config", lambda overrides=None: config)

    class DagRun:
        run_id = "manual__2026-12-06"

    params = {"repository": made.repo, "head_sha": made.head_sha, "provider": "local"}
    with pytest.raises(DagRunTriggerException) as raised:
        tasks.open_session(
            "cicd_attempt_1_standard_parallel_fixing",
            "standard-parallel-fixing",
            params=params,
            dag_run=DagRun(),
        )
    sid = session.session_id_of_run("local", made.head_run)
    assert raised.value.trigger_dag_id == "cicd_attempt_2_extended_analysis"
    assert raised.value.dag_run_id == f"{sid}__attempt1"
    assert raised.value.skip_when_already_exists
    assert raised.value.conf["run_id"] == made.head_run.id
    assert raised.value.conf["repository"] == made.repo
    assert saved == {}
    with pytest.raises(AirflowSkipException, match="no session in this DAG run"):
        tasks.ticket_of(None)
