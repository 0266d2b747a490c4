"""The people side of the configuration: where a repository's notices go
(``notifications``) and who owns its fixes (``owners``), checked with clear errors. Only
settings live here (the floor of the package): ``notifications`` builds and escapes the
messages, ``airflow.notify`` sends them, ``codeowners`` reads a repository's CODEOWNERS.

``notifications``::

    "notifications": {
        "acme/shipping": [
            {"kind": "slack-webhook", "conn_id": "slack_ops"},
            {"kind": "smtp", "conn_id": "smtp_default", "to": ["oncall@example.com"]}
        ],
        "*": [{"kind": "slack", "conn_id": "slack_api", "channel": "#ci"}]
    }

A repository's own list wins over ``"*"``; ``events`` (default both) picks ``escalation``
and/or ``rollback``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator.exceptions import ConfigError

#: the most targets of one repository, and recipients of one e-mail target
MAX_TARGETS = 10
MAX_RECIPIENTS = 20
_CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_CHANNEL = re.compile(r"#?[a-z0-9_.-]{1,80}|[CGD][A-Z0-9]{6,20}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_REPO_KEY = re.compile(r"\*|[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+")


class NoticeEvent(enum.StrEnum):
    """What people are told about."""

    ESCALATION = "escalation"  # an issue hands the failure over to a person
    ROLLBACK = "rollback"  # a revert pull request (or a rollback plan) was prepared


class NotifierKind(enum.StrEnum):
    """The notifiers of Airflow's providers a target uses."""

    SLACK_WEBHOOK = "slack-webhook"  # SlackWebhookNotifier (apache-airflow-providers-slack)
    SLACK = "slack"  # SlackNotifier, the Slack API with a channel
    SMTP = "smtp"  # SmtpNotifier (apache-airflow-providers-smtp)


@dataclass(frozen=True)
class NotificationTarget:
    """One place a repository's notices go to."""

    kind: NotifierKind
    conn_id: str
    channel: str | None = None
    to: tuple[str, ...] = ()
    events: tuple[NoticeEvent, ...] = (NoticeEvent.ESCALATION, NoticeEvent.ROLLBACK)


# --------------------------------------------------------------------------- configuration
_TARGET_KEYS = {"kind", "conn_id", "channel", "to", "events"}


