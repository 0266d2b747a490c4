"""Whole sessions on the CeleryExecutor: a private PostgreSQL and Redis, Airflow's api-server,
scheduler, dag-processor, triggerer and two Celery workers as separate processes on loopback
(``cicd_devkit.distributed``), the examples materialised in the local CI provider
and their sessions opened through the REST API, as in tests/integration."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import PROJECT_ROOT, PROVIDER_POOL
from cicd_devkit.distributed import DistributedStack, hostnames_of, missing_prerequisites
from cicd_devkit.processes import kill_processes_under
from cicd_devkit.scenarios import MaterializedScenario, fail_head_until_red, materialize

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion, Outcome, RepairKind, SessionStatus
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXAMPLES = PROJECT_ROOT / "examples"
EXAMPLE_NAMES = ("lint-failure", "transient-network", "bisect-regression")
TEST_CONFIG = {"delay_scale": 0.02, "ci_poll_interval": 50.0, "job_timeout_minutes": 5}
DAG_IDS = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
SESSION_TIMEOUT = 480


class Deployment:
    def __init__(self, stack: DistributedStack) -> None:
        self.stack = stack
        self.client = stack.wait_ready(DAG_IDS, timeout=300)
        self.provider = LocalProvider(stack.local_root)
        self.made: dict[str, MaterializedScenario] = {}
        self.failed_runs: dict[str, int] = {}
        self.opened: dict[str, str] = {}
        self.final: dict = {}

    def open_all(self) -> None:
        for name in EXAMPLE_NAMES:
            repo = f"dist/{name}"
            made = materialize(EXAMPLES / name, self.provider, repo)
            run = made.head_run
            if run is None or run.conclusion is Conclusion.SUCCESS:
                run = fail_head_until_red(self.provider, repo, made.head_sha)
            self.made[name], self.failed_runs[name] = made, run.id
        for name in EXAMPLE_NAMES:  # opened together: they run concurrently
            sid, status = sessions.open_session(
                self.client, self.made[name].repo, self.failed_runs[name]
            )
            assert status in (200, 201), status
            self.opened[name] = sid

    def follow(self) -> None:
        def changed(state) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {sessions.describe(state)}", flush=True)

        self.final = sessions.follow(
            self.client, self.opened.values(), SESSION_TIMEOUT, on_change=changed, poll=3
        )

    def state(self, name: str):
        sid = self.opened[name]
        assert sid in self.final, f"session {sid} was never created"
        state = self.final[sid]
        assert state.status is SessionStatus.CLOSED, (
            f"{name} not closed in {SESSION_TIMEOUT}s: {sessions.describe(state)}\n"
            + self.stack_logs()
        )
        return state

    def stack_logs(self) -> str:
        return "\n".join(
            f"--- {s.name} ({s.log_path})" for s in self.stack.services if s.log_path.exists()
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    missing = missing_prerequisites()
    if missing:
        pytest.fail(
            "the distributed test needs: " + "; ".join(missing) + " (make test-distributed "
            "installs them)",
            pytrace=False,
        )
    home: Path = tmp_path_factory.mktemp("distributed")
    stack = DistributedStack(home, workers=2, worker_concurrency=4)
    started = time.monotonic()
    stack.start()
    try:
        dep = Deployment(stack)
        print(f"distributed Airflow ready in {time.monotonic() - started:.0f}s at {stack.url}")
        sessions.configure(dep.client, TEST_CONFIG)
        dep.open_all()
        dep.follow()
        print(f"sessions closed {time.monotonic() - started:.0f}s after the start")
        stack.check_alive()
        yield dep
    finally:
        stack.stop()


def _main_untouched(dep: Deployment, name: str) -> None:
    made = dep.made[name]
    assert dep.provider.branch_sha(made.repo, "main") == made.head_sha
    out = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short)", "refs/heads"],
        cwd=dep.provider.repo_path(made.repo),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(b == "main" or b.startswith("cicd-fix/") for b in out), out


def test_the_stack_is_celery_on_postgres_and_redis(deployment):
    env = deployment.stack.env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://127.0.0.1:")
    names = {s.name for s in deployment.stack.services}
    assert names >= {"postgres", "redis", "api-server", "scheduler", "dag-processor"}
    assert names >= {"triggerer", "worker-1", "worker-2"}
    pool = deployment.client.get(f"/pools/{PROVIDER_POOL}")
    assert pool["slots"] == 16
    assert requests.get(f"{deployment.stack.url}/cicd/health", timeout=10).json() == {
        "status": "ok"
    }


def test_quality_fix_goes_green(deployment):
    state = deployment.state("lint-failure")
    assert state.outcome is Outcome.FIXED, state.report
    assert state.current_attempt == 1
    record = state.attempt_record(1)
    assert record.published.kind is RepairKind.CHANGE
    assert record.published.branch.startswith("cicd-fix/")
    prs = deployment.provider.list_pull_requests(state.repository)
    assert len(prs) == 1 and prs[0].base == "main"
    _main_untouched(deployment, "lint-failure")


def test_transient_failure_is_rerun_green(deployment):
    state = deployment.state("transient-network")
    assert state.outcome is Outcome.RERUN_GREEN, state.report
    assert state.current_attempt == 1
    assert state.failures[0].category.value == "infrastructure"
    assert deployment.provider.list_pull_requests(state.repository) == []
    _main_untouched(deployment, "transient-network")


def test_regression_escalates_to_issue_then_revert(deployment):
    state = deployment.state("bisect-regression")
    culprit = dict(deployment.made["bisect-regression"].commits)["03-overtime"]
    assert state.outcome is Outcome.ROLLED_BACK, state.report
    assert state.current_attempt == 4  # sequential fixing would repeat attempts 1-2: skipped
    assert state.context.culprit_sha == culprit
    issues = deployment.provider.list_issues(state.repository)
    assert len(issues) == 1 and culprit in issues[0].body
    assert state.attempt_record(4).published.kind is RepairKind.REVERT
    _main_untouched(deployment, "bisect-regression")


def test_tasks_ran_on_both_celery_workers(deployment):
    """Every task instance that ran names one of the two workers (``hostname``), both did
    work, and each worker's Celery log shows the workloads it received."""
    counts = hostnames_of(deployment.client, DAG_IDS)
    print(f"task instances per worker: {counts}")
    workers = set(deployment.stack.worker_names())
    assert set(counts) == workers, counts
    assert all(counts[w] > 0 for w in workers)
    for service in deployment.stack.services:
        if service.name.startswith("worker-"):
            text = service.log_path.read_text(errors="replace")
            assert "execute_workload" in text and "received" in text, service.log_path


def test_teardown_leaves_no_process(deployment):
    """Runs last: stop the stack and find none of its processes, ports or CI runs left."""
    stack = deployment.stack
    stack.stop()
    assert stack.processes() == []
    for port in (stack.port, stack.pg_port, stack.redis_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
    assert kill_processes_under(stack.local_root) == []
    assert stack.pg_dir is None
