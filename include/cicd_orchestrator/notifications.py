"""Notifications to people on escalation and rollback: what is due for a session, and the
text of a message made safe for Slack's mrkdwn and for e-mail (pure: ``people`` holds where
they go, the Airflow glue ``airflow.notify`` sends them through the Slack and SMTP providers'
notifiers).

A message carries text from the repository (job names, a branch): in Slack it is escaped
(``&``, ``<``, ``>``: no link, no ``<!channel>``-style mention), and ``@channel``, ``@here``,
``@everyone`` and ``@name`` ping nobody; in e-mail it is HTML-escaped and the subject is one
line (no header can be added); in both, Jinja's ``{{``/``{%`` are broken up, so even a
notifier that rendered its fields as a template would show them as text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from cicd_orchestrator.constants import RepairKind, Strategy
from cicd_orchestrator.models import Published, SessionState
from cicd_orchestrator.people import NoticeEvent

ZWJ = "\u200d"
#: key of ``SessionState.extra``: the notices already sent (a retried task sends none twice)
NOTIFIED = "notified"
#: the longest message text sent
MESSAGE_LIMIT = 3_000
SUBJECT_LIMIT = 150
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_MENTION = re.compile(r"@(?=[\w-])")
_JINJA = re.compile(r"([{%])(?=[{%#])")


@dataclass(frozen=True)
class Notice:
    """What one notification says (text from the repository in it: escape when sending)."""

    event: NoticeEvent
    attempt: int
    repository: str
    title: str
    lines: tuple[str, ...]
    link: str = ""

    @property
    def key(self) -> str:
        return f"{self.event.value}:attempt={self.attempt}"


# --------------------------------------------------------------------------- what is due
def notices_due(state: SessionState, link: str = "") -> list[Notice]:
    """The notices of ``state`` not sent yet: an escalation issue opened, a rollback
    prepared (a revert pull request, or a plan only)."""
    sent = set(state.extra.get(NOTIFIED) or [])
    jobs = ", ".join(sorted({f.job for f in state.failures if f.root_cause})) or "CI"
    where = f"{state.repository} on {state.branch} ({state.head_sha[:10]})"
    notices = []
    for rec in state.attempt_history:
        published = rec.published
        if published is None:
            continue
        if published.kind is RepairKind.ISSUE and published.issue:
            notices.append(
                Notice(
                    NoticeEvent.ESCALATION,
                    rec.attempt,
                    state.repository,
                    f"CI failure needs a person: {where}",
                    (f"Failing: {jobs}", f"Issue: {published.issue.url}"),
                    link,
                )
            )
        if published.kind is RepairKind.REVERT or _rollback_plan(rec.strategy, published):
            pr = published.pull_request
            what = f"Revert pull request: {pr.url}" if pr else "; ".join(published.notes)
            notices.append(
                Notice(
                    NoticeEvent.ROLLBACK,
                    rec.attempt,
                    state.repository,
                    f"Rollback prepared: {where}",
                    (f"Failing: {jobs}", what),
                    link,
                )
            )
    return [n for n in notices if n.key not in sent]


def _rollback_plan(strategy: Strategy, published: Published) -> bool:
    """Whether the rollback attempt prepared a plan only (``rollback_policy: plan``)."""
    return (
        strategy is Strategy.EMERGENCY_ROLLBACK
        and published.kind is RepairKind.NONE
        and any("rollback" in note for note in published.notes)
    )


def mark_sent(state: SessionState, notice: Notice) -> None:
    sent = list(state.extra.get(NOTIFIED) or [])
    if notice.key not in sent:
        state.extra[NOTIFIED] = [*sent, notice.key]


# --------------------------------------------------------------------------- safe text
def _plain(text: str) -> str:
    return _JINJA.sub(r"\1" + ZWJ, _CONTROL.sub(" ", text))


def slack_escape(text: str) -> str:
    """Text for Slack's mrkdwn: ``&``, ``<``, ``>`` escaped (no link and no ``<!here>``),
    no ``@`` that mentions, no Jinja."""
    text = _plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub("@" + ZWJ, text)


def slack_text(notice: Notice) -> str:
    """The message of ``notice`` for Slack (escaped, at most ``MESSAGE_LIMIT``)."""
    lines = [f"*{slack_escape(notice.title)}*", *(slack_escape(line) for line in notice.lines)]
    if notice.link:
        lines.append(f"Session: {slack_escape(notice.link)}")
    return "\n".join(lines)[:MESSAGE_LIMIT]


def email_subject(notice: Notice) -> str:
    """One line (no header can be injected), at most ``SUBJECT_LIMIT`` characters."""
    line = " ".join(_plain(f"[cicd-orchestrator] {notice.title}").split())
    return line[:SUBJECT_LIMIT]


def email_html(notice: Notice) -> str:
    """The body of ``notice`` as HTML with every text escaped."""
    parts = [f"<p><b>{html.escape(_plain(notice.title))}</b></p>"]
    parts.extend(f"<p>{html.escape(_plain(line))}</p>" for line in notice.lines)
    if notice.link:
        parts.append(f"<p>Session: {html.escape(_plain(notice.link))}</p>")
    return "\n".join(parts)[: MESSAGE_LIMIT * 2]
