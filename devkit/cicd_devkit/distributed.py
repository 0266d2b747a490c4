"""Run the distributed deployment on loopback, without Docker: a private PostgreSQL cluster, a
private Redis and Airflow with the CeleryExecutor as separate processes (api-server, scheduler,
dag-processor, triggerer and Celery workers), the same shape as ``docker-compose.yaml``.

Used by ``make test-distributed``. Needs PostgreSQL's server binaries (Debian's ``postgresql``),
``redis-server`` and, in the virtual environment, ``apache-airflow-providers-celery`` and
``psycopg2-binary`` (``tests/distributed/requirements.txt``).

Every process runs in a process group of its own and ``stop()`` ends each group (SIGTERM, then
SIGKILL), then the CI runs the local provider detached under this stack's ``CICD_LOCAL_ROOT``.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import logging
import os
import pwd
import re
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

from cicd_devkit.airflow_stack import (
    ADMIN,
    PROVIDER_POOL,
    PROVIDER_POOL_SLOTS,
    ApiClient,
    free_port,
    stack_env,
)
from cicd_devkit.processes import Service, all_pids, kill_processes_under, read_text, tail

log = logging.getLogger(__name__)

WORKER_HOSTNAME_ENV = "CICD_WORKER_HOSTNAME"
HOSTNAME_CALLABLE = f"{__name__}.worker_hostname"
DB_NAME = "airflow"
DB_USER = "airflow"
#: unprivileged account the PostgreSQL server runs as when this process is root
PG_FALLBACK_USER = "cicd-postgres"


def worker_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` for several workers on one machine: the name in
    ``CICD_WORKER_HOSTNAME`` (each worker has its own), else the machine's FQDN. In containers
    (docker compose, Kubernetes) each worker has its own host name and this is not needed."""
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


def postgres_bindir() -> Path:
    """The directory of PostgreSQL's server binaries (``initdb``, ``postgres``), newest first."""

    def version(path: str) -> float:
        match = re.search(r"/postgresql/(\d+(?:\.\d+)?)/", path)
        return float(match.group(1)) if match else 0.0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise FileNotFoundError(
        "PostgreSQL's server is not installed (initdb not found): apt-get install postgresql"
    )


