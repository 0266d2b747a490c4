"""The sessions pages: only users who may read the session DAGs' runs see them, every value
of a session is escaped, and only http(s) URLs become links."""

from __future__ import annotations

from typing import Any

import pytest
from cicd_devkit.builders import new_state
from fastapi.testclient import TestClient

from cicd_orchestrator.airflow import plugin_app


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
    return state


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.api_fastapi import app as airflow_app

    manager = _Manager(set(plugin_app.session_dag_ids()))
    monkeypatch.setattr(airflow_app, "get_auth_manager", lambda: manager)
    monkeypatch.setattr(plugin_app, "_session_states", lambda: [_hostile_state()])
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


def test_every_value_is_escaped_and_only_http_links_are_links(pages: Any) -> None:
    listing = pages.get("/sessions").text
    page = pages.get(f"/sessions/{_hostile_state().session_id}").text
    for text in (listing, page):
        assert "<script>" not in text and "<img" not in text
        assert "href='javascript:" not in text and "href='data:" not in text
    assert "&lt;script&gt;alert(&#x27;repo&#x27;)&lt;/script&gt;" in listing
    assert "href='https://example.test/acme/shop/pull/7'" in listing
    assert "&lt;/pre&gt;&lt;script&gt;" in page
