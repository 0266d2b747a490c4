"""`make bench-overhead`: an attempt DAG beside a trivial DAG of exactly its shape.

On one standalone Airflow (the set-up of ``make bench-load``) each round runs, one after the
other and nothing else running:

1. a real session on the lint-failure example (delays scaled as the tests scale them): its
   attempt DAG run (``cicd_attempt_1_standard_parallel_fixing``) from start to end, and the
   time from the failed CI run's end to the end of the ``publish`` task (the fix branch and
   pull request published); the session is followed until it closes;
2. a DAG of the attempt DAG's exact shape (the same task ids, TaskGroups, dependencies and
   trigger rules) whose task bodies return at once, generated from the product's DAG object
   into a DAG folder beside the project's, so that the two shapes cannot drift apart.

It prints the medians of the rounds, the ratio of the two wall-clocks and the issue's targets
beside them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import runpy
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_devkit import sessions
from cicd_devkit.airflow_stack import PROJECT_ROOT, TEST_CONFIG, AirflowStack, ApiClient
from cicd_devkit.dag_shape import write_trivial_dag
from cicd_devkit.scenarios import fail_head_until_red, materialize
from cicd_devkit.servers.github import GitHubServer

from cicd_orchestrator.airflow.names import attempt_run_id
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import SessionStatus
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies

ATTEMPT_DAG = sessions.FIRST_DAG
EXAMPLE = PROJECT_ROOT / "examples" / "lint-failure"
TARGET_RATIO = 1.3
TARGET_FIX_SECONDS = 30.0
FINISHED = ("success", "failed")


@dataclass
class Round:
    product: float  # the attempt DAG run's wall-clock, seconds
    trivial: float  # the trivial DAG run's
    to_published: float | None  # failed run's end to the publish task's end (None: no fix)
    product_state: str
    trivial_state: str
    outcome: str


def _ts(value: str | None) -> datetime.datetime:
    if not value:
        raise ValueError("a missing timestamp")
    stamp = datetime.datetime.fromisoformat(value)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)


def wait_run(client: ApiClient, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    """The DAG run once it finished (success or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        if run["state"] in FINISHED and run.get("end_date"):
            return dict(run)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{dag_id} run {run_id} still {run['state']} after {timeout}s")
        time.sleep(1.0)


def wall_clock(run: dict[str, Any]) -> float:
    return (_ts(run["end_date"]) - _ts(run["start_date"])).total_seconds()


def product_round(
    client: ApiClient, provider: LocalProvider, kind: str, n: int, timeout: float
) -> tuple[float, float | None, str, str]:
    """One session alone: (attempt wall-clock, failure to published or None when attempt 1
    published no fix, run state, outcome)."""
    repo = f"overhead/lint-failure-{n}-{secrets.token_hex(3)}"
    made = materialize(EXAMPLE, provider, repo)
    failed = made.head_run
    if failed is None or failed.conclusion is None or failed.conclusion.value == "success":
        failed = fail_head_until_red(provider, repo, made.head_sha)
    failed_at = _ts(failed.updated_at)
    sid, status = sessions.open_session(
        client, repo, failed.id, provider=kind, run=failed, session_run=True
    )
    if status >= 300:
        raise RuntimeError(f"opening the session answered HTTP {status}")
    # the session's own DAG run, triggered as the webhook triggers it
    run_id = attempt_run_id(sid, 1)
    run = wait_run(client, ATTEMPT_DAG, run_id, timeout)
    publish = next(
        t for t in client.task_instances(ATTEMPT_DAG, run_id) if t["task_id"] == "publish"
    )
    state = sessions.follow(client, [sid], timeout).get(sid)
    record = state.attempt_record(1) if state else None
    published = record.published if record else None
    fixed = publish.get("end_date") and published and (published.pull_request or published.branch)
    to_published = (_ts(publish["end_date"]) - failed_at).total_seconds() if fixed else None
    outcome = state.outcome.value if state and state.status is SessionStatus.CLOSED else "open"
    return wall_clock(run), to_published, str(run["state"]), outcome


def trivial_round(client: ApiClient, dag_id: str, n: int, timeout: float) -> tuple[float, str]:
    run_id = f"overhead-{n}-{secrets.token_hex(3)}"
    client.trigger(dag_id, {}, run_id=run_id).raise_for_status()
    run = wait_run(client, dag_id, run_id, timeout)
    return wall_clock(run), str(run["state"])


def github_front(client: ApiClient, provider: LocalProvider) -> GitHubServer:
    """The GitHub-compatible server in front of the local repositories, as GitHub's
    connection (as ``make bench-load --provider github`` sets it up)."""
    token = "ghp_" + secrets.token_hex(18)
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
    return server


def _seconds(value: float | None) -> str:
    return "no fix" if value is None else f"{value:.1f}"


def print_table(rounds: list[Round], provider: str) -> None:
    product = statistics.median(r.product for r in rounds)
    trivial = statistics.median(r.trivial for r in rounds)
    fixes = [r.to_published for r in rounds if r.to_published is not None]
    to_published = statistics.median(fixes) if fixes else float("nan")
    ratio = statistics.median(r.product / r.trivial for r in rounds)
    print(f"\nper round ({provider} provider):")
    print(f"  {'round':<6} {'attempt s':>10} {'trivial s':>10} {'ratio':>7} {'fail->pub s':>12}")
    for i, r in enumerate(rounds, 1):
        print(
            f"  {i:<6} {r.product:>10.1f} {r.trivial:>10.1f} {r.product / r.trivial:>7.2f} "
            f"{_seconds(r.to_published):>12}   ({r.product_state}/{r.trivial_state}, "
            f"session {r.outcome})"
        )
    print(f"\nmedians of {len(rounds)} rounds:")
    print(f"| measure | {'product':>9} | {'floor':>9} | target |")
    print("| --- | --- | --- | --- |")
    print(f"| attempt DAG run, s | {product:9.1f} | {trivial:9.1f} | - |")
    print(
        f"| attempt vs trivial DAG of the same shape | {ratio:8.2f}x | {1:8.2f}x | "
        f"<= {TARGET_RATIO}x {'(met)' if ratio <= TARGET_RATIO else '(not met)'} |"
    )
    print(
        f"| lint failure to published fix, s ({len(fixes)} of {len(rounds)} rounds) | "
        f"{to_published:9.1f} | - | "
        f"<= {TARGET_FIX_SECONDS:.0f} s "
        f"{'(met)' if to_published <= TARGET_FIX_SECONDS else '(not met)'} |"
    )
    print(
        "(ratio: median of the rounds' ratios; a round runs the two DAGs one after the other; "
        "no fix: attempt 1 published none)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--provider", choices=["local", "github"], default="local")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    product_dag = runpy.run_path(str(PROJECT_ROOT / "dags" / f"{ATTEMPT_DAG}.py"))["dag"]
    dag_ids = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        home = Path(tmp)
        trivial_id, path = write_trivial_dag(product_dag, home / "extra-dags")
        print(f"{trivial_id}: {len(product_dag.tasks)} tasks, the shape of {ATTEMPT_DAG}")
        # the runner tools of this environment when it names them (a worktree has none)
        tools = os.environ.get("CICD_RUNNER_TOOLS")
        extra = {"CICD_RUNNER_TOOLS": tools} if tools else None
        stack = AirflowStack(home, extra_env=extra, extra_dags=path.parent)
        stack.start()
        server = None
        try:
            client = stack.wait_ready([*dag_ids, trivial_id])
            sessions.configure(client, TEST_CONFIG)
            provider = LocalProvider(home / "local-ci")
            if args.provider == "github":
                server = github_front(client, provider)
            print(f"standalone Airflow, {args.provider} provider, delays scaled as the tests")
            rounds = []
            for n in range(1, args.runs + 1):
                product, to_published, product_state, outcome = product_round(
                    client, provider, args.provider, n, args.timeout
                )
                trivial, trivial_state = trivial_round(client, trivial_id, n, args.timeout)
                rounds.append(
                    Round(product, trivial, to_published, product_state, trivial_state, outcome)
                )
                print(
                    f"  round {n}: attempt {product:.1f}s, trivial {trivial:.1f}s, "
                    f"failure to published {_seconds(to_published)}s",
                    flush=True,
                )
            print_table(rounds, args.provider)
        finally:
            if server is not None:
                server.stop()
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
