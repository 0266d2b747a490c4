"""The sweep DAG opens one session per new failed run of the watched branches, never two, on
the DAG of the strategy ``retry_strategy.attempt_1`` names."""

from __future__ import annotations

import time

import pytest
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import EXAMPLES, TEST_CONFIG
from cicd_devkit.scenarios import materialize

from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.session import session_id_of_run
from cicd_orchestrator.strategies import SWEEP_DAG_ID, dag_id_for

pytestmark = pytest.mark.integration


def _sweep_once(env) -> None:
    resp = env.client.trigger(SWEEP_DAG_ID, {})
    assert resp.status_code in (200, 201), resp.text
    run_id = resp.json()["dag_run_id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        run = next(r for r in env.client.dag_runs(SWEEP_DAG_ID) if r["dag_run_id"] == run_id)
        if run["state"] in ("success", "failed"):
            assert run["state"] == "success"
            return
        time.sleep(2)
    raise AssertionError("the sweep did not finish")


def test_sweep_opens_a_session_for_a_watched_failure_once(airflow_env):
    made = materialize(EXAMPLES / "lint-failure", airflow_env.provider, "sweep/shipping")
    sessions.configure(
        airflow_env.client,
        {
            **TEST_CONFIG,
            "watched_repositories": [
                {"repository": "sweep/shipping", "branches": ["main"]},
                {"repository": "sweep/vanished", "branches": ["main"]},
            ],
            "retry_strategy": {"attempt_1": "extended-analysis-with-context"},
        },
    )
    try:
        _sweep_once(airflow_env)
        sid = session_id_of_run("local", made.head_run)
        state = airflow_env.wait(sid)
        first = state.attempt_history[0]
        assert (first.strategy.value, first.dag_id) == (
            "extended-analysis-with-context",
            dag_id_for(Strategy.EXTENDED_ANALYSIS),
        )
        assert state.outcome.value == "fixed"
        _sweep_once(airflow_env)  # the same failed run is not opened again
        runs = [
            r
            for r in airflow_env.client.dag_runs(dag_id_for(Strategy.EXTENDED_ANALYSIS))
            if r["conf"].get("repository") == "sweep/shipping"
        ]
        assert len(runs) == 1
        assert not [
            r
            for r in airflow_env.client.dag_runs(sessions.FIRST_DAG)
            if r["conf"].get("repository") == "sweep/shipping"
        ]
    finally:
        sessions.configure(airflow_env.client, TEST_CONFIG)
