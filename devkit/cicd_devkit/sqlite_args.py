"""SQLAlchemy connect arguments for a local SQLite metadata database.

Several Airflow processes write the same SQLite file; a generous busy timeout makes a writer
wait for the lock instead of failing with "database is locked" after SQLite's 5 seconds.
Used through ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS`` by the local stack only.
"""

from __future__ import annotations

CONNECT_ARGS = {"timeout": 120, "check_same_thread": False}
