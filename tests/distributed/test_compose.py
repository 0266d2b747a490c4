"""``docker-compose.yaml`` and the ``Dockerfile``: validated by a Compose implementation
(``docker compose config``, else Debian's or PyPI's ``docker-compose config``), and checked for
what the distributed deployment needs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from cicd_devkit.airflow_stack import PROJECT_ROOT, PROVIDER_POOL

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


#: the secrets the compose file requires (it has no defaults for them)
SECRETS = {
    "AIRFLOW_JWT_SECRET": "test-jwt-secret",
    "AIRFLOW_API_SECRET_KEY": "test-api-secret-key",
    "AIRFLOW_FERNET_KEY": "dGVzdC1mZXJuZXQta2V5LW9mLXRoaXJ0eS10d28tYnk=",
}


def _run_config(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    command = _compose_command()
    if command is None:
        pytest.skip(
            "no Compose implementation: neither the docker compose plugin nor docker-compose "
            "is installed (make test-distributed installs Debian's docker-compose)"
        )
    argv = [*command, "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE)]
    return subprocess.run(
        [*argv, "config", *extra],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
        env=env,
    )


def _config(*extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    result = _run_config({**env, **SECRETS}, *extra)
    assert result.returncode == 0, f"config failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The compose file as the Compose implementation resolves it (anchors, interpolation)."""
    return yaml.safe_load(_config())


def test_compose_config_passes():
    _config("--quiet")
    services = _config("--services").split()
    assert set(services) >= {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}


def test_every_airflow_service_shares_the_essentials(resolved):
    services = resolved["services"]
    secrets = set()
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
        assert env["CICD_PROVIDER_POOL"] == PROVIDER_POOL
        assert env["CICD_LOCAL_ROOT"] == "/opt/airflow/local-ci"
        assert "/opt/airflow/include" in env["PYTHONPATH"].split(":")
        secrets.add(env["AIRFLOW__API_AUTH__JWT_SECRET"])
        targets = {str(v).split(":")[1] if ":" in str(v) else v for v in _volumes(services[name])}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= targets
        assert "/opt/airflow/local-ci" in targets, f"{name}: local CI root not on the volume"
    assert len(secrets) == 1 and all(secrets), "one JWT secret shared by every component"
    assert secrets == {SECRETS["AIRFLOW_JWT_SECRET"]}, "the JWT secret is the deployment's"


def test_the_secrets_have_no_defaults():
    """Without them the compose file does not resolve, and the message names the variable."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    for missing in SECRETS:
        given = {k: v for k, v in SECRETS.items() if k != missing}
        result = _run_config({**env, **given}, "--quiet")
        assert result.returncode != 0, f"{missing} has a default"
        assert missing in result.stderr, result.stderr


def test_the_worker_can_use_the_command_sandbox(resolved):
    """Only the worker runs repository code: its seccomp profile allows the namespaces of the
    sandbox, and the sandbox is required."""
    services = resolved["services"]
    worker = services["airflow-worker"]
    assert worker["environment"]["CICD_COMMAND_SANDBOX"] == "required"
    options = " ".join(worker.get("security_opt", []))
    assert "apparmor=unconfined" in options and "systempaths=unconfined" in options
    profile = json.loads((PROJECT_ROOT / "deploy" / "worker-seccomp.json").read_text())
    allowed = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }
    denied = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ERRNO"
        for name in rule["names"]
    }
    assert {"unshare", "clone", "mount", "pivot_root"} <= allowed
    assert {"kexec_load", "init_module", "open_by_handle_at", "bpf", "keyctl"} <= denied
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-triggerer"):
        assert not services[name].get("security_opt"), f"{name} needs no sandbox"


def _volumes(service: dict) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            out.append(f"{volume.get('source')}:{volume['target']}")
        else:
            out.append(str(volume))
    return out


def test_health_checks_and_dependencies(resolved):
    services = resolved["services"]
    for name in ("postgres", "redis", *AIRFLOW_SERVICES):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_init_migrates_and_creates_the_pool(resolved):
    init = resolved["services"]["airflow-init"]
    script = " ".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "airflow pools set" in script and "CICD_PROVIDER_POOL" in script
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["CICD_PROVIDER_POOL_SLOTS"] == "16"


def test_workers_scale(resolved):
    """``--scale airflow-worker=N`` needs no fixed container name nor host port on workers."""
    worker = resolved["services"]["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_dockerfile_builds_from_the_pinned_airflow_and_installs_the_project():
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    requirements = (PROJECT_ROOT / "requirements.txt").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", requirements, re.M)
    assert pinned
    base = rf"^FROM apache/airflow:{re.escape(pinned.group(1))}-python3\.11\b"
    assert re.search(base, text, re.M)
    assert "-r requirements.txt" in text and "open('constraints.txt')" in text
    assert "-c image-constraints.txt" in text and "pip check" in text
    assert re.search(r"pip install .*--no-deps", text)
    # the sandbox and the runner tool folder of repository commands
    assert re.search(r"apt-get install .*\bbubblewrap\b", text)
    assert "-r runner-tools.txt" in text and "CICD_RUNNER_TOOLS=/opt/cicd-runner-tools" in text
    ignore = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignore and ".git" in ignore
