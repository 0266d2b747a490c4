"""Every session's Variable, read from Airflow's metadata database: for the pages (in the API
server) and the maintenance command. Never from a task: Airflow 3 keeps tasks off the
database, and they read one session at a time through ``state_store``.

A page asks for the summaries of 10,000 sessions on every request: :class:`SummaryCache`
keeps each session's summary beside the stored (encrypted) text it came from, so only the
sessions saved since the last request are decrypted and parsed again."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable

from cicd_orchestrator.airflow.names import SESSION_PREFIX
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.serde import from_json_obj
from cicd_orchestrator.session.metrics import SessionSummary, summarize

log = logging.getLogger(__name__)


#: (key, fingerprint of the stored text, a function that returns the plain text)
Row = tuple[str, str, Callable[[], str]]


def session_rows() -> list[Row]:
    """The session Variables: their key, their stored text as the fingerprint (encrypted
    when Airflow encrypts Variables) and how to read their value. Columns, not ORM objects:
    loading a Variable object decrypts its value at once."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(Variable.key, Variable._val, Variable.is_encrypted).where(
        Variable.key.startswith(SESSION_PREFIX)
    )
    with create_session() as db:
        return [
            (key, stored or "", _reader(stored or "", bool(enc)))
            for key, stored, enc in db.execute(query)
        ]


def _reader(stored: str, encrypted: bool) -> Callable[[], str]:
    def read() -> str:
        if not encrypted:
            return stored
        from airflow.models.crypto import get_fernet

        return str(get_fernet().decrypt(stored.encode()).decode())

    return read


def text_row(key: str, text: str) -> Row:
    """A row whose plain text is at hand (its own fingerprint)."""
    return key, text, lambda: text


def parse_state(text: str) -> SessionState:
    return from_json_obj(SessionState, json.loads(text))


class SummaryCache:
    """Summaries of the stored sessions, parsed again only when their stored text changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, SessionSummary | None]] = {}

    def summaries(self, rows: Iterable[Row]) -> list[SessionSummary]:
        with self._lock:
            known, fresh = self._known, {}
            for key, stored, read in rows:
                cached = known.get(key)
                if cached is not None and cached[0] == stored:
                    fresh[key] = cached
                    continue
                fresh[key] = (stored, _summary(key, read))
            self._known = fresh
            return [s for _, s in fresh.values() if s is not None]


def _summary(key: str, read: Callable[[], str]) -> SessionSummary | None:
    try:
        return summarize(parse_state(read()))
    except Exception as exc:  # undecryptable or unparsable: it never hides the others
        log.warning("session Variable %s does not read: %s", key, exc)
        return None


def session_text(session_id: str) -> str | None:
    """The stored state of one session (decrypted), None when there is none."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(Variable.key, Variable._val, Variable.is_encrypted).where(
        Variable.key == SESSION_PREFIX + session_id
    )
    with create_session() as db:
        found = db.execute(query).first()
    if found is None or found[1] is None:
        return None
    return _reader(found[1], bool(found[2]))()
