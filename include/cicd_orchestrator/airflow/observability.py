"""The session metrics sent through Airflow's own metrics backend: StatsD, Datadog or
OpenTelemetry, as ``[metrics]`` of Airflow's configuration says (nothing when it is off).

What is sent is decided by :func:`cicd_orchestrator.session.metrics.stat_events`; this only
hands the events to ``airflow.sdk.observability.stats`` (initialised by Airflow in every
task process, the API server and the triggerer). A metrics backend that fails never fails
the save of a session."""

from __future__ import annotations

import datetime
import json
import logging

from cicd_orchestrator.models import SessionState
from cicd_orchestrator.serde import from_json_obj
from cicd_orchestrator.session.metrics import StatEvent, stat_events

log = logging.getLogger(__name__)


def send(events: list[StatEvent]) -> None:
    from airflow.sdk.observability import stats

    for event in events:
        if event.kind == "incr":
            stats.incr(event.name, count=int(event.value), tags=event.tags)
        else:
            stats.timing(event.name, datetime.timedelta(milliseconds=event.value), tags=event.tags)


def session_saved(before: str | None, after: SessionState) -> None:
    """Send what changed from the saved text ``before`` (None: a new session) to ``after``."""
    try:
        previous = from_json_obj(SessionState, json.loads(before)) if before else None
        send(stat_events(previous, after))
    except Exception:  # metrics are best effort: the session's state matters more
        log.warning("the metrics of session %s were not sent", after.session_id, exc_info=True)
