"""Operator extra links of the orchestrator's tasks: the failing run, the pull request, the
issue of the task's session (computed when the task finishes, from the session state)."""

from __future__ import annotations

import contextlib
from typing import Any

from airflow.sdk import BaseOperatorLink

from cicd_orchestrator.models import SessionState

_REF_TASKS = ("open_session", "load_target")


def _session_of(ti: Any) -> SessionState | None:
    from cicd_orchestrator.airflow import state_store

    for task_id in _REF_TASKS:
        ref = None
        with contextlib.suppress(Exception):
            ref = ti.xcom_pull(task_ids=task_id)
        if isinstance(ref, dict) and ref.get("session_id"):
            with contextlib.suppress(KeyError):
                return state_store.load_session(ref["session_id"])
    return None


def _browsable(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else ""


class FailedRunLink(BaseOperatorLink):
    name = "Failing CI run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        state = _session_of(ti_key)
        return _browsable(state.links.failed_run) if state else ""


class PullRequestLink(BaseOperatorLink):
    name = "Pull request"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        state = _session_of(ti_key)
        return (
            _browsable(state.links.pull_requests[-1]) if state and state.links.pull_requests else ""
        )


class IssueLink(BaseOperatorLink):
    name = "Escalation issue"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        state = _session_of(ti_key)
        return _browsable(state.links.issues[-1]) if state and state.links.issues else ""


SESSION_LINKS = (FailedRunLink(), PullRequestLink(), IssueLink())
