"""The settings at the Airflow glue: the entry points (webhook, sweep) start the DAG of
``retry_strategy.attempt_1``; with ``monitor_until_green`` false the monitor closes the session
instead of watching CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from cicd_orchestrator import session
from cicd_orchestrator.airflow import monitor, plugin_app, runtime, state_store
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import (
    CombinedState,
    Conclusion,
    Outcome,
    Priority,
    RepairKind,
    RunStatus,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import Published, Run
from cicd_orchestrator.stages import sweep as sweep_stage

NOW = "2026-01-01T00:00:00+00:00"


def _run(repository: str = "acme/shop") -> Run:
    return Run(
        id=7,
        repository=repository,
        workflow="CI",
        workflow_path=".github/workflows/ci.yml",
        head_branch="main",
        head_sha="a" * 40,
        event="push",
        status=RunStatus.COMPLETED,
        conclusion=Conclusion.FAILURE,
        run_number=1,
    )


@pytest.mark.parametrize(
    ("config", "dag_id"),
    [
        (None, "cicd_attempt_1_standard_parallel_fixing"),
        (
            {"retry_strategy": {"attempt_1": "extended-analysis-with-context"}},
            "cicd_attempt_2_extended_analysis",
        ),
    ],
)
def test_the_webhook_starts_the_dag_of_the_configured_first_strategy(monkeypatch, config, dag_id):
    values = {CONFIG_VARIABLE: json.dumps(config)} if config else {}
    monkeypatch.setattr(plugin_app, "_variable", values.get)
    assert plugin_app.first_attempt_dag_id() == dag_id


@pytest.mark.parametrize(
    ("strategy", "dag_id"),
    [
        ("standard-parallel-fixing", "cicd_attempt_1_standard_parallel_fixing"),
        ("sequential-fixing-with-validation", "cicd_attempt_3_sequential_fixing"),
    ],
)
def test_the_sweep_starts_the_dag_of_the_configured_first_strategy(
    monkeypatch, variables, strategy, dag_id
):
    variables.configure({"retry_strategy": {"attempt_1": strategy}})
    item = sweep_stage.SweepItem("acme/shop", 7, "local", "cicd-local-run7-x", Priority.MEDIUM)
    monkeypatch.setattr(monitor, "find_new_failures", lambda *args: [item])
    (kwargs,) = monitor.sweep()
    assert kwargs["trigger_dag_id"] == dag_id
    assert kwargs["trigger_run_id"] == "cicd-local-run7-x__attempt1"
    assert kwargs["conf"] == {"repository": "acme/shop", "run_id": 7, "provider": "local"}


def _waiting(variables: Any, tmp_path: Path, config: dict[str, Any], kind: RepairKind) -> str:
    LocalProvider(tmp_path / "ci")
    variables.configure({"local_ci_root": str(tmp_path / "ci"), **config})
    state = session.new_session("local", _run(), state_store.load_orchestrator_config(), NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    session.record_published(state, 1, Published(kind=kind, sha="c" * 40), NOW)
    state_store.save_session(state)
    return state.session_id


class StatusRecorder:
    """A provider that records the commit statuses set (and knows nothing else)."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str, CombinedState, str]] = []

    def set_commit_status(self, repo: str, sha: str, state: CombinedState, text: str) -> None:
        self.statuses.append((repo, sha, state, text))


def test_without_monitoring_the_monitor_closes_the_session_it_was_handed(
    monkeypatch, variables, tmp_path
):
    sid = _waiting(variables, tmp_path, {"monitor_until_green": False}, RepairKind.CHANGE)
    provider = StatusRecorder()
    monkeypatch.setattr(runtime, "provider_for", lambda name, config: provider)
    context = {"params": {"session_id": sid, "attempt": 1}}
    with pytest.raises(AirflowSkipException, match="closed: published"):
        monitor.load_target(**context)
    state = state_store.load_session(sid)
    assert state.status is SessionStatus.CLOSED and state.outcome is Outcome.PUBLISHED
    assert "monitor_until_green is false" in state.report
    # the orchestrator's own status on the fix does not stay pending for ever
    ((repo, sha, status, text),) = provider.statuses
    assert (repo, sha, status) == ("acme/shop", "c" * 40, CombinedState.SUCCESS)
    assert "CI not watched" in text


def test_a_run_may_switch_monitoring_off_for_its_session(variables, tmp_path):
    sid = _waiting(variables, tmp_path, {}, RepairKind.REVERT)
    params = {"session_id": sid, "attempt": 1, "config": {"monitor_until_green": False}}
    with pytest.raises(AirflowSkipException):
        monitor.load_target(params=params)
    assert state_store.load_session(sid).outcome is Outcome.PUBLISHED
