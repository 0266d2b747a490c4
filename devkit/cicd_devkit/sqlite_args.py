"""SQLAlchemy connect arguments for a local SQLite metadata database.

Several Airflow processes write the same SQLite file: a busy timeout makes a writer wait for
the lock instead of failing with "database is locked" at once. It is kept short, because the
API server can wait on itself: its REST audit log commits on the event loop, while a write of
the execution API, which holds the lock, needs that loop to finish. Everything that writes the
database then stands still until the timeout ends the wait (the REST call fails with a 500 and
is retried). The other writers hold the lock for milliseconds.
Used through ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS`` by the local stack only.
"""

from __future__ import annotations

#: seconds a writer waits for the lock
BUSY_TIMEOUT = 15

CONNECT_ARGS = {"timeout": BUSY_TIMEOUT, "check_same_thread": False}
