"""Run a local Airflow (standalone: scheduler, dag-processor, triggerer, API server) for the
demo, the benchmarks and the integration tests, and talk to it through its REST API."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: the demo's example repositories (scenario folders)
EXAMPLES = PROJECT_ROOT / "examples"
#: the configuration of the test stacks: every delay scaled down, CI polled every second
TEST_CONFIG = {
    "delay_scale": 0.02,
    "ci_poll_interval": 50.0,  # x delay_scale: polls every second
    "job_timeout_minutes": 5,
}
ADMIN = "admin"
PROVIDER_POOL = "cicd_provider_calls"
PROVIDER_POOL_SLOTS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def workspace_dir(home: Path) -> Path:
    """Where a stack's clones and replayed jobs go: outside ``home`` (which may lie in a
    project, as the demo's does) so that no tool run in a clone (ruff, pytest...) finds a
    configuration file of a parent directory."""
    digest = hashlib.sha1(str(home).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"cicd-workspaces-{digest}"


def stack_env(
    home: Path, port: int, password_file: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Environment of the Airflow processes: everything under ``home``, DAGs from the project."""
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(
        {
            "PATH": venv_bin + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "16",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": ("cicd_devkit.sqlite_args.CONNECT_ARGS"),
            "CICD_LOCAL_ROOT": str(home / "local-ci"),
            "CICD_PROVIDER_POOL": PROVIDER_POOL,
            "CICD_CACHE_DIR": str(home / "cicd-cache"),
            "CICD_WORKSPACE_DIR": str(workspace_dir(home)),
            # the tools of repository commands (make runner-tools), never this virtualenv
            "CICD_RUNNER_TOOLS": str(PROJECT_ROOT / ".venv-runner"),
            "PYTHONPATH": str(PROJECT_ROOT / "include"),
        }
    )
    env.update(extra or {})
    return env


def bundles_env(extra_dags: Path) -> dict[str, str]:
    """Airflow's DAG bundles: the project's dags folder and ``extra_dags`` beside it (DAGs a
    benchmark writes, kept out of the project)."""
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    bundles = [
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "extra-dags", "classpath": local, "kwargs": {"path": str(extra_dags)}},
    ]
    return {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles)}


class AirflowStack:
    """``airflow standalone`` on a home directory of its own and a free port; ``extra_dags``:
    a folder of DAG files parsed beside the project's."""

    def __init__(
        self,
        home: str | os.PathLike[str],
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        extra_dags: Path | None = None,
    ) -> None:
        if extra_dags is not None:
            extra_env = {**bundles_env(extra_dags), **(extra_env or {})}
        self.home = Path(home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.password_file = self.home / "passwords.json"
        if not self.password_file.exists():
            self.password_file.write_text(json.dumps({ADMIN: secrets.token_urlsafe(12)}))
        self.env = stack_env(self.home, self.port, self.password_file, extra_env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.home / "standalone.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def password(self) -> str:
        return str(json.loads(self.password_file.read_text())[ADMIN])

    def start(self) -> None:
        out = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process' life
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), "standalone"],
            cwd=self.home,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def client(self) -> ApiClient:
        return ApiClient(self.url, ADMIN, self.password)

    def wait_ready(self, dag_ids: list[str], timeout: float = 240) -> ApiClient:
        """Wait until the API answers and every DAG in ``dag_ids`` is parsed."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited; see {self.log_path}")
            try:
                client = self.client()
                known = set(client.dag_ids())
                if set(dag_ids) <= known:
                    client.ensure_pool(
                        PROVIDER_POOL,
                        PROVIDER_POOL_SLOTS,
                        "tasks calling the CI provider (rate limits)",
                    )
                    return client
                last_error = f"DAGs not parsed yet: {sorted(set(dag_ids) - known)}"
            except (requests.RequestException, RuntimeError, KeyError) as exc:
                last_error = str(exc)
            time.sleep(2)
        raise TimeoutError(f"Airflow not ready after {timeout}s: {last_error}; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM to the whole process group, then SIGKILL to whatever is left of it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _group_alive(self.proc.pid):
            time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        shutil.rmtree(workspace_dir(self.home), ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def running_stack(
    home: str | os.PathLike[str], dag_ids: list[str], extra_env: dict[str, str] | None = None
) -> Iterator[AirflowStack]:
    stack = AirflowStack(home, extra_env=extra_env)
    stack.start()
    try:
        stack.wait_ready(dag_ids)
        yield stack
    finally:
        stack.stop()


class ApiClient:
    """The few calls of Airflow's REST API (v2) the tools need, with a JWT from /auth/token."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        resp = self.http.post(
            f"{self.url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        if resp.status_code >= 300:
            raise RuntimeError(f"login failed: {resp.status_code} {resp.text[:200]}")
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call, retried a few times on 5xx answers or time-outs (a busy SQLite database)."""
        for attempt in range(5):
            try:
                resp = self.http.request(method, f"{self.url}{path}", timeout=120, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == 4:
                    raise
                log.warning("%s %s: %s, retrying", method, path, exc)
            else:
                if resp.status_code < 500 or attempt == 4:
                    return resp
                log.warning("%s %s: %s, retrying", method, path, resp.status_code)
            time.sleep(1 + attempt)
        raise AssertionError("unreachable")

    def get(self, path: str, **params: Any) -> Any:
        resp = self.request("GET", f"/api/v2{path}", params=params)
        resp.raise_for_status()
        return resp.json()

    def dag_ids(self) -> list[str]:
        return [d["dag_id"] for d in self.get("/dags", limit=100)["dags"]]

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.get("/importErrors")["import_errors"])

    def trigger(
        self, dag_id: str, conf: dict[str, Any], run_id: str | None = None
    ) -> requests.Response:
        body: dict[str, Any] = {"conf": conf, "logical_date": None}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
        return list(data["task_instances"])

    def ensure_pool(self, name: str, slots: int, description: str = "") -> None:
        resp = self.request("GET", f"/api/v2/pools/{name}")
        if resp.status_code == 404:
            body = {"name": name, "slots": slots, "description": description}
            self.request("POST", "/api/v2/pools", json=body).raise_for_status()

    def set_variable(self, key: str, value: str, description: str = "") -> None:
        body = {"key": key, "value": value, "description": description}
        resp = self.request("PATCH", f"/api/v2/variables/{key}", json=body)
        if resp.status_code == 404:
            resp = self.request("POST", "/api/v2/variables", json=body)
        resp.raise_for_status()

    def variables(self, prefix: str) -> dict[str, str]:
        out: dict[str, str] = {}
        offset = 0
        while True:
            data = self.get(
                "/variables", limit=100, offset=offset, variable_key_prefix_pattern=prefix
            )
            for item in data["variables"]:
                out[item["key"]] = item["value"]
            offset += len(data["variables"])
            if not data["variables"] or offset >= data["total_entries"]:
                return out
