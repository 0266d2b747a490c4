"""Benchmark of the sessions page and the metrics endpoint with 10,000 sessions.

    .venv/bin/python bench/bench_pages.py [--sessions 10000] [--requests 5]

Makes a metadata database of its own (SQLite, ``airflow db migrate``, Variables encrypted
with a Fernet key as in a deployment), stores ``--sessions`` sessions in it as the state
store does (each with attempts, repairs and a report: a few KB), and requests the pages
through the plugin's FastAPI app, in one run side by side with the baseline: the former
sessions page, which loaded every session Variable as an ORM object (decrypting it),
parsed every state and rendered them all on one page.

Figures: the first request (every session parsed), then the median of ``--requests``
requests (the summaries cache: only the sessions saved since are parsed again), and the
same after 1% of the sessions were saved again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))


def _environment(home: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }


def _migrate(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=900,
    )
    return time.perf_counter() - started


def make_session(i: int, rng: random.Random) -> Any:
    """A closed or open session with one to five attempts, each with repairs and timings."""
    from cicd_devkit.builders import failure, new_state

    from cicd_orchestrator.constants import (
        AttemptStatus,
        Conclusion,
        FailureCategory,
        Outcome,
        RepairKind,
        SessionStatus,
        Strategy,
    )
    from cicd_orchestrator.models import AttemptRecord, Published, Repair

    state = new_state()
    state.session_id = f"bench-{i:05d}"
    state.repository = f"acme/service-{i % 200}"
    state.branch = rng.choice(["main", "release/2.1", "feature/x"])
    state.pipeline_id = 1000 + i
    day = rng.randint(0, 59)
    state.start_time = (
        f"2026-{1 + day // 30:02d}-{1 + day % 30:02d}T{rng.randint(0, 23):02d}:00:00+00:00"
    )
    category = rng.choice(list(FailureCategory))
    state.failures = [failure(category=category, job=f"job-{j}") for j in range(rng.randint(1, 4))]
    attempts = rng.randint(1, 5)
    strategies = list(Strategy)
    for n in range(1, attempts + 1):
        green = n == attempts and rng.random() < 0.7
        fixer = rng.choice(["lint", "format", "deps", "rerun", "config", "revert"])
        state.attempt_history.append(
            AttemptRecord(
                attempt=n,
                strategy=strategies[n - 1],
                status=AttemptStatus.CI_GREEN if green else AttemptStatus.CI_FAILED,
                repairs=[
                    Repair(
                        fixer=fixer,
                        kind=RepairKind.CHANGE,
                        category=category,
                        description="a repair " * 20,
                        patch="--- a/x\n+++ b/x\n" + "+line\n" * 40,
                    )
                ],
                published=Published(kind=RepairKind.CHANGE, branch=f"cicd-fix/{i}-{n}"),
                ci_conclusion=Conclusion.SUCCESS if green else Conclusion.FAILURE,
                stage_timings={"discovery": 3.2, "classification": 0.4, "fixing": 12.0},
            )
        )
    state.current_attempt = attempts
    if rng.random() < 0.9:
        green = state.attempt_history[-1].ci_conclusion is Conclusion.SUCCESS
        state.status = SessionStatus.CLOSED
        state.outcome = Outcome.FIXED if green else Outcome.ESCALATED
        state.end_time = state.start_time.replace(":00:00+", f":{rng.randint(5, 59):02d}:00+")
    state.links.failed_run = f"https://github.com/{state.repository}/actions/runs/{1000 + i}"
    state.report = "## CI/CD orchestration report\n" + "a line of the report\n" * 60
    return state


def store(states: list[Any]) -> float:
    """Insert the sessions as Variables (encrypted), as the state store saves them."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    from cicd_orchestrator.airflow.state_store import session_key
    from cicd_orchestrator.serde import to_json_obj

    started = time.perf_counter()
    with create_session() as db:
        for state in states:
            db.add(Variable(key=session_key(state.session_id), val=json.dumps(to_json_obj(state))))
    return time.perf_counter() - started