def _target(where: str, item: Any) -> NotificationTarget:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be an object with kind and conn_id")
    unknown = sorted(set(item) - _TARGET_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (allowed: {sorted(_TARGET_KEYS)})")
    try:
        kind = NotifierKind(str(item.get("kind")))
    except ValueError:
        allowed = ", ".join(k.value for k in NotifierKind)
        kind_given = item.get("kind")
        raise ConfigError(f"{where}.kind must be one of {allowed}, not {kind_given!r}") from None
    conn_id = item.get("conn_id")
    if not isinstance(conn_id, str) or not _CONN_ID.fullmatch(conn_id):
        raise ConfigError(f"{where}.conn_id must be an Airflow connection id, not {conn_id!r}")
    return NotificationTarget(
        kind,
        conn_id,
        _channel(where, kind, item.get("channel")),
        _recipients(where, kind, item.get("to", [])),
        _events(where, item.get("events", [e.value for e in NoticeEvent])),
    )


def _channel(where: str, kind: NotifierKind, channel: Any) -> str | None:
    if kind is NotifierKind.SLACK:
        if not (isinstance(channel, str) and _CHANNEL.fullmatch(channel)):
            raise ConfigError(f"{where}.channel must name a Slack channel (#name or its id)")
        return channel
    if channel is not None:
        raise ConfigError(f"{where}.channel is for kind 'slack' only")
    return None


def _recipients(where: str, kind: NotifierKind, to: Any) -> tuple[str, ...]:
    if isinstance(to, str):
        to = [to]
    if kind is not NotifierKind.SMTP:
        if to:
            raise ConfigError(f"{where}.to is for kind 'smtp' only")
        return ()
    if not isinstance(to, list) or not to or len(to) > MAX_RECIPIENTS:
        raise ConfigError(f"{where}.to must list 1 to {MAX_RECIPIENTS} e-mail addresses")
    bad = [a for a in to if not isinstance(a, str) or not _EMAIL.fullmatch(a)]
    if bad:
        raise ConfigError(f"{where}.to: not an e-mail address: {bad}")
    return tuple(to)


def _events(where: str, events: Any) -> tuple[NoticeEvent, ...]:
    if isinstance(events, str):
        events = [events]
    try:
        return tuple(NoticeEvent(e) for e in events)
    except (TypeError, ValueError):
        allowed = ", ".join(e.value for e in NoticeEvent)
        raise ConfigError(f"{where}.events must be a list of {allowed}, not {events!r}") from None


def parse_notifications(name: str, value: Any) -> dict[str, tuple[NotificationTarget, ...]]:
    """The ``notifications`` setting checked (ConfigError says what is wrong and where)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must map a repository ('owner/name' or '*') to a list")
    out: dict[str, tuple[NotificationTarget, ...]] = {}
    for repo, items in value.items():
        if not isinstance(repo, str) or not _REPO_KEY.fullmatch(repo):
            raise ConfigError(f"{name}: {repo!r} is not 'owner/name' or '*'")
        if not isinstance(items, list) or len(items) > MAX_TARGETS:
            raise ConfigError(f"{name}[{repo!r}] must be a list of at most {MAX_TARGETS} targets")
        out[repo] = tuple(_target(f"{name}[{repo!r}][{i}]", t) for i, t in enumerate(items))
    return out


def targets_for(
    notifications: Mapping[str, tuple[NotificationTarget, ...]], repository: str, event: NoticeEvent
) -> list[NotificationTarget]:
    """Where ``event`` of ``repository`` goes: its own list, else ``"*"``'s."""
    chosen = notifications.get(repository)
    if chosen is None:
        chosen = notifications.get("*", ())
    return [t for t in chosen if event in t.events]


# --------------------------------------------------------------------------- owners
#: a user's login (GitHub: 1-39 characters; GitLab allows dots and underscores) and a team
#: (``org/team``; GitLab's groups may nest: ``group/sub/team``)
USER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38}[A-Za-z0-9])?")
TEAM = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38})(?:/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})){1,3}"
)
#: the most people named in the configuration of one repository
MAX_NAMED = 20


@dataclass(frozen=True)
class Owners:
    """Who a repository's fix pull requests and escalation issues go to: ``users`` (assigned
    and asked for review), ``teams`` (asked for review), and whether the owners that the
    repository's CODEOWNERS names for the changed files are added (``codeowners``)."""

    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    codeowners: bool = True


_OWNER_KEYS = {"users", "teams", "codeowners"}


def _handles(where: str, value: Any, pattern: re.Pattern[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_NAMED:
        raise ConfigError(f"{where} must be a list of at most {MAX_NAMED} names")
    names = [v.removeprefix("@") if isinstance(v, str) else v for v in value]
    bad = [v for v in names if not isinstance(v, str) or not pattern.fullmatch(v)]
    if bad:
        raise ConfigError(f"{where}: not a valid name: {bad}")
    return tuple(dict.fromkeys(names))


def parse_owners(name: str, value: Any) -> dict[str, Owners]:
    """The ``owners`` setting checked: ``{"owner/repo" | "*": {"users": [...], "teams":
    [...], "codeowners": true}}``."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must map a repository ('owner/name' or '*') to its owners")
    out: dict[str, Owners] = {}
    for repo, item in value.items():
        where = f"{name}[{repo!r}]"
        if not isinstance(repo, str) or not _REPO_KEY.fullmatch(repo):
            raise ConfigError(f"{name}: {repo!r} is not 'owner/name' or '*'")
        if not isinstance(item, Mapping) or set(item) - _OWNER_KEYS:
            raise ConfigError(f"{where} must be an object with keys {sorted(_OWNER_KEYS)}")
        codeowners = item.get("codeowners", True)
        if not isinstance(codeowners, bool):
            raise ConfigError(f"{where}.codeowners must be true or false")
        out[repo] = Owners(
            _handles(f"{where}.users", item.get("users", []), USER),
            _handles(f"{where}.teams", item.get("teams", []), TEAM),
            codeowners,
        )
    return out


def owners_for(owners: Mapping[str, Owners], repository: str) -> Owners:
    """A repository's owners: its own entry, else ``"*"``'s, else CODEOWNERS only."""
    return owners.get(repository) or owners.get("*") or Owners()
