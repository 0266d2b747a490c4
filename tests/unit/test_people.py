"""The people settings (``notifications``, ``owners``) and the notices' safe text: bad
settings are clear errors naming where they are; hostile text pings nobody in Slack."""

from __future__ import annotations

import pytest

from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import RepairKind, Strategy
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.models import AttemptRecord, Published, PullRequest, SessionState
from cicd_orchestrator.notifications import (
    ZWJ,
    Notice,
    email_subject,
    mark_sent,
    notices_due,
    slack_escape,
    slack_text,
)
from cicd_orchestrator.people import NoticeEvent, NotifierKind, owners_for, targets_for

SLACK = {"kind": "slack", "conn_id": "slack_api", "channel": "#ci"}
MAIL = {"kind": "smtp", "conn_id": "smtp_default", "to": ["ops@example.com"]}


def test_targets_per_repository_and_star() -> None:
    config = load_config({"notifications": {"acme/a": [MAIL], "*": [SLACK]}})
    own = targets_for(config.notifications, "acme/a", NoticeEvent.ROLLBACK)
    other = targets_for(config.notifications, "acme/b", NoticeEvent.ESCALATION)
    assert [t.kind for t in own] == [NotifierKind.SMTP]
    assert [t.kind for t in other] == [NotifierKind.SLACK] and other[0].channel == "#ci"
    # the setting survives the round trip every hand-off makes (to_mapping, load_config)
    assert config.with_overrides({"max_attempts": 4}).notifications == config.notifications


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ([MAIL], "must map a repository"),
        ({"not a repo": [MAIL]}, "is not 'owner/name'"),
        ({"a/b": MAIL}, "must be a list"),
        ({"a/b": [{"kind": "teams", "conn_id": "x"}]}, r"notifications\['a/b'\]\[0\].kind"),
        ({"a/b": [{"kind": "smtp", "conn_id": "x"}]}, "e-mail addresses"),
        ({"a/b": [{**MAIL, "to": ["not-an-address"]}]}, "not an e-mail address"),
        ({"a/b": [{**MAIL, "to": ["a@b.c\r\nBcc: evil@x.y"]}]}, "not an e-mail address"),
        ({"a/b": [{"kind": "slack", "conn_id": "x"}]}, "channel"),
        ({"a/b": [{**SLACK, "channel": "<!here>"}]}, "channel"),
        ({"a/b": [{**SLACK, "conn_id": "bad id!"}]}, "connection id"),
        ({"a/b": [{**SLACK, "webhook": "https://x"}]}, "unknown keys"),
        ({"a/b": [{**SLACK, "events": ["merge"]}]}, "events"),
        ({"a/b": [{**SLACK, "to": ["a@b.cd"]}]}, "for kind 'smtp' only"),
    ],
)
def test_bad_notification_settings_are_clear_errors(setting: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"notifications": setting})


def test_owners_settings() -> None:
    config = load_config(
        {"owners": {"acme/a": {"users": ["@alice", "bob"], "teams": ["acme/ops"]}, "*": {}}}
    )
    owners = owners_for(config.owners, "acme/a")
    assert owners.users == ("alice", "bob") and owners.teams == ("acme/ops",)
    assert owners_for(config.owners, "x/y").users == ()
    for bad in ({"users": ["a@example.com"]}, {"teams": ["noslash"]}, {"codeowners": "yes"}):
        with pytest.raises(ConfigError, match=r"owners\['acme/a'\]"):
            load_config({"owners": {"acme/a": bad}})
    with pytest.raises(ConfigError, match="max_owners"):
        load_config({"max_owners": 0})


@pytest.mark.parametrize(
    "hostile",
    ["<!channel>", "<!here|x>", "<!subteam^S123>", "<@U123>", "<https://evil|click>"],
)
def test_slack_text_has_no_command_link_or_user_mention(hostile: str) -> None:
    shown = slack_escape(f"job {hostile} failed")
    assert "<" not in shown and ">" not in shown and "&lt;" in shown


@pytest.mark.parametrize("mention", ["@channel", "@here", "@everyone", "@alice"])
def test_slack_at_mentions_ping_nobody(mention: str) -> None:
    assert mention not in slack_escape(f"hi {mention}") and "@" + ZWJ in slack_escape(mention)


def test_slack_text_of_a_notice_is_capped_and_templates_are_broken() -> None:
    notice = Notice(NoticeEvent.ESCALATION, 4, "a/b", "t {{ x }}", ("{% y %}" + "z" * 9000,))
    text = slack_text(notice)
    assert len(text) <= 3000 and "{{" not in text and "{%" not in text
    assert "\n" not in email_subject(Notice(NoticeEvent.ROLLBACK, 5, "a/b", "x\r\nBcc: y", ()))


def _state(*records: AttemptRecord) -> SessionState:
    state = SessionState("s", "local", "a/b", 1, "main", "f" * 40)
    state.attempt_history = list(records)
    return state


def test_a_rollback_is_due_once_for_a_revert_or_a_plan() -> None:
    pr = PullRequest(9, "cicd-fix/x", "main", "Revert", "https://h/a/b/pull/9")
    revert = AttemptRecord(
        5, Strategy.EMERGENCY_ROLLBACK, published=Published(kind=RepairKind.REVERT, pull_request=pr)
    )
    state = _state(revert)
    [notice] = notices_due(state)
    assert notice.event is NoticeEvent.ROLLBACK and "pull/9" in notice.lines[1]
    mark_sent(state, notice)
    assert notices_due(state) == []
    plan = Published(notes=["rollback prepared as a plan only (rollback_policy=plan)"])
    assert [
        n.event
        for n in notices_due(_state(AttemptRecord(5, Strategy.EMERGENCY_ROLLBACK, published=plan)))
    ] == [NoticeEvent.ROLLBACK]
    nothing = AttemptRecord(1, Strategy.STANDARD_PARALLEL_FIXING, published=Published())
    assert notices_due(_state(nothing)) == []
