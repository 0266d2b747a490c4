"""Keeping people informed as a session goes: the status of the failing commit, the live
report comments and the escalation issue (``publish.feedback``), and the notifications of
escalation and rollback (``airflow.notify``). Best effort: nothing here fails a task."""

from __future__ import annotations

import logging

from cicd_orchestrator.airflow import notify, runtime
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.publish.feedback import Audience, post_feedback
from cicd_orchestrator.publish.markers import signing_key
from cicd_orchestrator.publish.text import session_url
from cicd_orchestrator.redact import redact

log = logging.getLogger(__name__)


def inform(
    state: SessionState, config: OrchestratorConfig, *, notify_people: bool = True
) -> list[str]:
    """Bring what people see up to date with ``state``, and send the notices due unless
    ``notify_people`` is false (``state`` remembers them: save it afterwards); what could not
    be done, as notes (logged)."""
    base_url = config.airflow_base_url or runtime.airflow_base_url()
    try:
        provider = runtime.provider_for(state.provider, config)
        key = signing_key(config.marker_key, runtime.deployment_secret())
        notes = post_feedback(Audience(provider, key, base_url), state)
    except Exception as exc:  # the providers' own errors are CicdErrors; a client's may not be
        why = str(exc) if isinstance(exc, CicdError) else f"{type(exc).__name__}: {exc}"
        log.warning("no feedback for session %s: %s", state.session_id, redact(why))
        notes = [f"no feedback: {redact(why)}"]
    if notify_people:
        notes.extend(notify.send_due(state, config, session_url(base_url, state.session_id)))
    return notes
