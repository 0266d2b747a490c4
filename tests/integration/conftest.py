"""A real Airflow (standalone: scheduler, dag-processor, triggerer, API server) on a temporary
AIRFLOW_HOME for the whole test session, the example repositories materialised in its local CI
provider, and the GitHub-compatible server behind the connection ``github_default``."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import EXAMPLES, TEST_CONFIG, AirflowStack, workspace_dir
from cicd_devkit.canary import find_token
from cicd_devkit.scenarios import MaterializedScenario, fail_head_until_red, materialize
from cicd_devkit.servers.github import GitHubServer

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies

WORKER_CANARY = "cicd-worker-canary-" + secrets.token_hex(12)


class Env:
    def __init__(self, stack: AirflowStack, provider: LocalProvider) -> None:
        self.stack = stack
        self.client = stack.client()
        self.provider = provider
        self.made: dict[str, MaterializedScenario] = {}
        self.failed_runs: dict[str, int] = {}
        #: values that must be found nowhere after the suite (see ``airflow_env``)
        self.canaries: list[str] = []

    def scenario(self, name: str) -> MaterializedScenario:
        """Materialise an example (once) and return it with its failed head run."""
        if name not in self.made:
            repo = f"it/{name}"
            made = materialize(EXAMPLES / name, self.provider, repo)
            run = made.head_run
            if run is None or run.conclusion is Conclusion.SUCCESS:
                run = fail_head_until_red(self.provider, repo, made.head_sha)
            self.made[name] = made
            self.failed_runs[name] = run.id
        return self.made[name]

    def open(self, name: str) -> str:
        made = self.scenario(name)
        run = self.provider.get_run(made.repo, self.failed_runs[name])
        sid, status = sessions.open_session(self.client, made.repo, run.id, run=run)
        assert status in (200, 201), status
        return sid

    def wait(self, session_id: str, timeout: float = 900):
        final = sessions.follow(self.client, [session_id], timeout, poll=3)
        assert session_id in final, f"session {session_id} was never created"
        return final[session_id]


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> Env:
    """The stack for the whole test session. A canary is in the environment of every Airflow
    process (the workers' included) and the GitHub connection's token is another: after the
    suite, neither may be found in any file under the home (task and process logs, the local
    CI's repositories, pull requests, issues and comments), the workspaces, or any table of
    the metadata database but ``connection`` (XCom, Variables, logs...)."""
    home: Path = tmp_path_factory.mktemp("airflow")
    stack = AirflowStack(home, extra_env={"CICD_TEST_WORKER_CANARY": WORKER_CANARY})
    stack.start()
    env: Env | None = None
    try:
        dag_ids = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
        client = stack.wait_ready(dag_ids, timeout=300)
        sessions.configure(client, TEST_CONFIG)
        env = Env(stack, LocalProvider(home / "local-ci"))
        env.canaries.append(WORKER_CANARY)
        yield env
    finally:
        stack.stop()
        time.sleep(1)
    leaks = {
        canary: find_token(canary, home, more_dirs=[workspace_dir(home)])
        for canary in (env.canaries if env else [])
    }
    assert not any(leaks.values()), f"a canary was written: {leaks}"


EXAMPLE_NAMES = ("lint-failure", "transient-network", "bisect-regression")


@pytest.fixture(scope="session")
def opened(airflow_env) -> dict[str, str]:
    """Every example's session, opened at once: they run concurrently."""
    return {name: airflow_env.open(name) for name in EXAMPLE_NAMES}


@pytest.fixture(scope="session")
def github(airflow_env) -> tuple[GitHubServer, str]:
    """The GitHub-compatible server in front of the local provider, and the connection
    ``github_default`` to it (one per test session: the connection id is global)."""
    token = "ghp_" + secrets.token_hex(18)  # a canary shaped like a real token
    airflow_env.canaries.append(token)
    server = GitHubServer(airflow_env.provider, token)
    server.start()
    body = {
        "connection_id": "github_default",
        "conn_type": "github",
        "password": token,
        "host": server.api_url,
    }
    resp = airflow_env.client.request("POST", "/api/v2/connections", json=body)
    assert resp.status_code in (200, 201), resp.text
    try:
        yield server, token
    finally:
        server.stop()
