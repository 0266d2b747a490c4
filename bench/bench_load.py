"""`make bench-load`: many sessions at once on one Airflow.

Materialises N repositories from the project's examples (by default the two fast ones: a lint
failure and a transient network failure), opens all sessions at once (through the webhook
with ``--provider github``, as GitHub delivers failures; through the REST API otherwise) and
prints: sessions per minute, how long a failure waits for its first task, the running task
instances sampled while sessions wait on CI (waiting holds no worker slot: the sensor and the
delay are deferred), the DAG files' parse times and the task overhead of an attempt. On the
standalone Airflow it then measures Airflow's own floor beside them: as many runs at once of a
DAG of exactly the attempt DAG's shape whose bodies return at once.

``--executor standalone`` (default) runs ``airflow standalone`` (LocalExecutor, SQLite);
``--executor celery`` the distributed deployment of ``make test-distributed`` (PostgreSQL,
Redis, two Celery workers). ``--provider github`` puts the GitHub-compatible server in front of
the repositories, with a canary token as the GitHub credential, and after the run looks for
the token in every file and metadata table the deployment wrote.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import runpy
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cicd_devkit import canary, sessions
from cicd_devkit.airflow_stack import PROJECT_ROOT, AirflowStack, ApiClient
from cicd_devkit.dag_shape import write_trivial_dag
from cicd_devkit.scenarios import fail_head_until_red, load_scenario, materialize
from cicd_devkit.servers.github import GitHubServer

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import SessionStatus
from cicd_orchestrator.models import Run
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies
from cicd_orchestrator.webhooks.github import SECRET_VARIABLE

LOAD_CONFIG = {"delay_scale": 0.02, "ci_poll_interval": 100.0, "job_timeout_minutes": 10}


def _ts(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


_PARSE = """
import runpy, sys, time
import airflow.sdk  # the dag-processor's parsing process has Airflow imported already
from airflow.providers.standard.operators.python import PythonOperator  # noqa: F401
start = time.perf_counter()
runpy.run_path(sys.argv[1])
print(time.perf_counter() - start)
"""


def parse_times() -> list[tuple[str, float]]:
    """Seconds to parse each DAG file in a fresh process that has Airflow imported (the
    dag-processor's situation), the project's package included in the cost."""
    out = []
    for path in sorted((PROJECT_ROOT / "dags").glob("*.py")):
        proc = subprocess.run(
            [sys.executable, "-c", _PARSE, str(path)], capture_output=True, text=True, check=True
        )
        out.append((path.name, float(proc.stdout.strip().splitlines()[-1])))
    return out


WAIT_TASKS = ("watch_ci", "escalation_delay")
WAITING = (SessionStatus.WAITING_FOR_CI, SessionStatus.WAITING_TO_ESCALATE)


def sample_running(client: ApiClient) -> tuple[int, int, int]:
    """Task instances across every DAG run right now: (running, of which waits, deferred)."""
    data = client.get("/dags/~/dagRuns/~/taskInstances", limit=100, state=["running"])
    deferred = client.get("/dags/~/dagRuns/~/taskInstances", limit=1, state=["deferred"])
    waits = sum(1 for ti in data["task_instances"] if ti["task_id"] in WAIT_TASKS)
    return int(data["total_entries"]), waits, int(deferred["total_entries"])


def first_task_waits(client: ApiClient, dag_id: str) -> list[float]:
    waits = []
    for run in client.dag_runs(dag_id):
        tis = client.task_instances(dag_id, run["dag_run_id"])
        starts = [_ts(t.get("start_date")) for t in tis if t.get("start_date")]
        queued = _ts(run.get("queued_at")) or _ts(run.get("run_after"))
        if starts and queued:
            waits.append((min(s for s in starts if s) - queued).total_seconds())
    return waits


def attempt_overhead(client: ApiClient, dag_id: str) -> list[float]:
    """Per attempt DAG run: wall-clock minus the longest chain is hard to know; report the
    share of the run's duration not spent inside a task's own execution."""
    shares = []
    for run in client.dag_runs(dag_id):
        start, end = _ts(run.get("start_date")), _ts(run.get("end_date"))
        if not start or not end:
            continue
        tis = client.task_instances(dag_id, run["dag_run_id"])
        busy = sum(float(t.get("duration") or 0) for t in tis)
        wall = (end - start).total_seconds()
        if wall > 0:
            shares.append(max(0.0, wall - busy / 2) / wall)  # two cores
    return shares


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument(
        "--examples",
        nargs="+",
        default=["lint-failure", "transient-network"],
        help="names under examples/, or paths from the project root (bench/scenarios/...)",
    )
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--executor", choices=["standalone", "celery"], default="standalone")
    parser.add_argument("--provider", choices=["local", "github"], default="local")
    args = parser.parse_args(argv)
    print("DAG parse times:")
    for name, seconds in parse_times():
        print(f"  {name:<48} {seconds * 1000:7.1f} ms")
    dag_ids = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        home = Path(tmp)
        stack: Any
        trivial_id = ""
        if args.executor == "celery":
            from cicd_devkit.distributed import DistributedStack, missing_prerequisites

            missing = missing_prerequisites()
            if missing:
                print(
                    "the Celery set-up needs: "
                    + "; ".join(missing)
                    + " (see make test-distributed)"
                )
                return 2
            stack = DistributedStack(home, workers=2, worker_concurrency=4)
            local_root = stack.local_root
        else:
            attempt = runpy.run_path(str(PROJECT_ROOT / "dags" / f"{sessions.FIRST_DAG}.py"))
            trivial_id, path = write_trivial_dag(attempt["dag"], home / "extra-dags", paused=True)
            stack = AirflowStack(home, extra_dags=path.parent)
            local_root = home / "local-ci"
            dag_ids.append(trivial_id)
        print(f"\nexecutor: {args.executor}, provider: {args.provider}")
        stack.start()
        server = None
        try:
            client = stack.wait_ready(dag_ids)
            sessions.configure(client, LOAD_CONFIG)
            provider = LocalProvider(local_root)
            token = ""
            if args.provider == "github":
                token = "ghp_" + secrets.token_hex(18)  # a canary shaped like a real token
                server = GitHubServer(provider, token).start()
                client.request(
                    "POST",
                    "/api/v2/connections",
                    json={
                        "connection_id": "github_default",
                        "conn_type": "github",
                        "password": token,
                        "host": server.api_url,
                    },
                ).raise_for_status()
            run_load(client, provider, args)
            if trivial_id:
                floor_burst(client, trivial_id, args.sessions, args.timeout)
            if token:
                found = canary.find_token(
                    token,
                    home,
                    stack.env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
                    [Path(stack.env["CICD_WORKSPACE_DIR"])],
                )
                print(
                    "canary token (the GitHub credential): "
                    + ("found in " + "; ".join(found) if found else "in no file, table or report")
                )
        finally:
            if server is not None:
                server.stop()
            stack.stop()
    return 0


#: deliveries at once, as GitHub sends them (each on a connection of its own)
DELIVERY_THREADS = 8


def open_all(client: ApiClient, targets: list[tuple[str, Run]], kind: str) -> list[str]:
    """Open every session at once; returns their ids. GitHub's failures arrive as signed
    webhook deliveries, several at a time; the local provider's trigger each session's own
    DAG run through the REST API, one request after the other."""
    if kind != "github":
        return [
            sessions.open_session(client, repo, run.id, provider=kind, run=run, session_run=True)[0]
            for repo, run in targets
        ]
    secret = secrets.token_urlsafe(24)
    client.set_variable(SECRET_VARIABLE, secret, "GitHub webhook secret")
    with concurrent.futures.ThreadPoolExecutor(DELIVERY_THREADS) as pool:
        return list(
            pool.map(
                lambda target: sessions.deliver_failure(client.url, secret, target[1]), targets
            )
        )


def floor_burst(client: ApiClient, dag_id: str, n: int, timeout: float) -> None:
    """Airflow's own floor on the same Airflow: ``n`` runs at once of a DAG of exactly the
    attempt DAG's shape whose bodies return at once. The DAG is paused from its creation:
    the runs are made while no task runs (Airflow's REST API writes its audit log on the API
    server's event loop, which stalls on SQLite while tasks write) and start together when it
    is unpaused, once no DAG run of the sessions is left."""
    deadline = time.monotonic() + timeout
    while client.get("/dags/~/dagRuns", limit=1, state=["queued", "running"])["total_entries"]:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"DAG runs still active after {timeout}s")
        time.sleep(2)
    tag = secrets.token_hex(3)
    for i in range(n):
        client.trigger(dag_id, {}, run_id=f"floor-{tag}-{i}").raise_for_status()
    released = datetime.datetime.now(datetime.UTC)
    client.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in client.dag_runs(dag_id) if r["dag_run_id"].startswith(f"floor-{tag}")]
        if len(runs) == n and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(2)
    else:
        raise TimeoutError(f"{n} runs of {dag_id} not finished after {timeout}s")
    ends = [_ts(r["end_date"]) for r in runs]
    elapsed = (max(e for e in ends if e) - released).total_seconds()
    starts = []
    for run in runs:
        tis = client.task_instances(dag_id, run["dag_run_id"])
        first = min((t for t in (_ts(ti.get("start_date")) for ti in tis) if t), default=None)
        if first is not None:
            starts.append((first - released).total_seconds())
    print(
        f"floor, {n} runs at once of a DAG of the attempt's shape with bodies that return at "
        f"once: {n / (elapsed / 60):.1f} runs per minute ({elapsed:.0f}s for all); wait for "
        f"the first task: median {statistics.median(starts):.1f}s, max {max(starts):.1f}s"
    )


def run_load(client: ApiClient, provider: LocalProvider, args: Any) -> None:
    scenarios = [
        load_scenario(PROJECT_ROOT / n if "/" in n else PROJECT_ROOT / "examples" / n)
        for n in args.examples
    ]
    targets = []
    start = time.monotonic()
    for i in range(args.sessions):
        scenario = scenarios[i % len(scenarios)]
        made = materialize(scenario, provider, f"load/{scenario.name}-{i}")
        run = made.head_run
        if run is None or run.conclusion is None or run.conclusion.value == "success":
            run = fail_head_until_red(provider, made.repo, made.head_sha)
        targets.append((made.repo, run))
    print(f"\n{args.sessions} repositories made in {time.monotonic() - start:.0f}s")
    opened = time.monotonic()
    ids = open_all(client, targets, args.provider)
    print(f"{len(ids)} failures delivered in {time.monotonic() - opened:.1f}s")
    samples: list[tuple[int, int, int, int]] = []  # running, waits running, deferred, waiting
    final: dict[str, Any] = {}
    deadline = opened + args.timeout
    while time.monotonic() < deadline:
        final = {k: v for k, v in sessions.sessions(client).items() if k in set(ids)}
        waiting = sum(1 for s in final.values() if s.status in WAITING)
        samples.append((*sample_running(client), waiting))
        if len(final) == len(ids) and all(s.status is SessionStatus.CLOSED for s in final.values()):
            break
        time.sleep(2)
    elapsed = time.monotonic() - opened
    closed = [s for s in final.values() if s.status is SessionStatus.CLOSED]
    outcomes: dict[str, int] = {}
    for s in closed:
        outcomes[s.outcome.value] = outcomes.get(s.outcome.value, 0) + 1
    first = sessions.FIRST_DAG
    waits = first_task_waits(client, first)
    overhead = attempt_overhead(client, first)
    runs = client.dag_runs(first)
    print(
        f"sessions: {len(ids)} opened, {len(final)} created, {len(closed)} closed "
        f"({outcomes}); duplicates: {len(runs) - len(ids)}"
    )
    print(
        f"throughput: {len(closed) / (elapsed / 60):.1f} sessions per minute "
        f"({elapsed:.0f}s for all)"
    )
    if waits:
        print(
            f"wait for the first task: median {statistics.median(waits):.1f}s, "
            f"max {max(waits):.1f}s"
        )
    waited = [s for s in samples if s[3]]
    if waited:
        running = [s[0] for s in waited]
        print(
            f"while sessions waited on CI or a delay ({len(waited)} samples, up to "
            f"{max(s[3] for s in waited)} sessions waiting): running task instances median "
            f"{statistics.median(running):.0f}, max {max(running)}; of them waits: max "
            f"{max(s[1] for s in waited)}; deferred: max {max(s[2] for s in waited)}"
        )
    if overhead:
        print(
            f"attempt DAG runs: {statistics.median(overhead) * 100:.0f}% of the wall-clock "
            "is scheduling and task start-up (median)"
        )


if __name__ == "__main__":
    sys.exit(main())
