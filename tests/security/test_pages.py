"""The sessions and Metrics pages: only users who may read the session DAGs' runs see them
(the metrics JSON too), every value of a session is escaped (in tables, SVG charts and
pagination links), and only http(s) URLs become links."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cicd_devkit.builders import new_state
from fastapi.testclient import TestClient

from cicd_orchestrator.airflow import plugin_app, sessions_db
from cicd_orchestrator.constants import Outcome, SessionStatus
from cicd_orchestrator.models import AttemptRecord, Published, Repair
from cicd_orchestrator.serde import to_json_obj

HOSTILE_FIXER = "lint</text><script>alert('fixer')</script>"


class _Manager:
    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[str] = []

    def is_authorized_dag(
        self, *, method: str, access_entity: Any, details: Any, user: Any
    ) -> bool:
        self.asked.append(details.id)
        return details.id in self.allowed


def _hostile_state() -> Any:
    state = new_state()
    state.repository = "acme/<script>alert('repo')</script>"
    state.branch = "main'><img src=x onerror=alert(1)>"
    state.links.failed_run = "javascript:alert('run')"
    state.links.pull_requests = ["https://example.test/acme/shop/pull/7", "data:text/html,<b>x</b>"]
    state.report = "</pre><script>alert('report')</script>"
    state.status, state.outcome = SessionStatus.CLOSED, Outcome.FIXED
    state.end_time = "2026-01-01T00:30:00+00:00"
    record = AttemptRecord(attempt=1, strategy=state.current_strategy or "standard-parallel-fixing")
    record.published = Published(kind="change")
    record.repairs = [
        Repair(fixer=HOSTILE_FIXER, kind="change", category="quality", description="")
    ]
    record.status = "ci_green"
    state.attempt_history = [record]
    return state


def _rows(*states: Any) -> list[sessions_db.Row]:
    texts = [
        (sessions_db.SESSION_PREFIX + s.session_id, json.dumps(to_json_obj(s))) for s in states
    ]
    return [(key, text, lambda text=text: text) for key, text in texts]


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.api_fastapi import app as airflow_app

    manager = _Manager(set(plugin_app.session_dag_ids()))
    monkeypatch.setattr(airflow_app, "get_auth_manager", lambda: manager)
    state = _hostile_state()
    monkeypatch.setattr(sessions_db, "session_rows", lambda: _rows(state))
    monkeypatch.setattr(
        sessions_db,
        "session_text",
        lambda sid: _rows(state)[0][1] if sid == state.session_id else None,
    )
    app = plugin_app.create_app()
    app.dependency_overrides[plugin_app._get_user()] = lambda: object()
    client = TestClient(app)
    client.manager = manager  # type: ignore[attr-defined]
    return client


def test_a_user_who_may_not_read_the_session_dags_sees_nothing(pages: Any) -> None:
    pages.manager.allowed.discard(plugin_app.MONITOR_DAG_ID)
    listing = pages.get("/sessions")
    assert listing.status_code == 403 and "acme" not in listing.text
    one = pages.get(f"/sessions/{_hostile_state().session_id}")
    assert one.status_code == 403 and "script" not in one.text
    figures = pages.get("/metrics")
    assert figures.status_code == 403 and "<svg" not in figures.text and "lint" not in figures.text
    data = pages.get("/api/metrics")
    assert data.status_code == 403 and "fix_rate" not in data.text


def test_every_value_is_escaped_and_only_http_links_are_links(pages: Any) -> None:
    listing = pages.get("/sessions").text
    page = pages.get(f"/sessions/{_hostile_state().session_id}").text
    for text in (listing, page):
        assert "<script>" not in text and "<img" not in text
        assert "href='javascript:" not in text and "href='data:" not in text
    assert "&lt;script&gt;alert(&#x27;repo&#x27;)&lt;/script&gt;" in listing
    assert "href='https://example.test/acme/shop/pull/7'" in listing
    assert "&lt;/pre&gt;&lt;script&gt;" in page


def test_the_metrics_page_escapes_what_it_draws(pages: Any) -> None:
    page = pages.get("/metrics")
    assert page.status_code == 200
    text = page.text
    assert "<script>" not in text and "alert('fixer')" not in text
    assert "lint&lt;/text&gt;&lt;script&gt;alert(&#x27;fixer&#x27;)&lt;/script&gt;" in text
    # the SVG holds only the elements the page draws
    svg = "".join(re.findall(r"<svg.*?</svg>", text, re.S))
    assert svg and set(re.findall(r"<(\w+)", svg)) <= {"svg", "text", "rect", "title"}
    body = pages.get("/api/metrics").json()
    assert body["fix_rate_by_fixer"] == {HOSTILE_FIXER: {"counted": 1, "green": 1, "rate": 1.0}}


def test_filters_are_escaped_in_the_form_and_the_pagination_links(pages: Any) -> None:
    attack = "'><script>alert(1)</script>"
    text = pages.get("/sessions", params={"repository": attack, "page_size": 1}).text
    assert "<script>alert(1)" not in text
    assert "value='&#x27;&gt;&lt;script&gt;" in text


@pytest.mark.parametrize(
    "query", ["page=0", "page=x", "page_size=0", "page_size=100000", "days=0", "days=100000"]
)
def test_bad_paging_or_window_is_a_clear_error(pages: Any, query: str) -> None:
    path = "/metrics" if query.startswith("days") else "/sessions"
    answer = pages.get(f"{path}?{query}")
    assert answer.status_code == 422, answer.text


def test_an_unreadable_session_is_a_clear_error_not_a_crash(pages: Any, monkeypatch) -> None:
    monkeypatch.setattr(sessions_db, "session_text", lambda sid: "{not json")
    answer = pages.get("/sessions/anything")
    assert answer.status_code == 500 and "does not read" in answer.text
    assert pages.get("/sessions").status_code == 200  # the list still shows the others