def missing_prerequisites() -> list[str]:
    """What ``DistributedStack`` needs and this machine lacks (empty when it can run)."""
    missing = []
    try:
        postgres_bindir()
    except FileNotFoundError:
        missing.append("PostgreSQL server (apt-get install postgresql)")
    if not shutil.which("redis-server"):
        missing.append("redis-server (apt-get install redis-server)")
    for module, dist in (
        ("airflow.providers.celery", "apache-airflow-providers-celery"),
        ("psycopg2", "psycopg2-binary"),
        ("asyncpg", "asyncpg"),
    ):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{dist} in the virtual environment")
    return missing


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class DistributedStack:
    """PostgreSQL + Redis + Airflow (CeleryExecutor) as separate processes on 127.0.0.1.

    ``home`` holds AIRFLOW_HOME, the logs and the local CI provider's repositories
    (``CICD_LOCAL_ROOT``, shared by every worker as the compose file's volume is). The
    PostgreSQL cluster lives in a directory of its own under the system's temporary directory
    (it must be reachable by the unprivileged user the server runs as when we are root).
    """

    def __init__(
        self,
        home: str | os.PathLike[str],
        workers: int = 2,
        worker_concurrency: int = 4,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs = self.home / "processes"
        self.logs.mkdir(exist_ok=True)
        self.workers = workers
        self.worker_concurrency = worker_concurrency
        self.port = free_port()
        self.pg_port = free_port()
        self.redis_port = free_port()
        self.pg_password = secrets.token_urlsafe(16)
        self.pg_dir: Path | None = None
        self.password_file = self.home / "passwords.json"
        if not self.password_file.exists():
            self.password_file.write_text(json.dumps({ADMIN: secrets.token_urlsafe(12)}))
        self.local_root = self.home / "local-ci"
        self.services: list[Service] = []
        self.bin = Path(sys.executable).parent
        db = f"{DB_USER}:{self.pg_password}@127.0.0.1:{self.pg_port}/{DB_NAME}"
        overrides = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{db}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{db}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__API__WORKERS": "2",
            "AIRFLOW__CORE__PARALLELISM": str(max(8, workers * worker_concurrency)),
            "CICD_LOCAL_ROOT": str(self.local_root),
        }
        overrides.update(extra_env or {})
        self.env = stack_env(self.home, self.port, self.password_file, overrides)
        # the SQLite connect arguments of the standalone stack do not apply to Postgres
        self.env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", None)

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def password(self) -> str:
        return str(json.loads(self.password_file.read_text())[ADMIN])

    def worker_names(self) -> list[str]:
        return [f"cicd-worker-{n}" for n in range(1, self.workers + 1)]

    def client(self) -> ApiClient:
        return ApiClient(self.url, ADMIN, self.password)

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Postgres, Redis, ``airflow db migrate``, the pool, then the Airflow components."""
        try:
            self._start_postgres()
            self._start_redis()
            self._wait_port(self.redis_port, "redis-server")
            self._airflow("db", "migrate", timeout=600)
            self._airflow(
                "pools",
                "set",
                PROVIDER_POOL,
                str(PROVIDER_POOL_SLOTS),
                "tasks calling the CI provider (rate limits)",
            )
            for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
                self._add_airflow(component, [component])
            for n, name in enumerate(self.worker_names(), start=1):
                env = dict(self.env)
                env[WORKER_HOSTNAME_ENV] = name
                env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = HOSTNAME_CALLABLE
                env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
                self._add_airflow(
                    f"worker-{n}",
                    ["celery", "worker", "--celery-hostname", f"{name}@%h"],
                    env=env,
                )
        except BaseException:
            self.stop()
            raise

    def _airflow(self, *args: str, timeout: float = 300) -> None:
        name = "-".join(args[:2])
        log_path = self.logs / f"{name}.log"
        with open(log_path, "ab") as out:
            result = subprocess.run(
                [str(self.bin / "airflow"), *args],
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if result.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{tail(log_path)}")

    def _add_airflow(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> Service:
        service = Service(
            name,
            [str(self.bin / "airflow"), *args],
            env or self.env,
            self.logs / f"{name}.log",
            cwd=self.home,
        )
        self.services.append(service)
        service.start()
        return service

    def _pg_user(self) -> str | None:
        """``None`` when not root (initdb runs as we are); else an unprivileged account."""
        if os.geteuid() != 0:
            return None
        for user in ("postgres", PG_FALLBACK_USER):
            with contextlib.suppress(KeyError):
                pwd.getpwnam(user)
                return user
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_FALLBACK_USER,
            ],
            check=True,
        )
        return PG_FALLBACK_USER

    def _start_postgres(self) -> None:
        bindir = postgres_bindir()
        user = self._pg_user()
        self.pg_dir = Path(tempfile.mkdtemp(prefix="cicd-pg-"))
        data = self.pg_dir / "data"
        pwfile = self.pg_dir / "pw"
        pwfile.write_text(self.pg_password + "\n")
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (self.pg_dir, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        init_log = self.logs / "initdb.log"
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", DB_USER, "-E", "UTF8"]
        initdb += ["--pwfile", str(pwfile), "--auth=scram-sha-256"]
        initdb.append("--locale=C.UTF-8" if _has_c_utf8() else "--no-locale")
        with open(init_log, "ab") as out:
            result = subprocess.run(
                initdb,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=user,
                cwd=self.pg_dir,
                check=False,
                timeout=180,
            )
        pwfile.unlink()
        if result.returncode:
            raise RuntimeError(f"initdb failed:\n{tail(init_log)}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.pg_port),
            "unix_socket_directories": str(self.pg_dir),
            "max_connections": "300",
            "shared_buffers": "128MB",
            "fsync": "off",  # a throw-away cluster: durability is not the point
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [str(bindir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        service = Service("postgres", argv, _plain_env(), self.logs / "postgres.log", user=user)
        service.cwd = self.pg_dir
        self.services.append(service)
        service.start()
        self._wait_postgres(service)

    def _wait_postgres(self, service: Service, timeout: float = 60) -> None:
        import psycopg2  # the Postgres driver Airflow uses (installed with the Celery stack)

        deadline = time.monotonic() + timeout
        while True:
            service.check()
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1",
                    port=self.pg_port,
                    user=DB_USER,
                    password=self.pg_password,
                    dbname="postgres",
                    connect_timeout=3,
                )
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
                continue
            try:
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                    if cur.fetchone() is None:
                        cur.execute(f'CREATE DATABASE "{DB_NAME}" OWNER "{DB_USER}"')
            finally:
                conn.close()
            return

    def _start_redis(self) -> None:
        redis_dir = self.home / "redis"
        redis_dir.mkdir(exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.redis_port),
            "--dir",
            str(redis_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        service = Service("redis", argv, _plain_env(), self.logs / "redis.log", cwd=redis_dir)
        self.services.append(service)
        service.start()

    def _wait_port(self, port: int, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services:
                service.check()
            with socket.socket() as sock:
                sock.settimeout(1)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{name} does not listen on 127.0.0.1:{port}")

    # ------------------------------------------------------------------ readiness
    def wait_ready(self, dag_ids: list[str], timeout: float = 300) -> ApiClient:
        """Every process up, the API answering, the DAGs parsed and each worker ready."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for service in self.services:
                service.check()
            try:
                client = self.client()
                known = set(client.dag_ids())
                missing = sorted(set(dag_ids) - known)
                not_ready = [
                    s.name
                    for s in self.services
                    if s.name.startswith("worker-") and " ready." not in read_text(s.log_path)
                ]
                if not missing and not not_ready:
                    client.ensure_pool(PROVIDER_POOL, PROVIDER_POOL_SLOTS)
                    return client
                last = f"DAGs not parsed: {missing}; workers not ready: {not_ready}"
            except (requests.RequestException, RuntimeError, KeyError) as exc:
                last = str(exc)
            time.sleep(2)
        raise TimeoutError(f"distributed Airflow not ready after {timeout}s: {last}")

    def check_alive(self) -> None:
        """Raise if a process of the stack died."""
        for service in self.services:
            service.check()

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Airflow first (workers, then the rest), then Redis and Postgres; then the CI runs
        left under this stack's local root; then Postgres' directory."""
        airflow = [s for s in self.services if s.name not in ("postgres", "redis")]
        for service in reversed(airflow):
            with contextlib.suppress(Exception):
                service.stop(timeout=20)
        for service in self.services:
            if service.name == "redis":
                service.stop(timeout=10)
            elif service.name == "postgres":
                service.stop(sig=signal.SIGINT, timeout=30)  # "fast" shutdown
        kill_processes_under(self.local_root)
        shutil.rmtree(self.env["CICD_WORKSPACE_DIR"], ignore_errors=True)
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self.pg_dir = None

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def crash(self, name: str) -> list[int]:
        """``kill -9`` of one component with everything under it; the CI runs of the local
        provider (detached, they stand for the remote CI) are spared."""
        needle = str(self.local_root).encode()

        def is_ci_run(pid: int) -> bool:
            try:
                return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return False

        return self.service(name).crash(spare=is_ci_run)

    def processes(self) -> list[int]:
        """Pids still alive in the process groups of the stack's services."""
        groups = {s.proc.pid for s in self.services if s.proc is not None}
        alive = []
        for pid in all_pids():
            with contextlib.suppress(OSError):
                if os.getpgid(pid) in groups:
                    alive.append(pid)
        return alive


