"""The maintenance DAG in the real Airflow: through the Task SDK it archives an old closed
session into a gzipped JSON-lines file and deletes its Variable; an old open session stays."""

from __future__ import annotations

import datetime
import json
import secrets
import time

import pytest
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import TEST_CONFIG
from cicd_devkit.builders import new_state

from cicd_orchestrator.airflow.maintenance import read_archive
from cicd_orchestrator.airflow.names import MAINTENANCE_DAG_ID, SESSION_PREFIX
from cicd_orchestrator.constants import Outcome, SessionStatus
from cicd_orchestrator.serde import to_json_obj

pytestmark = pytest.mark.integration


def _store(client, closed: bool, days_ago: int) -> str:
    state = new_state()
    state.session_id = f"it-retention-{secrets.token_hex(4)}"
    when = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days_ago)
    state.start_time = when.isoformat()
    if closed:
        state.status, state.outcome = SessionStatus.CLOSED, Outcome.FIXED
        state.end_time = (when + datetime.timedelta(minutes=20)).isoformat()
    client.set_variable(SESSION_PREFIX + state.session_id, json.dumps(to_json_obj(state)))
    return state.session_id


def _finished(client, run_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/dags/{MAINTENANCE_DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(3)
    raise AssertionError(f"{MAINTENANCE_DAG_ID} run {run_id} did not finish in {timeout}s")


@pytest.mark.timeout(900)
def test_the_maintenance_dag_archives_old_closed_sessions(airflow_env):
    client = airflow_env.client
    archive = airflow_env.stack.home / "retention-archive"
    config = {**TEST_CONFIG, "session_retention_days": 30, "session_archive_dir": str(archive)}
    sessions.configure(client, config)
    old = _store(client, closed=True, days_ago=60)
    still_open = _store(client, closed=False, days_ago=60)
    recent = _store(client, closed=True, days_ago=2)
    try:
        run_id = f"it-maintenance-{secrets.token_hex(4)}"
        resp = client.trigger(MAINTENANCE_DAG_ID, {}, run_id=run_id)
        assert resp.status_code in (200, 201), resp.text
        assert _finished(client, run_id) == "success"
        left = client.variables(SESSION_PREFIX)
        assert SESSION_PREFIX + old not in left
        assert {SESSION_PREFIX + still_open, SESSION_PREFIX + recent} <= set(left)
        archived = [s for f in archive.glob("sessions-*.jsonl.gz") for s in read_archive(f)]
        assert [s["session_id"] for s in archived] == [old]
    finally:
        sessions.configure(client, TEST_CONFIG)
        for sid in (still_open, recent):
            client.request("DELETE", f"/api/v2/variables/{SESSION_PREFIX}{sid}")