def resave(states: list[Any], share: float, rng: random.Random) -> int:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from cicd_orchestrator.airflow.state_store import session_key
    from cicd_orchestrator.serde import to_json_obj

    chosen = rng.sample(states, max(1, int(len(states) * share)))
    with create_session() as db:
        for state in chosen:
            state.version += 1
            row = db.scalars(
                select(Variable).where(Variable.key == session_key(state.session_id))
            ).one()
            row.val = json.dumps(to_json_obj(state))
    return len(chosen)


def baseline_page() -> str:
    """The former sessions page: every Variable as an ORM object, every state parsed, one
    page with every session."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from cicd_orchestrator.airflow import pages
    from cicd_orchestrator.airflow.names import SESSION_PREFIX
    from cicd_orchestrator.airflow.sessions_db import parse_state
    from cicd_orchestrator.session.metrics import summarize

    with create_session() as db:
        rows = db.scalars(select(Variable).where(Variable.key.startswith(SESSION_PREFIX)))
        summaries = [summarize(parse_state(row.val)) for row in rows]
    rows_all = pages.select_sessions(summaries, page_size=pages.MAX_PAGE_SIZE)
    listing = pages.Listing(
        sorted(summaries, key=lambda s: s.start_time or ""), rows_all.total, 1, len(summaries)
    )
    return pages.render_sessions(listing)


@contextlib.contextmanager
def client() -> Iterator[Any]:
    from airflow.api_fastapi import app as airflow_app
    from fastapi.testclient import TestClient

    from cicd_orchestrator.airflow import plugin_app

    class Everyone:
        def is_authorized_dag(self, **kwargs: Any) -> bool:
            return True

    airflow_app.get_auth_manager = lambda: Everyone()
    app = plugin_app.create_app()
    app.dependency_overrides[plugin_app._get_user()] = lambda: object()
    with TestClient(app) as c:
        yield c


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def main() -> int:
    from cicd_orchestrator.airflow import plugin_app
    from cicd_orchestrator.serde import to_json_obj

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(15)
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        home = Path(tmp)
        env = _environment(home)
        os.environ.update(env)
        print(f"airflow db migrate: {_migrate(env):.1f}s")
        states = [make_session(i, rng) for i in range(args.sessions)]
        size = statistics.mean(len(json.dumps(to_json_obj(s))) for s in states[:100])
        seconds = store(states)
        print(
            f"{args.sessions} sessions stored in {seconds:.1f}s (about {size / 1024:.1f} KB each)"
        )
        with client() as c:

            def get(path: str) -> Callable[[], Any]:
                def call() -> Any:
                    answer = c.get(path)
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                    return answer

                return call

            rows: list[tuple[str, float, float | None]] = []
            first, answer = timed(get("/sessions"))
            assert f"of {args.sessions} session(s)" in answer.text
            base_first, base_text = timed(baseline_page)
            rows.append(("sessions page, first request", first, base_first))
            warm = statistics.median(timed(get("/sessions"))[0] for _ in range(args.requests))
            base_warm = statistics.median(
                timed(baseline_page)[0] for _ in range(max(1, args.requests // 2))
            )
            rows.append((f"sessions page, median of {args.requests}", warm, base_warm))
            deep = statistics.median(
                timed(get("/sessions?page=150&repository=service-1"))[0]
                for _ in range(args.requests)
            )
            rows.append(("sessions page 150, filtered", deep, None))
            metrics_json = statistics.median(
                timed(get("/api/metrics"))[0] for _ in range(args.requests)
            )
            rows.append(("metrics JSON, median", metrics_json, None))
            metrics_page = statistics.median(
                timed(get("/metrics"))[0] for _ in range(args.requests)
            )
            rows.append(("metrics page, median", metrics_page, None))
            changed = resave(states, 0.01, rng)
            after, _ = timed(get("/sessions"))
            rows.append((f"sessions page after {changed} saves", after, None))
            page_kb = len(answer.content) / 1024
        print(f"\n{'':38}{'paginated + cache':>18}{'baseline (before)':>20}")
        for name, ours, base in rows:
            print(f"{name:<38}{_ms(ours):>18}{_ms(base) if base is not None else '-':>20}")
        base_kb = len(base_text) / 1024
        print(
            f"\npage: {page_kb:.0f} KB (50 rows); baseline {base_kb:.0f} KB ({args.sessions} rows)"
        )
        print(f"summaries cached: {len(plugin_app.summaries_cache._known)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
