"""Webhook deliveries are untrusted input: a body is read with a cap, anything that does not
parse is a 400, and a delivery is recorded only once its session was triggered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cicd_orchestrator.airflow import plugin_app
from cicd_orchestrator.webhooks.github import sign

SECRET = "webhook-secret-for-the-tests"


def _workflow_run(run_id: int = 42) -> dict[str, Any]:
    return {
        "action": "completed",
        "repository": {"full_name": "acme/shop", "default_branch": "main"},
        "workflow_run": {
            "id": run_id,
            "head_branch": "main",
            "head_sha": "a" * 40,
            "status": "completed",
            "conclusion": "failure",
            "event": "push",
        },
    }


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Any:
    variables = {"cicd_webhook_secret": SECRET}
    outcomes: list[str] = []

    def trigger(run_id: str, conf: dict[str, Any]) -> str:
        if outcomes and outcomes[0] == "fail":
            outcomes.pop(0)
            raise RuntimeError("the metadata database is away")
        outcomes.append(run_id)
        return "created"

    monkeypatch.setattr(plugin_app, "_variable", variables.get)
    monkeypatch.setattr(plugin_app, "_trigger", trigger)
    monkeypatch.setattr(plugin_app, "deliveries", plugin_app.DeliveryCache())
    client = TestClient(plugin_app.create_app(), raise_server_exceptions=False)

    def post(body: bytes, delivery: str = "d-1", signed: bool = True) -> Any:
        headers = {
            "X-GitHub-Event": "workflow_run",
            "X-GitHub-Delivery": delivery,
            "Content-Type": "application/json",
        }
        if signed:
            headers["X-Hub-Signature-256"] = sign(SECRET, body)
        return client.post("/webhook/github", content=body, headers=headers)

    post.outcomes = outcomes  # type: ignore[attr-defined]
    return post


def test_a_body_over_the_cap_is_refused_before_it_is_read_whole(
    hook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin_app, "MAX_BODY_BYTES", 1000)
    big = json.dumps({**_workflow_run(), "padding": "x" * 5000}).encode()
    response = hook(big)
    assert response.status_code == 413
    assert hook.outcomes == []


def test_a_chunked_body_is_cut_off_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Content-Length: the body is read in chunks and refused once it passes the cap."""
    monkeypatch.setattr(plugin_app, "MAX_BODY_BYTES", 1000)
    monkeypatch.setattr(plugin_app, "_variable", {"cicd_webhook_secret": SECRET}.get)
    client = TestClient(plugin_app.create_app())

    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 100

    headers = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-2"}
    response = client.post("/webhook/github", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_deeply_nested_json_is_a_bad_request_not_a_crash(hook: Any) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    response = hook(nested)
    assert response.status_code == 400
    assert "malformed payload" in response.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b'"a string"', b"[1, 2]", json.dumps({"workflow_run": 7}).encode()],
)
def test_malformed_payloads_are_bad_requests(hook: Any, payload: bytes) -> None:
    assert hook(payload).status_code == 400


def test_a_failed_trigger_then_a_redelivery_opens_the_session(hook: Any) -> None:
    body = json.dumps(_workflow_run()).encode()
    hook.outcomes.append("fail")
    first = hook(body, delivery="d-7")
    assert first.status_code == 500  # the trigger failed: nothing recorded
    again = hook(body, delivery="d-7")  # GitHub redelivers the same delivery
    assert again.status_code == 202 and again.json()["status"] == "created"
    replay = hook(body, delivery="d-7")
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate delivery"
    assert len(hook.outcomes) == 1


def test_an_unsigned_delivery_is_refused(hook: Any) -> None:
    assert hook(json.dumps(_workflow_run()).encode(), signed=False).status_code == 401
    assert hook.outcomes == []
