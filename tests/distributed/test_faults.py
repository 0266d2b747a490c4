"""Faults on the CeleryExecutor deployment: ``kill -9`` of a Celery worker while it runs a
fixing task, of the scheduler, and of the triggerer while sessions wait on CI, each restarted
after a few seconds, as a supervisor (compose's ``restart: always``, Kubernetes) would.

Afterwards every session reaches its final state with the outcome it has without faults, no fix
branch, pull request or issue is made twice, and no workspace of a killed task is left behind.
One session goes through the GitHub-compatible server with a canary token as the credential:
after the run the token is in no file the deployment wrote and no table of its metadata DB.
"""

from __future__ import annotations

import datetime
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cicd_devkit import canary, sessions
from cicd_devkit.airflow_stack import PROJECT_ROOT, ApiClient
from cicd_devkit.distributed import DistributedStack, missing_prerequisites
from cicd_devkit.scenarios import fail_head_until_red, materialize
from cicd_devkit.servers.github import GitHubServer

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion, Outcome, SessionStatus
from cicd_orchestrator.scratch import PREFIXES
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

EXAMPLES = PROJECT_ROOT / "examples"
#: delays scaled by 0.2 (not 0.02 as elsewhere): the escalation delays (6 s and more) are waits
#: in the triggerer long enough to kill it during one, even when CI is done before a sensor's
#: first poke (then the sensor never defers)
TEST_CONFIG = {"delay_scale": 0.2, "ci_poll_interval": 50.0, "job_timeout_minutes": 5}
DAG_IDS = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
#: repository -> (example, outcome it reaches without faults)
SESSIONS = {
    "fault/lint-a": ("lint-failure", Outcome.FIXED),
    "fault/lint-b": ("lint-failure", Outcome.FIXED),
    "fault/network": ("transient-network", Outcome.RERUN_GREEN),
    "fault/regression": ("bisect-regression", Outcome.ROLLED_BACK),
    "fault/through-github": ("lint-failure", Outcome.FIXED),
}
#: the sessions opened through the GitHub provider (the others use the local one)
THROUGH_GITHUB = {"fault/through-github"}
#: how soon a dead task, scheduler or triggerer is noticed (the defaults are minutes)
FAULT_ENV = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    # a task whose Celery message died with the killed worker or scheduler stays queued until
    # this timeout requeues it (the default, ten minutes checked every two, doubled the run)
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
}
RESTART_AFTER = 5.0


def _tis(client: ApiClient, state: str) -> list[dict[str, Any]]:
    data = client.get("/dags/~/dagRuns/~/taskInstances", limit=200, state=[state])
    return list(data["task_instances"])


