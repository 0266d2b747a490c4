"""Sending the notices of a session (``notifications``) through Airflow's notifiers: the Slack
provider's ``SlackWebhookNotifier`` and ``SlackNotifier``, the SMTP provider's
``SmtpNotifier``, each with the connection the configuration names (``people``).

A notifier is given text that is already escaped, and its ``notify`` is called directly:
calling the notifier itself would render its fields as Jinja templates with the task's
context, and text from a repository must never be a template. A notifier that fails is logged
and noted; the session goes on, and a notice is sent once (the session remembers it).
"""

from __future__ import annotations

import logging
from typing import Any

from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.notifications import (
    Notice,
    email_html,
    email_subject,
    mark_sent,
    notices_due,
    slack_text,
)
from cicd_orchestrator.people import NotificationTarget, NotifierKind, targets_for
from cicd_orchestrator.redact import redact

log = logging.getLogger(__name__)

_SLACK_MISSING = (
    "the Slack provider is not installed (pip install apache-airflow-providers-slack, "
    "pinned in requirements.txt)"
)


def notifier_for(target: NotificationTarget, notice: Notice) -> Any:
    """The provider's notifier that sends ``notice`` to ``target`` (ConfigError when its
    provider is not installed)."""
    if target.kind is NotifierKind.SMTP:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(
            to=list(target.to),
            smtp_conn_id=target.conn_id,
            subject=email_subject(notice),
            html_content=email_html(notice),
        )
    try:
        if target.kind is NotifierKind.SLACK_WEBHOOK:
            from airflow.providers.slack.notifications.slack_webhook import (
                SlackWebhookNotifier,
            )

            return SlackWebhookNotifier(
                slack_webhook_conn_id=target.conn_id,
                text=slack_text(notice),
                unfurl_links=False,
                unfurl_media=False,
            )
        from airflow.providers.slack.notifications.slack import SlackNotifier

        return SlackNotifier(
            slack_conn_id=target.conn_id,
            channel=target.channel or "",  # the configuration requires it for this kind
            text=slack_text(notice),
            unfurl_links=False,
            unfurl_media=False,
        )
    except ImportError as exc:
        raise ConfigError(_SLACK_MISSING) from exc


def send(target: NotificationTarget, notice: Notice) -> str | None:
    """Send ``notice`` to ``target``; what went wrong, or None."""
    try:
        notifier_for(target, notice).notify({})
    except Exception as exc:  # a notifier may raise anything its client does
        why = redact(f"{type(exc).__name__}: {exc}")[:500]
        log.warning("could not notify %s (%s): %s", target.kind.value, target.conn_id, why)
        return f"could not notify {target.kind.value} ({target.conn_id}): {why}"
    log.info("notified %s (%s): %s", target.kind.value, target.conn_id, notice.key)
    return None


def send_due(state: SessionState, config: OrchestratorConfig, link: str = "") -> list[str]:
    """Send the notices of ``state`` not sent yet to the repository's targets and remember
    them in the session; what could not be sent, as notes."""
    notes = []
    for notice in notices_due(state, link):
        for target in targets_for(config.notifications, state.repository, notice.event):
            problem = send(target, notice)
            if problem:
                notes.append(problem)
        mark_sent(state, notice)
    return notes
