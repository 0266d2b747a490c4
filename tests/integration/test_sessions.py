"""Whole sessions through a real scheduler and triggerer on the example repositories."""

from __future__ import annotations

import pytest

from cicd_orchestrator.constants import Outcome, RepairKind, SessionStatus
from cicd_orchestrator.session import session_id_for
from cicd_orchestrator.tools import sessions

pytestmark = pytest.mark.integration

EXAMPLES = ("lint-failure", "transient-network", "bisect-regression")


@pytest.fixture(scope="module")
def opened(airflow_env):
    """Open every example's session at once: they run concurrently."""
    return {name: airflow_env.open(name) for name in EXAMPLES}


def _main_untouched(env, name):
    made = env.made[name]
    assert env.provider.branch_sha(made.repo, "main") == made.head_sha
    branches = env.provider.branches(made.repo) if hasattr(env.provider, "branches") else []
    assert all(b == "main" or b.startswith("cicd-fix/") for b in branches)


def test_quality_fix_goes_green(airflow_env, opened):
    state = airflow_env.wait(opened["lint-failure"])
    assert state.status is SessionStatus.CLOSED
    assert state.outcome is Outcome.FIXED, state.report
    assert state.current_attempt == 1
    record = state.attempt_record(1)
    assert record.published.kind is RepairKind.CHANGE
    assert record.published.branch.startswith("cicd-fix/")
    prs = airflow_env.provider.list_pull_requests(state.repository)
    assert len(prs) == 1 and prs[0].base == "main"
    assert state.report and "fixed" in state.report
    _main_untouched(airflow_env, "lint-failure")


def test_transient_failure_is_rerun_green(airflow_env, opened):
    state = airflow_env.wait(opened["transient-network"])
    assert state.outcome is Outcome.RERUN_GREEN, state.report
    assert state.current_attempt == 1
    assert state.failures[0].category.value == "infrastructure"
    assert airflow_env.provider.list_pull_requests(state.repository) == []
    _main_untouched(airflow_env, "transient-network")


def test_regression_escalates_to_issue_then_revert(airflow_env, opened):
    state = airflow_env.wait(opened["bisect-regression"], timeout=1500)
    made = airflow_env.made["bisect-regression"]
    culprit = dict(made.commits)["03-overtime"]
    assert state.outcome is Outcome.ROLLED_BACK, state.report
    assert state.current_attempt == 5
    assert state.context.culprit_sha == culprit
    issues = airflow_env.provider.list_issues(state.repository)
    assert len(issues) == 1 and culprit in issues[0].body
    issue_attempt = next(
        r.attempt for r in state.attempt_history if r.published and r.published.issue
    )
    assert issue_attempt <= 4
    record = state.attempt_record(5)
    assert record.published.kind is RepairKind.REVERT
    revert = record.repairs[0]
    assert revert.revert_shas == [culprit]
    _main_untouched(airflow_env, "bisect-regression")


def test_duplicate_request_is_answered_by_the_existing_session(airflow_env, opened):
    sid = opened["lint-failure"]
    again, status = sessions.open_session(
        airflow_env.client,
        airflow_env.made["lint-failure"].repo,
        airflow_env.failed_runs["lint-failure"],
    )
    assert again == sid and status in (200, 201)
    airflow_env.wait(sid)
    runs = airflow_env.client.dag_runs(sessions.FIRST_DAG)
    mine = [
        r
        for r in runs
        if r["conf"].get("run_id") == airflow_env.failed_runs["lint-failure"]
        and r["conf"].get("repository") == airflow_env.made["lint-failure"].repo
    ]
    assert len(mine) == 2
    states = {r["dag_run_id"]: r["state"] for r in mine}
    assert "success" in states.values()
    # the duplicate run skipped everything after open_session
    dup = [
        r
        for r in mine
        if r["dag_run_id"] not in {rec.dag_run_id for rec in airflow_env.wait(sid).attempt_history}
    ]
    assert len(dup) == 1
    tis = airflow_env.client.task_instances(sessions.FIRST_DAG, dup[0]["dag_run_id"])
    assert {t["state"] for t in tis} == {"skipped"}
    prs = airflow_env.provider.list_pull_requests(airflow_env.made["lint-failure"].repo)
    assert len(prs) == 1


@pytest.mark.parametrize(
    "conf",
    [
        {"repository": "acme/shop", "run_id": "not-a-number"},
        {"repository": "no-slash", "run_id": 3},
        {"repository": "acme/shop", "run_id": -4},
    ],
)
def test_malformed_conf_is_rejected_with_400(airflow_env, conf):
    resp = airflow_env.client.trigger(sessions.FIRST_DAG, conf)
    assert resp.status_code == 400, resp.text
    assert not [k for k in sessions.sessions(airflow_env.client) if "acme" in k]


def test_unknown_repository_fails_clearly_without_a_session(airflow_env):
    import time

    resp = airflow_env.client.trigger(
        sessions.FIRST_DAG, {"repository": "nobody/nothing", "run_id": 99}
    )
    assert resp.status_code in (200, 201)
    run_id = resp.json()["dag_run_id"]
    deadline = time.monotonic() + 180
    state = None
    while time.monotonic() < deadline:
        state = next(
            r["state"]
            for r in airflow_env.client.dag_runs(sessions.FIRST_DAG)
            if r["dag_run_id"] == run_id
        )
        if state in ("failed", "success"):
            break
        time.sleep(2)
    assert state == "failed"
    sid = session_id_for("local", "nobody/nothing", 99)
    assert sid not in sessions.sessions(airflow_env.client)
