"""Retention of the session Variables: closed sessions that ended more than
``session_retention_days`` days ago are archived, then their Variables deleted.

The archive is one gzipped JSON-lines file per run under ``session_archive_dir``
(``sessions-<UTC time>.jsonl.gz``, one session's full state per line, as it was stored):
read it with ``zcat FILE | jq``. The file is complete on disk (written aside, synced, then
renamed) before any Variable is deleted, and a Variable is deleted only if it still holds
the text that was archived. Open sessions are never touched.

The task lists the session Variables through the Task SDK (``Variable.keys``: the execution
API, as every task reads Variables; Airflow 3 keeps tasks off the metadata database)."""

from __future__ import annotations

import datetime
import gzip
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cicd_orchestrator.airflow import sessions_db, state_store
from cicd_orchestrator.airflow.names import MAINTENANCE_DAG_ID, SESSION_PREFIX
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


# --------------------------------------------------------------------------- in the task
def _variable() -> Any:
    from airflow.sdk import Variable

    return Variable


def _task_rows() -> list[sessions_db.Row]:
    """Every session Variable, through the Task SDK (the execution API lists the keys)."""
    variable = _variable()
    rows: list[sessions_db.Row] = []
    for key in list(variable.keys(prefix=SESSION_PREFIX)):
        text = variable.get(key, default=None)
        if text is not None:
            rows.append(sessions_db.text_row(key, str(text)))
    return rows


def _delete_unchanged(key: str, stored: str) -> bool:
    """Delete the Variable when it still holds ``stored`` (not saved again since)."""
    variable = _variable()
    if variable.get(key, default=None) != stored:
        return False
    variable.delete(key)
    return True


def archive_task() -> dict[str, Any]:
    """The maintenance DAG's task: archive the sessions past their retention; the result
    (what was archived where, what stayed) is its XCom."""
    config = state_store.load_orchestrator_config()
    result = archive_sessions(
        _task_rows(),
        datetime.datetime.now(datetime.UTC),
        config.session_retention_days,
        config.archive_root(),
        _delete_unchanged,
    )
    log.info(
        "archived %d session(s) into %s; kept %d open and %d recent; %d unreadable",
        len(result.archived),
        result.archive,
        result.kept_open,
        result.kept_recent,
        len(result.unreadable),
    )
    return asdict(result)


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
            "retry_delay": datetime.timedelta(minutes=1),
        },
    ) as dag:
        PythonOperator(task_id="archive_old_sessions", python_callable=archive_task)
    return dag
