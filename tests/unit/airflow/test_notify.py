"""Notifications of escalation and rollback through Airflow's notifiers: the SMTP provider's
``SmtpNotifier`` against a real SMTP server on loopback, the Slack provider's
``SlackWebhookNotifier`` against an HTTP server standing in for the webhook (when the Slack
provider is installed). Hostile repository text reaches nobody as markup, a mention, a
header or a Jinja template; a notice is sent once; a broken target is a note, not a crash."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator

import pytest
from cicd_devkit.servers.sinks import SmtpSink, WebhookSink

from cicd_orchestrator import session
from cicd_orchestrator.airflow import notify
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import FailureCategory, RepairKind, Strategy
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.models import AttemptRecord, Failure, Issue, Published, SessionState
from cicd_orchestrator.notifications import NOTIFIED, notices_due
from cicd_orchestrator.people import NotificationTarget, NotifierKind

#: a job name an attacker chose: markup, mentions, a Slack command, a Jinja template that
#: would read a connection's password, a header injection
HOSTILE_JOB = (
    "lint <script>x</script> <!channel> <!here|here> @channel @here @everyone @alice "
    "<https://evil.example|click> & {{ conn.smtp_test.password }} {% if 1 %}\r\nBcc: evil@x.y"
)
SLACK_INSTALLED = importlib.util.find_spec("airflow.providers.slack") is not None


def _state() -> SessionState:
    failure = Failure(HOSTILE_JOB, 1, 7, None, FailureCategory.QUALITY, 0.9, "sig")
    state = SessionState("cicd-local-run7-abc", "local", "acme/shipping", 7, "main", "a" * 40)
    state.failures = [failure]
    issue = Issue(3, "CI failure", "https://hosting.example/acme/shipping/issues/3")
    state.attempt_history = [
        AttemptRecord(
            4,
            Strategy.MANUAL_INTERVENTION,
            published=Published(kind=RepairKind.ISSUE, issue=issue),
        )
    ]
    return state


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": sink.port,
        "login": "",
        "password": "",
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "cicd@example.com"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps(conn))
    yield sink
    sink.stop()


def _config(targets: list[dict[str, object]]) -> object:
    return load_config({"notifications": {"acme/shipping": targets}})


def test_an_escalation_is_mailed_once_with_its_text_escaped(smtp: SmtpSink) -> None:
    config = _config([{"kind": "smtp", "conn_id": "smtp_test", "to": ["oncall@example.com"]}])
    state = _state()
    link = "https://airflow.example.com/cicd/sessions/cicd-local-run7-abc"

    assert notify.send_due(state, config, link) == []
    assert notify.send_due(state, config, link) == []  # sent once: the session remembers
    assert state.extra[NOTIFIED] == ["escalation:attempt=4"]

    assert len(smtp.mails) == 1
    mail = smtp.mails[0]
    assert mail.recipients == ["oncall@example.com"]  # no Bcc smuggled in
    assert mail.message["Bcc"] is None
    subject = mail.message["Subject"]
    assert "\n" not in subject and "CI failure needs a person" in subject
    body = mail.message.get_body(("html",)).get_content()
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "{{ conn" not in body and "{%" not in body  # never a template
    assert "https://hosting.example/acme/shipping/issues/3" in body and link in body


def test_a_broken_target_is_a_note_and_the_others_still_hear(smtp: SmtpSink) -> None:
    config = _config(
        [
            {"kind": "smtp", "conn_id": "smtp_missing", "to": ["a@example.com"]},
            {"kind": "smtp", "conn_id": "smtp_test", "to": ["b@example.com"]},
        ]
    )
    notes = notify.send_due(_state(), config)
    assert len(notes) == 1 and "smtp_missing" in notes[0]
    assert [m.recipients for m in smtp.mails] == [["b@example.com"]]


def test_another_repository_hears_nothing_unless_star_names_a_target(smtp: SmtpSink) -> None:
    target = {"kind": "smtp", "conn_id": "smtp_test", "to": ["c@example.com"]}
    state = _state()
    notify.send_due(state, load_config({"notifications": {"other/repo": [target]}}))
    assert smtp.mails == []
    notify.send_due(_state(), load_config({"notifications": {"*": [target]}}))
    assert len(smtp.mails) == 1


def test_a_rollback_only_target_does_not_hear_an_escalation(smtp: SmtpSink) -> None:
    target = {"kind": "smtp", "conn_id": "smtp_test", "to": ["c@example.com"], "events": "rollback"}
    notify.send_due(_state(), _config([target]))
    assert smtp.mails == []


@pytest.mark.skipif(SLACK_INSTALLED, reason="the Slack provider is installed")
def test_slack_without_its_provider_says_how_to_install_it() -> None:
    target = NotificationTarget(NotifierKind.SLACK_WEBHOOK, "slack_test")
    notice = notices_due(_state())[0]
    with pytest.raises(ConfigError, match="apache-airflow-providers-slack"):
        notify.notifier_for(target, notice)
    notes = notify.send_due(_state(), _config([{"kind": "slack-webhook", "conn_id": "x"}]))
    assert notes and "apache-airflow-providers-slack" in notes[0]


@pytest.mark.skipif(not SLACK_INSTALLED, reason="apache-airflow-providers-slack not installed")
def test_a_slack_webhook_gets_escaped_mrkdwn(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = WebhookSink().start()
    try:
        conn = {"conn_type": "slackwebhook", "host": sink.url, "password": "/hook"}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_TEST", json.dumps(conn))
        notes = notify.send_due(
            _state(), _config([{"kind": "slack-webhook", "conn_id": "slack_test"}])
        )
        assert notes == []
        assert len(sink.posts) == 1
        text = sink.posts[0]["text"]
        for dangerous in ("<!channel>", "<!here", "<script>", "<https://evil", "{{ conn"):
            assert dangerous not in text
        for mention in ("@channel", "@here", "@everyone", "@alice"):
            assert mention not in text
        assert "&lt;script&gt;" in text and "&amp;" in text
    finally:
        sink.stop()


def test_the_glue_sets_the_status_and_notifies_once(lint_attempt, smtp: SmtpSink) -> None:
    from cicd_orchestrator.airflow import feedback
    from cicd_orchestrator.constants import SESSION_STATUS_CONTEXT

    attempt = lint_attempt.attempt
    state = attempt.state
    target = {"kind": "smtp", "conn_id": "smtp_test", "to": ["oncall@example.com"]}
    config = attempt.config.with_overrides({"notifications": {"*": [target]}})
    issue = Issue(3, "CI failure", "local://acme/shipping/issues/3")
    published = Published(kind=RepairKind.ISSUE, issue=issue)
    session.fold_publish(state, 1, 0.1, published, "2026-01-01T00:00:00+00:00")

    assert feedback.inform(state, config, notify_people=False) == []
    assert smtp.mails == [] and NOTIFIED not in state.extra
    assert feedback.inform(state, config) == []
    assert feedback.inform(state, config) == []
    assert len(smtp.mails) == 1
    statuses = lint_attempt.provider.commit_statuses(state.repository, state.head_sha)
    [status] = [s for s in statuses if s.context == SESSION_STATUS_CONTEXT]
    assert status.description == "attempt 1 of 5: handed over in issue #3"
