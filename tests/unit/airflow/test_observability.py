"""Session metrics reach a real StatsD listener (a UDP socket on loopback) through Airflow's
own metrics configuration (``[metrics] statsd_on``) when the state store saves a session."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from cicd_devkit.builders import new_state

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.constants import Outcome, SessionStatus

pytest.importorskip("statsd", reason="the statsd client (requirements.txt) is not installed")


@pytest.fixture
def statsd_listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.getsockname()[1]))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PREFIX", "airflow")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    try:
        yield listener
    finally:
        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        listener.close()


def _received(listener: socket.socket, until: str) -> list[str]:
    lines: list[str] = []
    while not any(line.startswith(until) for line in lines):
        packet, _ = listener.recvfrom(65535)
        lines.extend(packet.decode().splitlines())
    return lines


def test_a_session_from_open_to_fixed_is_counted_and_timed(variables, statsd_listener):
    state = new_state()
    state_store.save_session(state)
    assert "airflow.cicd.session.opened:1|c" in _received(statsd_listener, "airflow.cicd.session")

    state = state_store.load_session(state.session_id)
    state.status, state.outcome = SessionStatus.CLOSED, Outcome.FIXED
    state.current_attempt = 2
    state.end_time = "2026-01-01T00:05:00+00:00"  # five minutes after new_state's start
    state_store.save_session(state)
    lines = _received(statsd_listener, "airflow.cicd.session.time_to_green")
    assert "airflow.cicd.session.closed.fixed:1|c" in lines
    assert "airflow.cicd.session.attempts:2|c" in lines
    assert "airflow.cicd.session.time_to_green:300000.000000|ms" in lines


def test_a_failing_metrics_backend_never_fails_the_save(variables, monkeypatch):
    from cicd_orchestrator.airflow import observability

    def broken(events):
        raise OSError("the metrics backend is down")

    monkeypatch.setattr(observability, "send", broken)
    state = new_state()
    state_store.save_session(state)
    assert state_store.load_session(state.session_id).version == 1
