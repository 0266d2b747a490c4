"""Look for a credential everywhere a deployment writes: every file under its home (task logs,
process logs, the local CI's repositories and run logs) and its workspaces, which live apart,
and every text column of every table of the metadata database but ``connection`` (where the
credential is meant to be, encrypted). Used after load and fault runs with a canary token
configured as the GitHub credential: a leak anywhere is a finding."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: the one table allowed to hold the credential (Airflow encrypts it with the Fernet key)
CREDENTIAL_TABLES = {"connection"}
_CHUNK = 1 << 20


def _file_holds(path: Path, needle: bytes) -> bool:
    overlap = len(needle) - 1
    tail = b""
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                if needle in tail + chunk:
                    return True
                tail = chunk[-overlap:] if overlap else b""
    except OSError:
        return False
    return False


def files_holding(root: Path, token: str) -> list[str]:
    needle = token.encode()
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink() and _file_holds(path, needle):
                found.append(str(path))
    return found


def _rows_holding(rows: Iterator[tuple[Any, ...]], token: str) -> int:
    hits = 0
    for row in rows:
        for value in row:
            if isinstance(value, bytes | bytearray | memoryview):
                value = bytes(value).decode("utf-8", errors="replace")
            if value is not None and token in str(value):
                hits += 1
    return hits


def tables_holding_sqlite(db_path: Path, token: str) -> list[str]:
    found = []
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            if table in CREDENTIAL_TABLES:
                continue
            hits = _rows_holding(db.execute(f'SELECT * FROM "{table}"'), token)
            if hits:
                found.append(f"table {table}: {hits} values")
    return found


def tables_holding_postgres(dsn: str, token: str) -> list[str]:
    import psycopg2

    found = []
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [r[0] for r in cur.fetchall()]
        for table in tables:
            if table in CREDENTIAL_TABLES:
                continue
            cur.execute(f'SELECT * FROM "{table}"')
            hits = _rows_holding(iter(cur.fetchall()), token)
            if hits:
                found.append(f"table {table}: {hits} values")
    return found


def find_token(
    token: str,
    home: Path,
    sql_alchemy_conn: str | None = None,
    more_dirs: list[Path] | None = None,
) -> list[str]:
    """Where ``token`` was written: files under ``home`` (and ``more_dirs``) and rows of the
    metadata DB."""
    found = files_holding(home, token)
    for extra in more_dirs or []:
        if extra.is_dir():
            found += files_holding(extra, token)
    if sql_alchemy_conn and sql_alchemy_conn.startswith("postgresql"):
        dsn = sql_alchemy_conn.replace("postgresql+psycopg2://", "postgresql://", 1)
        found += tables_holding_postgres(dsn, token)
    elif (home / "airflow.db").exists():
        found += tables_holding_sqlite(home / "airflow.db", token)
    return found
