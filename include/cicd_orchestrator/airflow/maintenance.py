"""Retention of the session Variables: closed sessions that ended more than
``session_retention_days`` days ago are archived, then their Variables deleted.

The archive is one gzipped JSON-lines file per run under ``session_archive_dir``
(``sessions-<UTC time>.jsonl.gz``, one session's full state per line, as it was stored):
read it with ``zcat FILE | jq``. The file is complete on disk (written aside, synced, then
renamed) before any Variable is deleted, and a Variable is deleted only if it still holds
the text that was archived. Open sessions are never touched.

Listing every Variable needs Airflow's metadata database, which Airflow 3 keeps from task
code: the maintenance DAG runs this module as a command (``python -m
cicd_orchestrator.airflow.maintenance``), as ``airflow db clean`` is run, with the
database's configuration of the worker's environment."""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cicd_orchestrator.airflow import sessions_db
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE, MAINTENANCE_DAG_ID, SESSION_PREFIX
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.session.metrics import archivable, summarize

log = logging.getLogger(__name__)


@dataclass
class ArchiveResult:
    archive: str | None = None
    archived: list[str] = field(default_factory=list)
    kept_open: int = 0
    kept_recent: int = 0
    unreadable: list[str] = field(default_factory=list)
    changed_meanwhile: list[str] = field(default_factory=list)


def archive_sessions(
    rows: Iterable[sessions_db.Row],
    now: datetime.datetime,
    days: int,
    folder: Path,
    delete: Callable[[str, str], bool],
) -> ArchiveResult:
    """Archive the archivable sessions of ``rows`` into a new file under ``folder``, then
    ``delete(key, stored)`` each one (False: it changed since it was read, and stays)."""
    result = ArchiveResult()
    chosen: list[tuple[str, str, str]] = []
    for key, stored, read in rows:
        try:
            text = read()
            summary = summarize(sessions_db.parse_state(text))
        except Exception as exc:  # an unreadable session is reported and left alone
            result.unreadable.append(key)
            log.warning("session Variable %s does not read: %s", key, exc)
            continue
        if archivable(summary, now, days):
            chosen.append((key, stored, text))
        elif summary.closed:
            result.kept_recent += 1
        else:
            result.kept_open += 1
    if not chosen:
        return result
    path = _write_archive(folder, now, [text for _, _, text in chosen])
    result.archive = str(path)
    for key, stored, _ in chosen:
        if delete(key, stored):
            result.archived.append(key.removeprefix(SESSION_PREFIX))
        else:
            result.changed_meanwhile.append(key.removeprefix(SESSION_PREFIX))
    return result


def _write_archive(folder: Path, now: datetime.datetime, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sessions-{now.strftime('%Y%m%dT%H%M%S%fZ')}.jsonl.gz"
    partial = path.with_name(path.name + ".part")
    with partial.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb") as gz:
            for text in texts:
                line = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
                gz.write(line.encode() + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, path)
    return path


def read_archive(path: Path) -> list[dict[str, Any]]:
    """The sessions of an archive file, as stored."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------- the database
def _delete_variable(key: str, stored: str) -> bool:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as db:
        done = db.execute(delete(Variable).where(Variable.key == key, Variable._val == stored))
        return bool(getattr(done, "rowcount", 0))


def _config_text() -> str | None:
    from airflow.models.variable import Variable

    value = Variable.get(CONFIG_VARIABLE, default_var=None)
    return None if value is None else str(value)


def run(now: datetime.datetime | None = None) -> ArchiveResult:
    """One maintenance pass against Airflow's metadata database."""
    raw = _config_text()
    config = load_config(json.loads(raw) if raw else None)
    return archive_sessions(
        sessions_db.session_rows(),
        now or datetime.datetime.now(datetime.UTC),
        config.session_retention_days,
        config.archive_root(),
        _delete_variable,
    )


def archive_task() -> dict[str, Any]:
    """The maintenance DAG's task: :func:`run` as a command (with database access), its
    result as the task's XCom."""
    done = subprocess.run(
        [sys.executable, "-m", "cicd_orchestrator.airflow.maintenance"],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    sys.stderr.write(done.stderr[-20_000:])
    if done.returncode != 0:
        raise CicdError(f"archiving the old sessions failed ({done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    log.info(
        "archived %d session(s) into %s; kept %d open and %d recent",
        len(result["archived"]),
        result["archive"],
        result["kept_open"],
        result["kept_recent"],
    )
    return result


def build_maintenance_dag(doc_md: str | None = None, schedule: str = "@daily") -> Any:
    """The daily maintenance DAG: one task that archives the old sessions."""
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    with DAG(
        dag_id=MAINTENANCE_DAG_ID,
        description="Daily archive of the closed sessions past their retention",
        doc_md=doc_md,
        schedule=schedule,
        start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        catchup=False,
        max_active_runs=1,
        tags=["cicd-orchestrator", "maintenance"],
        default_args={
            "owner": "platform",
            "retries": 1,
            "retry_delay": datetime.timedelta(minutes=5),
        },
    ) as dag:
        PythonOperator(task_id="archive_old_sessions", python_callable=archive_task)
    return dag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    result = run()
    print(json.dumps(asdict(result), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
