"""Closing a superseded session's fix pull requests: each one still open is closed with a
comment saying why (a newer commit, or the failing branch green by itself). Each comment
carries its marker (a retried task does nothing twice); a pull request the hosting refuses
to close is noted and the others are still closed. A pull request whose head is the
failing branch itself (a fix committed to a pull request's own branch) is a person's and is
never closed."""

from __future__ import annotations

import logging

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.publish.markers import marker
from cicd_orchestrator.publish.text import BODY_RESERVE, report_link, safe_markdown


def superseded_text(reason: str) -> str:
    """What the closing comment says (made safe by the caller)."""
    return (
        f"The failure this pull request repairs is superseded: {reason}. The orchestrator "
        "closes this fix and ends its session; a new failure opens a new session."
    )


def close_fix_pull_requests(
    provider: CIProvider,
    state: SessionState,
    reason: str,
    base_url: str | None,
    key: bytes | None,
) -> list[str]:
    """Close the session's open fix pull requests with a comment saying why; what was done,
    as notes."""
    notes: list[str] = []
    for record in state.attempt_history:
        pr = record.published.pull_request if record.published else None
        if pr is None or pr.state != "open" or pr.head == state.branch:
            continue
        mark = marker(key, state.session_id, "superseded-failure", record.attempt)
        text = safe_markdown(
            superseded_text(reason),
            limit=provider.body_limit - BODY_RESERVE,
            full_report=report_link(base_url, state.session_id),
        )
        try:
            provider.close_pull_request(state.repository, pr.number, mark + "\n" + text, mark)
        except CicdError as exc:
            log.warning("could not close pull request %s: %s", pr.number, exc)
            notes.append(f"the pull request {pr.url} stays open: {exc}")
            continue
        pr.state = "closed"
        notes.append(f"closed the pull request {pr.url}: the failure is superseded")
    return notes


log = logging.getLogger(__name__)