def _wait_for_ti(client: ApiClient, state: str, prefix: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in _tis(client, state):
            if ti["task_id"].startswith(prefix):
                return ti
        time.sleep(0.25)
    raise TimeoutError(f"no {state} task instance {prefix}* within {timeout}s")


class FaultRun:
    def __init__(self, stack: DistributedStack, client: ApiClient) -> None:
        self.stack = stack
        self.client = client
        self.provider = LocalProvider(stack.local_root)
        self.heads: dict[str, str] = {}
        self.opened: dict[str, str] = {}
        self.events: list[str] = []
        self.killed_fix: dict[str, Any] = {}
        self.final: dict[str, Any] = {}
        self.killed_at = 0.0
        self.token = "ghp_" + secrets.token_hex(18)  # a canary shaped like a real token
        self.github = GitHubServer(self.provider, self.token)

    def connect_github(self) -> None:
        self.github.start()
        body = {
            "connection_id": "github_default",
            "conn_type": "github",
            "password": self.token,
            "host": self.github.api_url,
        }
        self.client.request("POST", "/api/v2/connections", json=body).raise_for_status()

    def note(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        self.events.append(line)
        print(line, flush=True)

    def open_all(self) -> None:
        failed = {}
        for repo, (example, _) in SESSIONS.items():
            made = materialize(EXAMPLES / example, self.provider, repo)
            run = made.head_run
            if run is None or run.conclusion is Conclusion.SUCCESS:
                run = fail_head_until_red(self.provider, repo, made.head_sha)
            self.heads[repo], failed[repo] = made.head_sha, run.id
        for repo, run_id in failed.items():
            provider = "github" if repo in THROUGH_GITHUB else "local"
            sid, status = sessions.open_session(self.client, repo, run_id, provider)
            assert status in (200, 201), status
            self.opened[repo] = sid

    def crash_and_restart(self, name: str) -> None:
        killed = self.stack.crash(name)
        self.note(f"kill -9 {name}: {len(killed)} processes")
        time.sleep(RESTART_AFTER)
        self.stack.service(name).start()
        self.note(f"restarted {name}")

    def inject_faults(self) -> None:
        ti = _wait_for_ti(self.client, "running", "fixing.", timeout=300)
        worker = {f"cicd-worker-{n}": f"worker-{n}" for n in range(1, 3)}[ti["hostname"]]
        self.killed_fix = ti
        self.note(f"{ti['task_id']} of {ti['dag_run_id']} running on {worker}")
        self.killed_at = time.time()
        self.crash_and_restart(worker)
        self.crash_and_restart("scheduler")
        deferred = _wait_for_ti(self.client, "deferred", "", timeout=300)
        self.note(f"{deferred['task_id']} of {deferred['dag_run_id']} deferred")
        self.crash_and_restart("triggerer")

    def follow(self, timeout: float) -> None:
        def changed(state) -> None:
            self.note(sessions.describe(state))

        self.final = sessions.follow(
            self.client, self.opened.values(), timeout, on_change=changed, poll=3
        )


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> FaultRun:
    missing = missing_prerequisites()
    if missing:
        pytest.fail("the distributed test needs: " + "; ".join(missing), pytrace=False)
    home: Path = tmp_path_factory.mktemp("faults")
    stack = DistributedStack(home, workers=2, worker_concurrency=4, extra_env=FAULT_ENV)
    stack.start()
    run = None
    try:
        run = FaultRun(stack, stack.wait_ready(DAG_IDS, timeout=300))
        sessions.configure(run.client, TEST_CONFIG)
        run.connect_github()
        run.open_all()
        run.inject_faults()
        run.follow(timeout=720)
        stack.check_alive()
        yield run
    finally:
        stack.stop()
        if run is not None:
            run.github.stop()


def test_every_session_reaches_its_final_state(faults):
    assert set(faults.final) == set(faults.opened.values()), "a session was lost"
    for repo, sid in faults.opened.items():
        state = faults.final[sid]
        assert state.status is SessionStatus.CLOSED, sessions.describe(state)
        assert state.outcome is SESSIONS[repo][1], (repo, state.outcome, state.report)


def test_the_killed_fixing_task_was_run_again(faults):
    ti = faults.killed_fix
    tis = faults.client.task_instances(ti["dag_id"], ti["dag_run_id"])
    final = next(t for t in tis if t["task_id"] == ti["task_id"])
    assert final["state"] == "success", final
    ended = datetime.datetime.fromisoformat(final["end_date"]).timestamp()
    # run again after the kill, unless it had just finished when the worker was killed
    assert final["try_number"] > ti["try_number"] or ended <= faults.killed_at, final


def test_nothing_is_published_twice(faults):
    for repo in SESSIONS:
        prs = faults.provider.list_pull_requests(repo)
        heads = [pr.head for pr in prs]
        assert len(heads) == len(set(heads)), (repo, heads)
        state = faults.final[faults.opened[repo]]
        published = [r.published for r in state.attempt_history if r.published is not None]
        branches = [p.branch for p in published if p.branch]
        assert len(branches) == len(set(branches)), (repo, branches)
        assert sorted(heads) == sorted(b for b in branches if b in heads)
        assert len(faults.provider.list_issues(repo)) <= 1
        out = subprocess.run(
            ["git", "for-each-ref", "--format=%(refname:short)", "refs/heads"],
            cwd=faults.provider.repo_path(repo),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        fix_branches = [b for b in out if b.startswith("cicd-fix/")]
        assert set(fix_branches) <= set(branches), (repo, fix_branches, branches)
        assert set(out) - set(fix_branches) == {"main"}, out
        assert faults.provider.branch_sha(repo, "main") == faults.heads[repo]
    assert len(sessions.sessions(faults.client)) == len(SESSIONS)


def test_no_workspace_is_left_behind(faults):
    root = Path(faults.stack.env["CICD_WORKSPACE_DIR"])
    left = [p.name for p in root.iterdir() if p.name.startswith(PREFIXES)]
    assert left == [], left


def test_the_credential_is_in_no_file_table_or_report(faults):
    sql = faults.stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    workspaces = Path(faults.stack.env["CICD_WORKSPACE_DIR"])
    assert canary.find_token(faults.token, faults.stack.home, sql, [workspaces]) == []
    for state in faults.final.values():
        assert faults.token not in json.dumps(state.report)
    pr = faults.provider.list_pull_requests("fault/through-github")
    assert len(pr) == 1 and faults.token not in pr[0].body
