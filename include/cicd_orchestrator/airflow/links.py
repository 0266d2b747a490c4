"""Operator extra links of the orchestrator's tasks: the failing run, the pull request, the
issue of the task's session (computed when the task finishes, from the session state the task
read or saved: no request to Airflow for the links of a task that read its session)."""

from __future__ import annotations

import contextlib
from typing import Any

from airflow.sdk import BaseOperatorLink

from cicd_orchestrator.models import SessionState

_REF_TASKS = ("open_session", "load_target")


def _session_id(operator: Any, ti: Any) -> str | None:
    """The task's session: from its rendered arguments (the ticket, the monitor's target),
    else from the output of the task that made the session or the target."""
    for value in (getattr(operator, "op_kwargs", None) or {}).values():
        if isinstance(value, dict) and value.get("session_id"):
            return str(value["session_id"])
    for task_id in _REF_TASKS:
        ref = None
        with contextlib.suppress(Exception):
            ref = ti.xcom_pull(task_ids=task_id)
        if isinstance(ref, dict) and ref.get("session_id"):
            return str(ref["session_id"])
    return None


def _session_of(operator: Any, ti: Any) -> SessionState | None:
    from cicd_orchestrator.airflow import state_store

    session_id = _session_id(operator, ti)
    if session_id is None:
        return None
    seen = state_store.seen_session()
    if seen is not None and seen.session_id == session_id:
        return seen  # what the task itself read or saved: no request
    with contextlib.suppress(KeyError):
        return state_store.load_session(session_id)
    return None


def _browsable(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else ""


class FailedRunLink(BaseOperatorLink):
    name = "Failing CI run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        state = _session_of(operator, ti_key)
        return _browsable(state.links.failed_run) if state else ""


class PullRequestLink(BaseOperatorLink):
    name = "Pull request"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        state = _session_of(operator, ti_key)
        return (
            _browsable(state.links.pull_requests[-1]) if state and state.links.pull_requests else ""
        )


class IssueLink(BaseOperatorLink):
    name = "Escalation issue"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        state = _session_of(operator, ti_key)
        return _browsable(state.links.issues[-1]) if state and state.links.issues else ""


SESSION_LINKS = (FailedRunLink(), PullRequestLink(), IssueLink())
