"""A delivery touches the metadata database (Variables, the DAG run) on a worker thread, never
on the API server's event loop: a database call there would hold up every request of the API
server while it waits for a lock."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from cicd_devkit import builders, sessions
from cicd_devkit.servers.gitlab.payloads import fixture_text
from fastapi.testclient import TestClient

from cicd_orchestrator.airflow import plugin_app

SECRET = "webhook-secret-for-tests"


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(what, whether it ran on the event loop) for each database call of a delivery."""
    seen: list[tuple[str, bool]] = []
    values = {plugin_app.SECRET_VARIABLE: SECRET, plugin_app.gl.TOKEN_VARIABLE: SECRET}

    def variable(key: str) -> str | None:
        seen.append((f"variable {key}", _on_event_loop()))
        return values.get(key)

    def trigger(run_id: str, conf: dict[str, Any]) -> str:
        seen.append(("trigger", _on_event_loop()))
        return "created"

    monkeypatch.setattr(plugin_app, "_variable", variable)
    monkeypatch.setattr(plugin_app, "_trigger", trigger)
    monkeypatch.setattr(plugin_app, "deliveries", plugin_app.DeliveryCache())
    return seen


def test_a_github_delivery_uses_the_database_off_the_event_loop(calls: list) -> None:
    run = builders.failed_run()
    body, headers = sessions.signed_delivery(SECRET, sessions.failure_event(run))
    resp = TestClient(plugin_app.create_app()).post(
        "/webhook/github", content=body, headers=headers
    )
    assert resp.status_code == 202 and resp.json()["status"] == "created"
    assert ("trigger", False) in calls
    assert calls and not any(on_loop for _, on_loop in calls), calls


def test_a_gitlab_delivery_uses_the_database_off_the_event_loop(calls: list) -> None:
    payload = json.loads(fixture_text("pipeline_hook"))
    payload["object_attributes"].update(status="failed", ref="main")
    body = json.dumps(payload).encode()
    headers = {
        "X-Gitlab-Event": "Pipeline Hook",
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "X-Gitlab-Token": SECRET,
        "Content-Type": "application/json",
    }
    resp = TestClient(plugin_app.create_app()).post(
        "/webhook/gitlab", content=body, headers=headers
    )
    assert resp.status_code == 202, resp.text
    assert ("trigger", False) in calls
    assert calls and not any(on_loop for _, on_loop in calls), calls