def _has_c_utf8() -> bool:
    out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in out.splitlines())


def _plain_env() -> dict[str, str]:
    """The environment of Postgres and Redis: nothing of Airflow's."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.setdefault("PATH", "/usr/bin:/bin")
    return env


@contextlib.contextmanager
def running_distributed(
    home: str | os.PathLike[str],
    dag_ids: list[str],
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[DistributedStack, ApiClient]]:
    stack = DistributedStack(home, workers=workers, extra_env=extra_env)
    stack.start()
    try:
        yield stack, stack.wait_ready(dag_ids)
    finally:
        stack.stop()


def hostnames_of(client: ApiClient, dag_ids: list[str]) -> dict[str, int]:
    """How many task instances of the given DAGs ran on each ``hostname``."""
    counts: dict[str, int] = {}
    for dag_id in dag_ids:
        for run in client.dag_runs(dag_id):
            data: Any = client.get(
                f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances", limit=100
            )
            for ti in data["task_instances"]:
                host = ti.get("hostname")
                if host and ti.get("state") not in (None, "skipped", "upstream_failed"):
                    counts[host] = counts.get(host, 0) + 1
    return counts


__all__ = [
    "HOSTNAME_CALLABLE",
    "WORKER_HOSTNAME_ENV",
    "DistributedStack",
    "hostnames_of",
    "missing_prerequisites",
    "postgres_bindir",
    "running_distributed",
    "worker_hostname",
]
