"""`make bench-fixrate SCENARIOS="<dir> ..."`: the fix rate on scenario folders.

Each argument is a scenario folder or a folder of them. Every scenario is materialised as a
repository of the local CI provider, CI fails on its head (a flaky head is re-run until it
fails), a session is opened through Airflow's REST API (its own Airflow on a temporary home,
unless AIRFLOW_URL names a running one whose local CI root is CICD_LOCAL_ROOT), the sessions
run concurrently with delays scaled down, and one JSON line per scenario goes to
bench/results/fixrate.jsonl; a table and the totals are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cicd_devkit import sessions
from cicd_devkit.airflow_stack import PROJECT_ROOT, AirflowStack, ApiClient
from cicd_devkit.mirrors import job_mirror_env
from cicd_devkit.scenarios import (
    MaterializedScenario,
    Scenario,
    fail_head_until_red,
    list_scenarios,
    load_scenario,
    materialize,
)

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion, SessionStatus
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.session import primary_category
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, load_strategies

BENCH_CONFIG = {"delay_scale": 0.02, "ci_poll_interval": 50.0, "job_timeout_minutes": 10}
RESULTS = PROJECT_ROOT / "bench" / "results" / "fixrate.jsonl"
#: the verdict on a scenario whose expected repair needs an LLM connection, run without one,
#: that ended safely (escalated or rolled back, no protected branch touched)
NO_LLM = "no-llm"
REPORTS = RESULTS.parent / "reports"


def find_scenarios(paths: list[str]) -> list[Scenario]:
    found: list[Scenario] = []
    for raw in paths:
        path = Path(raw)
        if (path / "scenario.yaml").is_file():
            found.append(load_scenario(path))
        elif path.is_dir():
            found.extend(list_scenarios(path))
        else:
            raise SystemExit(f"not a scenario folder nor a folder of them: {raw}")
    return found


def prepare(provider: LocalProvider, scenario: Scenario, stamp: str) -> dict[str, Any]:
    repo = f"bench/{scenario.name}-{stamp}"
    if provider_has(provider, repo):
        repo = f"{repo}-{len(provider.repositories())}"
    made = materialize(scenario, provider, repo, timeout=900)
    run = made.head_run
    if run is None or run.conclusion not in (Conclusion.FAILURE, Conclusion.TIMED_OUT):
        run = fail_head_until_red(provider, repo, made.head_sha, max_tries=20, timeout=900)
    return {"made": made, "run_id": run.id, "calls_before": provider_calls(provider, repo)}


def provider_has(provider: LocalProvider, repo: str) -> bool:
    return repo in provider.repositories()


def provider_calls(provider: LocalProvider, repo: str) -> int:
    counter = getattr(provider, "call_count", None)
    return int(counter(repo)) if callable(counter) else 0


def protected_touched(provider: LocalProvider, made: MaterializedScenario) -> bool:
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
        cwd=provider.repo_path(made.repo),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    heads = dict(line.split(" ", 1) for line in refs if line.strip())
    if heads.get("main") != made.head_sha:
        return True
    patterns = ("main", "master", "release/", "production")
    return any(b != "main" and b.startswith(patterns) for b in heads)


def result_line(
    scenario: Scenario,
    prep: dict[str, Any],
    state: SessionState | None,
    provider: LocalProvider,
    seconds: float,
) -> dict[str, Any]:
    made: MaterializedScenario = prep["made"]
    expected_culprit = dict(made.commits).get(scenario.culprit) if scenario.culprit else None
    outcome = state.outcome.value if state and state.status is SessionStatus.CLOSED else "open"
    culprit = state.context.culprit_sha if state and state.context else None
    touched = protected_touched(provider, made)
    by = scenario.expect.by_attempt
    attempt = state.current_attempt if state else 0
    ok: bool | str = (
        outcome == scenario.expect.outcome.value and attempt <= (by or 99) and not touched
    )
    if "llm" in scenario.requires and not BENCH_CONFIG.get("llm_conn_id") and not ok:
        # its expected repair is the LLM fixer's; without one it must still end safely
        ok = NO_LLM if outcome in ("escalated", "rolled_back") and not touched else False
    return {
        "name": scenario.name,
        "expected_outcome": scenario.expect.outcome.value,
        "expected_by_attempt": by,
        "outcome": outcome,
        "attempt": attempt,
        "category": primary_category(state).value if state else None,
        "expected_category": scenario.category.value if scenario.category else None,
        "culprit_sha": culprit,
        "culprit_matches": (culprit == expected_culprit) if expected_culprit else None,
        "seconds": round(seconds, 1),
        "provider_calls": provider_calls(provider, made.repo) - prep["calls_before"],
        "protected_branch_touched": touched,
        "ok": ok,
    }


def run_bench(
    client: ApiClient, provider: LocalProvider, scenarios: list[Scenario], timeout: float
) -> list[dict[str, Any]]:
    stamp = time.strftime("%H%M%S")
    preps = [prepare(provider, s, stamp) for s in scenarios]
    started: dict[str, float] = {}
    ids: dict[int, str] = {}
    for scenario, prep in zip(scenarios, preps, strict=True):
        sid, status = sessions.open_session(client, prep["made"].repo, prep["run_id"])
        print(f"{scenario.name}: session {sid} (HTTP {status})", flush=True)
        ids[id(scenario)] = sid
        started[sid] = time.monotonic()
    ended: dict[str, float] = {}

    def on_change(state: SessionState) -> None:
        print(f"  {time.strftime('%H:%M:%S')} {sessions.describe(state)}", flush=True)
        if state.status is SessionStatus.CLOSED:
            ended.setdefault(state.session_id, time.monotonic())

    final = sessions.follow(client, ids.values(), timeout, on_change=on_change, poll=3)
    REPORTS.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios:
        state = final.get(ids[id(scenario)])
        if state is not None:
            (REPORTS / f"{scenario.name}.md").write_text(state.report)
    lines = []
    for scenario, prep in zip(scenarios, preps, strict=True):
        sid = ids[id(scenario)]
        seconds = ended.get(sid, time.monotonic()) - started[sid]
        lines.append(result_line(scenario, prep, final.get(sid), provider, seconds))
    return lines


def print_table(lines: list[dict[str, Any]]) -> None:
    cols = [
        "name",
        "expected_outcome",
        "expected_by_attempt",
        "outcome",
        "attempt",
        "category",
        "culprit_matches",
        "seconds",
        "provider_calls",
        "protected_branch_touched",
        "ok",
    ]
    widths = {c: max(len(c), *(len(str(line[c])) for line in lines)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for line in lines:
        print("  ".join(str(line[c]).ljust(widths[c]) for c in cols))
    ok = sum(1 for line in lines if line["ok"] is True)
    no_llm = sum(1 for line in lines if line["ok"] == NO_LLM)
    print(
        f"\n{ok}/{len(lines)} scenarios reached their expected outcome by the expected "
        f"attempt; {sum(1 for x in lines if x['protected_branch_touched'])} touched a "
        "protected branch."
        + (
            f" {no_llm} expect the LLM fixer's repair and ran without an LLM connection: "
            f"they ended safely ({NO_LLM})."
            if no_llm
            else ""
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenarios", nargs="+")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    scenarios = find_scenarios(args.scenarios)
    print(f"{len(scenarios)} scenario(s)")
    for key, value in job_mirror_env().items():  # jobs install from this machine's mirror
        os.environ.setdefault(key, value)
    dag_ids = [s.dag_id for s in load_strategies().values()] + [MONITOR_DAG_ID, SWEEP_DAG_ID]
    with contextlib.ExitStack() as stack_ctx:
        if os.environ.get("AIRFLOW_URL"):
            client = ApiClient(
                os.environ["AIRFLOW_URL"],
                os.environ.get("AIRFLOW_USER", "admin"),
                os.environ["AIRFLOW_PASSWORD"],
            )
            root = Path(os.environ["CICD_LOCAL_ROOT"])
        else:
            home = Path(stack_ctx.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
            stack = AirflowStack(home)
            stack.start()
            stack_ctx.callback(stack.stop)
            print(f"Airflow on {stack.url} (home {home})", flush=True)
            client = stack.wait_ready(dag_ids)
            root = home / "local-ci"
        sessions.configure(client, BENCH_CONFIG)
        provider = LocalProvider(root)
        lines = run_bench(client, provider, scenarios, args.timeout)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("w") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    print()
    print_table(lines)
    print(f"\nwritten: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
