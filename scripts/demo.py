"""`make demo`: Airflow standalone, three example repositories whose CI fails, one session
each opened through the REST API, followed until every session is closed."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from pathlib import Path

from cicd_devkit import sessions
from cicd_devkit.airflow_stack import PROJECT_ROOT, AirflowStack, free_port
from cicd_devkit.scenarios import fail_head_until_red, list_scenarios, materialize

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import SessionStatus
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies

DEMO_CONFIG = {
    "delay_scale": 0.2,
    "ci_poll_interval": 2.0,
    "job_timeout_minutes": 5,
    # the demo alone may run where the command sandbox is unavailable (a laptop's container,
    # say): its tasks then warn loudly; a deployment keeps the default, required
    "command_sandbox": "auto",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=str(PROJECT_ROOT / ".airflow"))
    parser.add_argument("--examples", default=str(PROJECT_ROOT / "examples"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "0")))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--keep",
        type=float,
        default=None,
        help="seconds to keep Airflow up at the end (default: until Ctrl-C "
        "on a terminal, 0 otherwise)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    home = Path(args.home)
    stack = AirflowStack(home, port=args.port or _preferred_port())
    dag_ids = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
    print(f"Starting Airflow standalone (AIRFLOW_HOME={home}, log {stack.log_path}) ...")
    stack.start()
    try:
        client = stack.wait_ready(dag_ids)
        _banner(stack)
        sessions.configure(client, DEMO_CONFIG)
        provider = LocalProvider(home / "local-ci")
        opened = []
        for scenario in list_scenarios(args.examples):
            repo = f"demo/{scenario.name}-{int(time.time())}"
            print(f"Creating {repo}: {scenario.summary}")
            made = materialize(scenario, provider, repo)
            run = made.head_run
            if run is None or run.conclusion is None or run.conclusion.value == "success":
                run = fail_head_until_red(provider, repo, made.head_sha)
            print(f"  CI failed: run {run.id}, jobs {', '.join(j.name for j in run.failed_jobs)}")
            sid, status = sessions.open_session(client, repo, run.id, run=run)
            print(f"  session {sid} opened through the REST API (HTTP {status})")
            opened.append(sid)
        print("\nFollowing the sessions (state, attempt, strategy, outcome):")
        final = sessions.follow(client, opened, args.timeout, on_change=_print_change)
        _summary(final)
        _banner(stack)
        _linger(args.keep)
    finally:
        stack.stop()
    return 0


def _preferred_port() -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", 8080))
            return 8080
        except OSError:
            return free_port()


def _banner(stack: AirflowStack) -> None:
    print(f"\nAirflow UI: {stack.url}  (login: admin / {stack.password})")
    print("Sessions: Admin > Variables (cicd_session__*), DAG runs of the cicd_* DAGs\n")


def _print_change(state: SessionState) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {sessions.describe(state)}", flush=True)


def _summary(final: dict[str, SessionState]) -> None:
    print("\nReports:")
    for state in final.values():
        print("-" * 80)
        print(state.report)
    still_open = [s for s in final.values() if s.status is not SessionStatus.CLOSED]
    if still_open:
        print(f"{len(still_open)} session(s) still running; follow them in the UI.")


def _linger(keep: float | None) -> None:
    if keep is None:
        keep = float("inf") if sys.stdin.isatty() else 0
    if keep <= 0:
        return
    print(
        "Airflow keeps running; press Ctrl-C to stop."
        if keep == float("inf")
        else f"Airflow keeps running for {keep:.0f}s."
    )
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(keep if keep != float("inf") else 10**9)


if __name__ == "__main__":
    sys.exit(main())
