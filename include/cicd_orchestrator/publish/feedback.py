"""Feedback where people look, kept current while a session runs: a commit status on the
failing commit (so on its pull request) that says what the orchestrator is doing and links the
session's page, the report comment on each fix pull request (and on the failing pull request)
edited in place at every step, and the escalation issue told what happened after it was
opened.

Everything here is best effort: a hosting that refuses is logged and noted, and the session
goes on. An edit finds its comment by its signed marker among the comments the orchestrator
wrote (``CIProvider.comment``); without a marker key nothing can be found again, so only the
status (which a hosting keeps one of per context) is written then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.constants import (
    SESSION_STATUS_CONTEXT,
    CombinedState,
    Outcome,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.models import AttemptRecord, Issue, Published, SessionState
from cicd_orchestrator.publish.markers import marker
from cicd_orchestrator.publish.text import safe_text, session_url
from cicd_orchestrator.report import render_report

log = logging.getLogger(__name__)

#: what a strategy is called in a status (a status' description is short: 140 characters)
STRATEGY_WORDS = {
    Strategy.STANDARD_PARALLEL_FIXING: "standard parallel fixing",
    Strategy.EXTENDED_ANALYSIS: "extended analysis",
    Strategy.SEQUENTIAL_FIXING: "sequential fixing",
    Strategy.MANUAL_INTERVENTION: "manual intervention preparation",
    Strategy.EMERGENCY_ROLLBACK: "emergency rollback preparation",
}
_CLOSED_STATES = {
    Outcome.FIXED: CombinedState.SUCCESS,
    Outcome.RERUN_GREEN: CombinedState.SUCCESS,
    Outcome.ALREADY_GREEN: CombinedState.SUCCESS,
    Outcome.ROLLED_BACK: CombinedState.SUCCESS,
}


@dataclass(frozen=True)
class Audience:
    """Where the feedback of a session goes: the provider, the key of the markers, and
    Airflow's base URL (the link to the session's page; None when unknown)."""

    provider: CIProvider
    key: bytes | None
    base_url: str | None


# --------------------------------------------------------------------------- the status
def _pr(published: Published | None) -> str:
    pr = published.pull_request if published else None
    return f"#{pr.number}" if pr else ""


def _issue_of(state: SessionState) -> tuple[int, Issue] | None:
    """The escalation issue of the session and the attempt that opened it."""
    for rec in state.attempt_history:
        if rec.published and rec.published.issue:
            return rec.attempt, rec.published.issue
    return None


def _last_fix(state: SessionState) -> str:
    for rec in reversed(state.attempt_history):
        shown = _pr(rec.published)
        if shown:
            return shown
    return ""


def _closed(state: SessionState) -> tuple[CombinedState, str]:
    issue = _issue_of(state)
    fix = _last_fix(state)
    texts = {
        Outcome.FIXED: f"fixed: the fix in {fix} is green" if fix else "fixed",
        Outcome.RERUN_GREEN: "fixed: the failed jobs passed when re-run",
        Outcome.ALREADY_GREEN: "CI is green again without a repair",
        Outcome.ROLLED_BACK: f"rolled back: merge the revert in {fix}" if fix else "rolled back",
    }
    text = texts.get(state.outcome)
    if text is None:
        text = (
            f"handed over in issue #{issue[1].number}"
            if issue
            else f"not repaired after {state.current_attempt} attempt(s): see the session"
        )
    return _CLOSED_STATES.get(state.outcome, CombinedState.FAILURE), text


def _waiting(record: AttemptRecord) -> str:
    published = record.published
    if published is None or published.kind is RepairKind.NONE:
        return "nothing to publish, escalating"
    if published.kind is RepairKind.RERUN:
        return "failed jobs re-run, waiting for CI"
    if published.kind is RepairKind.ISSUE and published.issue:
        return f"handed over in issue #{published.issue.number}"
    shown = _pr(published)
    return f"fix published in {shown}, waiting for CI" if shown else "waiting for CI"


def describe(state: SessionState) -> tuple[CombinedState, str]:
    """The status of the failing commit: what the session is doing (pure; no text from the
    repository in it, only numbers and the orchestrator's own words)."""
    if state.status is SessionStatus.CLOSED:
        return _closed(state)
    n, of = state.current_attempt, state.max_attempts
    record = state.attempt_record(n)
    if record is None or state.status in (SessionStatus.OPEN, SessionStatus.RUNNING_ATTEMPT):
        words = STRATEGY_WORDS.get(state.current_strategy) if state.current_strategy else None
        return CombinedState.PENDING, f"attempt {max(n, 1)} of {of}: {words or 'starting'}"
    if state.status is SessionStatus.WAITING_TO_ESCALATE:
        return CombinedState.PENDING, f"attempt {n} of {of} did not turn CI green: escalating"
    return CombinedState.PENDING, f"attempt {n} of {of}: {_waiting(record)}"


def set_session_status(audience: Audience, state: SessionState) -> list[str]:
    """The status ``cicd-orchestrator/session`` on the failing commit."""
    combined, text = describe(state)
    audience.provider.set_commit_status(
        state.repository,
        state.head_sha,
        combined,
        text,
        target_url=session_url(audience.base_url, state.session_id),
        context=SESSION_STATUS_CONTEXT,
    )
    return []


# --------------------------------------------------------------------------- the comments
def update_reports(audience: Audience, state: SessionState) -> list[str]:
    """The report comment of every fix pull request of the session (each found by its
    attempt's marker) and of the failing pull request, edited to the report as it is now."""
    if audience.key is None:
        return ["the report comments are not kept current: no marker key (see publish.markers)"]
    provider, key = audience.provider, audience.key
    text = safe_text(provider, audience.base_url, state.session_id, render_report(state))
    targets: list[tuple[int, str]] = []
    for rec in state.attempt_history:
        pr = rec.published.pull_request if rec.published else None
        if pr is not None:
            targets.append((pr.number, marker(key, state.session_id, "report", rec.attempt)))
    if state.pull_request_number:
        targets.append((state.pull_request_number, marker(key, state.session_id, "report")))
    for number, mark in targets:
        provider.comment(state.repository, number, mark + "\n" + text, mark)
    return []


def issue_update_text(state: SessionState, opened_by: int, base_url: str | None) -> str:
    """What the escalation issue is told after it was opened: the later attempts and, once
    the session is closed, how it ended (made safe by the caller)."""
    lines = []
    for rec in state.attempt_history:
        if rec.attempt <= opened_by:
            continue
        words = STRATEGY_WORDS.get(rec.strategy, rec.strategy.value)
        tried = "; ".join(r.description for r in rec.repairs) or "no applicable repair"
        lines.append(f"- Attempt {rec.attempt} ({words}): {tried}")
        lines.append(f"  - {_waiting(rec)}; CI: {rec.ci_conclusion or 'n/a'}")
    if state.status is SessionStatus.CLOSED:
        _, text = _closed(state)
        head = f"The session is closed: **{state.outcome.value}** ({text})."
    else:
        head = f"The session goes on: attempt {state.current_attempt} of {state.max_attempts}."
    link = session_url(base_url, state.session_id)
    tail = ["", f"The session's page: {link}"] if link else []
    return "\n".join([head, "", *lines, *tail])


def update_issue(audience: Audience, state: SessionState) -> list[str]:
    """The escalation issue told what happened after it was opened: one comment per later
    attempt, and one when the session closes (each edited in place)."""
    found = _issue_of(state)
    if found is None:
        return []
    if audience.key is None:
        return ["the escalation issue is not kept current: no marker key"]
    opened_by, issue = found
    closed = state.status is SessionStatus.CLOSED
    if not closed and state.current_attempt <= opened_by:
        return []
    kind = "issue-closed" if closed else "issue-update"
    mark = marker(audience.key, state.session_id, kind, None if closed else state.current_attempt)
    text = issue_update_text(state, opened_by, audience.base_url)
    body = mark + "\n" + safe_text(audience.provider, audience.base_url, state.session_id, text)
    audience.provider.comment(state.repository, issue.number, body, mark)
    return []


_STEPS: tuple[tuple[str, Callable[[Audience, SessionState], list[str]]], ...] = (
    ("the status of the failing commit", set_session_status),
    ("the report comments", update_reports),
    ("the escalation issue", update_issue),
)


def post_feedback(audience: Audience, state: SessionState) -> list[str]:
    """Bring the status, the report comments and the escalation issue up to date with
    ``state``; what could not be done, as notes (the session goes on)."""
    notes: list[str] = []
    for what, step in _STEPS:
        try:
            notes.extend(step(audience, state))
        except CicdError as exc:
            log.warning("could not update %s of session %s: %s", what, state.session_id, exc)
            notes.append(f"could not update {what}: {exc}")
    return notes
