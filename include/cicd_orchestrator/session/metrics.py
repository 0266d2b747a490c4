"""What the sessions say in figures (pure: no I/O, no clock of its own).

- :func:`summarize` keeps of a session what the pages and the figures need (a small,
  immutable summary: the pages cache it per saved state, so 10,000 sessions are not parsed
  again on every request);
- :func:`compute` folds summaries into the figures of the Metrics page and its JSON: the fix
  rate per failure category and per fixer, the median time to green, the attempts used and
  the sessions per day;
- :func:`stat_events` says what changed between two saves of one session as StatsD/OTel
  counters and timings (the Airflow glue sends them through Airflow's metrics backend).

Definitions: a session *counts* once it is closed with an outcome other than
``already_green`` (nothing to fix), ``superseded`` (a newer commit made it moot) or
``published`` (CI on the fix was not watched, so it never went green or red); it is
*green* when it closed ``fixed`` or ``rerun_green``. A fixer's use is one attempt that
published a repair of that fixer; it is decided once CI on it went green or red. Time to
green: from the session's start to its end, for green sessions.
"""

from __future__ import annotations

import datetime
import re
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

from cicd_orchestrator.constants import (
    AttemptStatus,
    Conclusion,
    FailureCategory,
    Outcome,
    Priority,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import AttemptRecord, SessionState
from cicd_orchestrator.session.state import primary_category

GREEN_OUTCOMES = frozenset({Outcome.FIXED, Outcome.RERUN_GREEN})
#: closed sessions that say nothing about fixing: the run was green before anything was done,
#: a newer commit made the failure moot, or nobody watched CI on the fix
NOT_COUNTED = frozenset(
    {Outcome.PENDING, Outcome.ALREADY_GREEN, Outcome.SUPERSEDED, Outcome.PUBLISHED}
)
#: the prefix of every metric the orchestrator emits (after Airflow's own statsd_prefix)
STAT_PREFIX = "cicd"
_STAT_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class FixerUse:
    """One attempt that published a repair of ``fixer``; ``green`` once CI decided."""

    attempt: int
    fixer: str
    green: bool | None


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    provider: str
    repository: str
    branch: str
    pipeline_id: int
    failed_run: str
    category: FailureCategory
    current_attempt: int
    max_attempts: int
    strategy: Strategy | None
    status: SessionStatus
    outcome: Outcome
    priority: Priority
    start_time: str | None
    end_time: str | None
    dag_runs: tuple[str, ...] = ()
    pull_requests: tuple[str, ...] = ()
    issues: tuple[str, ...] = ()
    fixers: tuple[FixerUse, ...] = ()

    @property
    def closed(self) -> bool:
        return self.status is SessionStatus.CLOSED

    @property
    def counted(self) -> bool:
        return self.closed and self.outcome not in NOT_COUNTED

    @property
    def green(self) -> bool:
        return self.closed and self.outcome in GREEN_OUTCOMES


def _attempt_green(rec: AttemptRecord) -> bool | None:
    if rec.status is AttemptStatus.CI_GREEN or rec.ci_conclusion is Conclusion.SUCCESS:
        return True
    if rec.status is AttemptStatus.CI_FAILED or rec.ci_conclusion is not None:
        return False
    return None


def fixer_uses(state: SessionState) -> tuple[FixerUse, ...]:
    """The fixers whose repairs each attempt published, in attempt order."""
    uses = []
    for rec in state.attempt_history:
        if rec.published is None or rec.published.kind is RepairKind.NONE:
            continue
        repairs = [*rec.repairs, *(r for rnd in rec.rounds[1:] for r in rnd.repairs)]
        green = _attempt_green(rec)
        for fixer in sorted({r.fixer for r in repairs if r.fixer}):
            uses.append(FixerUse(rec.attempt, fixer, green))
    return tuple(uses)


def summarize(state: SessionState) -> SessionSummary:
    links = state.links
    return SessionSummary(
        session_id=state.session_id,
        provider=state.provider,
        repository=state.repository,
        branch=state.branch,
        pipeline_id=state.pipeline_id,
        failed_run=links.failed_run,
        category=primary_category(state),
        current_attempt=state.current_attempt,
        max_attempts=state.max_attempts,
        strategy=state.current_strategy,
        status=state.status,
        outcome=state.outcome,
        priority=state.priority,
        start_time=state.start_time,
        end_time=state.end_time,
        dag_runs=tuple(links.dag_runs),
        pull_requests=tuple(links.pull_requests),
        issues=tuple(links.issues),
        fixers=fixer_uses(state),
    )


# --------------------------------------------------------------------------- figures
@dataclass
class Rate:
    """Of ``counted`` tries, ``green`` went green."""

    counted: int = 0
    green: int = 0

    @property
    def rate(self) -> float | None:
        return self.green / self.counted if self.counted else None

    def add(self, green: bool) -> None:
        self.counted += 1
        self.green += int(green)


@dataclass
class Metrics:
    sessions: int = 0
    open: int = 0
    closed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    fix_rate: Rate = field(default_factory=Rate)
    by_category: dict[str, Rate] = field(default_factory=dict)
    by_fixer: dict[str, Rate] = field(default_factory=dict)
    #: seconds from a green session's start to its end: the median, and of how many
    median_time_to_green: float | None = None
    time_to_green_sessions: int = 0
    #: closed sessions by the number of attempts they used
    attempts_used: dict[int, int] = field(default_factory=dict)
    #: sessions started on each of the last ``days`` days (UTC), oldest first
    per_day: list[tuple[str, int]] = field(default_factory=list)


def parse_time(value: str | None) -> datetime.datetime | None:
    """An ISO time of a session (naive ones are UTC); None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def time_to_green(summary: SessionSummary) -> float | None:
    start, end = parse_time(summary.start_time), parse_time(summary.end_time)
    if not summary.green or start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def compute(summaries: list[SessionSummary], today: datetime.date, days: int = 30) -> Metrics:
    """The figures of ``summaries``; ``per_day`` covers the ``days`` days up to ``today``."""
    if days < 1:
        raise ValueError("days must be at least 1")
    m = Metrics(sessions=len(summaries))
    greens: list[float] = []
    first = today - datetime.timedelta(days=days - 1)
    daily = {first + datetime.timedelta(days=i): 0 for i in range(days)}
    for s in summaries:
        started = parse_time(s.start_time)
        if started is not None and started.date() in daily:
            daily[started.date()] += 1
        for use in s.fixers:
            if use.green is not None:
                m.by_fixer.setdefault(use.fixer, Rate()).add(use.green)
        if not s.closed:
            m.open += 1
            continue
        m.closed += 1
        m.outcomes[s.outcome.value] = m.outcomes.get(s.outcome.value, 0) + 1
        m.attempts_used[s.current_attempt] = m.attempts_used.get(s.current_attempt, 0) + 1
        if s.counted:
            m.fix_rate.add(s.green)
            m.by_category.setdefault(s.category.value, Rate()).add(s.green)
        seconds = time_to_green(s)
        if seconds is not None:
            greens.append(seconds)
    m.median_time_to_green = statistics.median(greens) if greens else None
    m.time_to_green_sessions = len(greens)
    m.per_day = [(day.isoformat(), n) for day, n in daily.items()]
    m.by_category = dict(sorted(m.by_category.items()))
    m.by_fixer = dict(sorted(m.by_fixer.items()))
    m.attempts_used = dict(sorted(m.attempts_used.items()))
    return m


def _rate_json(rate: Rate) -> dict[str, Any]:
    return {"counted": rate.counted, "green": rate.green, "rate": rate.rate}


def to_json(m: Metrics) -> dict[str, Any]:
    """The figures as the JSON endpoint serves them."""
    return {
        "sessions": {"total": m.sessions, "open": m.open, "closed": m.closed},
        "outcomes": m.outcomes,
        "fix_rate": _rate_json(m.fix_rate),
        "fix_rate_by_category": {k: _rate_json(v) for k, v in m.by_category.items()},
        "fix_rate_by_fixer": {k: _rate_json(v) for k, v in m.by_fixer.items()},
        "time_to_green": {
            "median_seconds": m.median_time_to_green,
            "sessions": m.time_to_green_sessions,
        },
        "attempts_used": {str(k): v for k, v in m.attempts_used.items()},
        "sessions_per_day": [{"day": d, "sessions": n} for d, n in m.per_day],
    }


# --------------------------------------------------------------------------- StatsD / OTel
@dataclass(frozen=True)
class StatEvent:
    """One metric to send: a counter increment or a timing (milliseconds)."""

    kind: Literal["incr", "timing"]
    name: str
    value: float
    tags: dict[str, str] = field(default_factory=dict)


def stat_part(value: object) -> str:
    """A value as one segment of a metric name (StatsD splits names on dots)."""
    return _STAT_UNSAFE.sub("_", str(value)) or "_"


def _name(*parts: object) -> str:
    return ".".join([STAT_PREFIX, *(stat_part(p) for p in parts)])


def _stage_timings(state: SessionState | None) -> dict[tuple[int, str], float]:
    if state is None:
        return {}
    return {
        (rec.attempt, stage): seconds
        for rec in state.attempt_history
        for stage, seconds in rec.stage_timings.items()
    }


def stat_events(before: SessionState | None, after: SessionState) -> list[StatEvent]:
    """What happened between two saves of a session (``before``: the saved state, None for
    a new session): sessions opened and closed by outcome, attempts started, stages timed,
    fixes published per fixer and their CI result, the attempts a closed session used and
    its time to green. Dimensions are both in the name (plain StatsD has no tags) and tags."""
    events: list[StatEvent] = []
    if before is None:
        events.append(
            StatEvent("incr", _name("session", "opened"), 1, {"provider": after.provider})
        )
    started = before.current_attempt if before else 0
    for rec in after.attempt_history:
        if rec.attempt > started:
            tags = {"strategy": rec.strategy.value}
            events.append(
                StatEvent("incr", _name("attempt", "started", rec.strategy.value), 1, tags)
            )
    timed = _stage_timings(before)
    for (attempt, stage), seconds in _stage_timings(after).items():
        if (attempt, stage) not in timed:
            events.append(
                StatEvent("timing", _name("stage", stage), seconds * 1000, {"stage": stage})
            )
    events.extend(_fixer_events(before, after))
    if after.status is SessionStatus.CLOSED and (
        before is None or before.status is not SessionStatus.CLOSED
    ):
        events.extend(_closed_events(after))
    return events


def _fixer_events(before: SessionState | None, after: SessionState) -> list[StatEvent]:
    known = {(u.attempt, u.fixer): u for u in fixer_uses(before)} if before else {}
    events = []
    for use in fixer_uses(after):
        old = known.get((use.attempt, use.fixer))
        tags = {"fixer": use.fixer}
        if old is None:
            events.append(StatEvent("incr", _name("fix", "published", use.fixer), 1, tags))
        if use.green is not None and (old is None or old.green is None):
            result = "green" if use.green else "red"
            events.append(StatEvent("incr", _name("fix", result, use.fixer), 1, tags))
    return events


def _closed_events(state: SessionState) -> list[StatEvent]:
    outcome = state.outcome.value
    events = [
        StatEvent("incr", _name("session", "closed", outcome), 1, {"outcome": outcome}),
        StatEvent(
            "incr", _name("session", "attempts"), state.current_attempt, {"outcome": outcome}
        ),
    ]
    seconds = time_to_green(summarize(state))
    if seconds is not None:
        events.append(StatEvent("timing", _name("session", "time_to_green"), seconds * 1000, {}))
    return events


# --------------------------------------------------------------------------- retention
def archivable(summary: SessionSummary, now: datetime.datetime, days: int) -> bool:
    """A closed session that ended (or, without an end, started) more than ``days`` days
    before ``now``: the maintenance DAG archives it. Open sessions are never archivable."""
    if not summary.closed:
        return False
    when = parse_time(summary.end_time) or parse_time(summary.start_time)
    return when is not None and when < now - datetime.timedelta(days=days)
