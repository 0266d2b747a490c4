"""The figures of the Metrics page, the StatsD events of a save and the retention rule, on
handmade sessions."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cicd_devkit.builders import failure, new_state

from cicd_orchestrator.constants import (
    AttemptStatus,
    Conclusion,
    FailureCategory,
    Outcome,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import AttemptRecord, Published, Repair, SessionState
from cicd_orchestrator.session import metrics

TODAY = datetime.date(2026, 1, 10)


def _attempt(n: int, fixers: list[str], green: bool | None) -> AttemptRecord:
    status = {True: AttemptStatus.CI_GREEN, False: AttemptStatus.CI_FAILED, None: None}[green]
    return AttemptRecord(
        attempt=n,
        strategy=Strategy.STANDARD_PARALLEL_FIXING,
        status=status or AttemptStatus.PUBLISHED,
        repairs=[
            Repair(
                fixer=f, kind=RepairKind.CHANGE, category=FailureCategory.QUALITY, description=""
            )
            for f in fixers
        ],
        published=Published(kind=RepairKind.CHANGE) if fixers else None,
        ci_conclusion={True: Conclusion.SUCCESS, False: Conclusion.FAILURE, None: None}[green],
        stage_timings={"discovery": 2.0},
    )


def _session(
    sid: str,
    category: FailureCategory,
    outcome: Outcome,
    start: str = "2026-01-09T10:00:00+00:00",
    end: str | None = None,
    attempts: list[AttemptRecord] | None = None,
) -> SessionState:
    state = new_state()
    state.session_id = sid
    state.failures = [failure(category=category)]
    state.start_time = start
    state.outcome = outcome
    state.status = SessionStatus.OPEN if outcome is Outcome.PENDING else SessionStatus.CLOSED
    state.end_time = end
    state.attempt_history = attempts or []
    state.current_attempt = len(state.attempt_history)
    return state


def _figures(*states: SessionState, days: int = 30) -> metrics.Metrics:
    return metrics.compute([metrics.summarize(s) for s in states], TODAY, days)


def test_fix_rate_per_category_counts_closed_sessions_only():
    m = _figures(
        _session("a", FailureCategory.QUALITY, Outcome.FIXED, end="2026-01-09T10:10:00+00:00"),
        _session("b", FailureCategory.QUALITY, Outcome.ESCALATED, end="2026-01-09T12:00:00+00:00"),
        _session("c", FailureCategory.TEST, Outcome.RERUN_GREEN, end="2026-01-09T10:30:00+00:00"),
        _session("d", FailureCategory.TEST, Outcome.PENDING),
        _session(
            "e", FailureCategory.BUILD, Outcome.ALREADY_GREEN, end="2026-01-09T10:01:00+00:00"
        ),
    )
    assert (m.sessions, m.open, m.closed) == (5, 1, 4)
    assert (m.by_category["quality"].green, m.by_category["quality"].counted) == (1, 2)
    assert m.by_category["test"].rate == 1.0
    assert "build" not in m.by_category  # already green: nothing to fix
    assert (m.fix_rate.green, m.fix_rate.counted) == (2, 3)
    assert m.outcomes == {"fixed": 1, "escalated": 1, "rerun_green": 1, "already_green": 1}


def test_moot_and_unwatched_sessions_do_not_count_for_the_fix_rate():
    end = "2026-01-09T10:10:00+00:00"
    m = _figures(
        _session("a", FailureCategory.QUALITY, Outcome.FIXED, end=end),
        _session("b", FailureCategory.QUALITY, Outcome.SUPERSEDED, end=end),
        _session("c", FailureCategory.QUALITY, Outcome.PUBLISHED, end=end),
    )
    assert (m.fix_rate.green, m.fix_rate.counted) == (1, 1)
    assert m.outcomes == {"fixed": 1, "superseded": 1, "published": 1}


def test_median_time_to_green_is_of_green_sessions_only():
    m = _figures(
        _session("a", FailureCategory.TEST, Outcome.FIXED, end="2026-01-09T10:10:00+00:00"),
        _session("b", FailureCategory.TEST, Outcome.FIXED, end="2026-01-09T10:30:00+00:00"),
        _session("c", FailureCategory.TEST, Outcome.RERUN_GREEN, end="2026-01-09T11:00:00+00:00"),
        _session("d", FailureCategory.TEST, Outcome.FAILED, end="2026-01-09T20:00:00+00:00"),
        # an end before the start is a clock problem, never a negative duration
        _session("e", FailureCategory.TEST, Outcome.FIXED, end="2026-01-09T09:00:00+00:00"),
    )
    assert m.median_time_to_green == 30 * 60
    assert m.time_to_green_sessions == 3


def test_fix_rate_per_fixer_counts_decided_attempts():
    first = _session(
        "a",
        FailureCategory.QUALITY,
        Outcome.FIXED,
        end="2026-01-09T11:00:00+00:00",
        attempts=[_attempt(1, ["lint", "deps"], False), _attempt(2, ["lint"], True)],
    )
    waiting = _session(
        "b", FailureCategory.QUALITY, Outcome.PENDING, attempts=[_attempt(1, ["lint"], None)]
    )
    m = _figures(first, waiting)
    assert (m.by_fixer["lint"].green, m.by_fixer["lint"].counted) == (1, 2)
    assert (m.by_fixer["deps"].green, m.by_fixer["deps"].counted) == (0, 1)
    assert m.attempts_used == {2: 1}


def test_sessions_per_day_covers_every_day_of_the_window():
    m = _figures(
        _session("a", FailureCategory.TEST, Outcome.PENDING, start="2026-01-10T01:00:00+00:00"),
        _session("b", FailureCategory.TEST, Outcome.PENDING, start="2026-01-10T23:00:00+00:00"),
        _session("c", FailureCategory.TEST, Outcome.PENDING, start="2026-01-08T12:00:00+00:00"),
        _session("d", FailureCategory.TEST, Outcome.PENDING, start="2025-12-01T12:00:00+00:00"),
        _session("e", FailureCategory.TEST, Outcome.PENDING, start="not a time"),
        days=3,
    )
    assert m.per_day == [("2026-01-08", 1), ("2026-01-09", 0), ("2026-01-10", 2)]
    with pytest.raises(ValueError):
        _figures(days=0)


def test_the_json_has_every_figure():
    body = metrics.to_json(
        _figures(
            _session("a", FailureCategory.TEST, Outcome.FIXED, end="2026-01-09T10:01:00+00:00")
        )
    )
    assert body["fix_rate_by_category"]["test"] == {"counted": 1, "green": 1, "rate": 1.0}
    assert body["time_to_green"] == {"median_seconds": 60.0, "sessions": 1}
    assert body["attempts_used"] == {"0": 1}
    assert len(body["sessions_per_day"]) == 30
    assert body["sessions"] == {"total": 1, "open": 0, "closed": 1}


def _names(events: list[metrics.StatEvent]) -> list[str]:
    return [e.name for e in events]


def test_stat_events_follow_the_session_from_open_to_green():
    opened = _session("a", FailureCategory.QUALITY, Outcome.PENDING)
    assert _names(metrics.stat_events(None, opened)) == ["cicd.session.opened"]

    published = dataclasses.replace(
        opened, attempt_history=[_attempt(1, ["lint"], None)], current_attempt=1
    )
    assert _names(metrics.stat_events(opened, published)) == [
        "cicd.attempt.started.standard-parallel-fixing",
        "cicd.stage.discovery",
        "cicd.fix.published.lint",
    ]
    green = dataclasses.replace(
        published,
        attempt_history=[_attempt(1, ["lint"], True)],
        status=SessionStatus.CLOSED,
        outcome=Outcome.FIXED,
        end_time="2026-01-09T10:02:00+00:00",
    )
    events = metrics.stat_events(published, green)
    assert _names(events) == [
        "cicd.fix.green.lint",
        "cicd.session.closed.fixed",
        "cicd.session.attempts",
        "cicd.session.time_to_green",
    ]
    assert events[-1].kind == "timing" and events[-1].value == 120_000
    assert events[1].tags == {"outcome": "fixed"}
    # saving the closed session again sends nothing twice
    assert metrics.stat_events(green, green) == []


def test_stat_names_cannot_be_split_by_a_hostile_value():
    state = _session(
        "a", FailureCategory.QUALITY, Outcome.PENDING, attempts=[_attempt(1, ["a.b c\n"], None)]
    )
    names = _names(metrics.stat_events(None, state))
    assert "cicd.fix.published.a_b_c_" in names
    assert all(n.count(".") <= 3 and "\n" not in n for n in names)


@pytest.mark.parametrize(
    ("outcome", "end", "archivable"),
    [
        (Outcome.FIXED, "2025-10-01T00:00:00+00:00", True),
        (Outcome.FIXED, "2026-01-01T00:00:00+00:00", False),  # within 30 days
        (Outcome.PENDING, None, False),  # open: never, however old
        (Outcome.FAILED, None, True),  # closed without an end: its start counts
    ],
)
def test_only_old_closed_sessions_are_archivable(outcome, end, archivable):
    state = _session("a", FailureCategory.TEST, outcome, start="2025-09-01T00:00:00+00:00", end=end)
    now = datetime.datetime(2026, 1, 10, tzinfo=datetime.UTC)
    assert metrics.archivable(metrics.summarize(state), now, 30) is archivable
