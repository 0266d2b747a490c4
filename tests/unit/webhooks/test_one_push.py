"""The failed workflows of one push open one session: the webhook derives the first
attempt's DAG run id from the push (Airflow refuses a second DAG run with one id), and a
later workflow of the push joins the open session."""

from __future__ import annotations

import concurrent.futures
import json
import threading
from typing import Any

import pytest
from cicd_devkit import builders
from fastapi.testclient import TestClient

from cicd_orchestrator import session
from cicd_orchestrator.airflow import plugin_app, state_store
from cicd_orchestrator.airflow.names import SESSION_PREFIX
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Outcome
from cicd_orchestrator.webhooks.github import sign

SECRET = "webhook-secret-for-tests"
SHA = "a" * 40


class Variables:
    def __init__(self) -> None:
        self.values: dict[str, str] = {"cicd_webhook_secret": SECRET}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: str, description: str | None = None) -> None:
        self.values[key] = value


def _delivery(run_id: int, workflow: str, sha: str = SHA, event: str = "push") -> dict[str, Any]:
    return {
        "action": "completed",
        "repository": {"full_name": "acme/shop", "default_branch": "main"},
        "workflow_run": {
            "id": run_id,
            "name": workflow,
            "path": f".github/workflows/{workflow}.yml",
            "conclusion": "failure",
            "head_branch": "main",
            "head_sha": sha,
            "event": event,
        },
    }


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Any:
    store = Variables()
    created: list[str] = []
    lock = threading.Lock()

    def trigger(run_id: str, conf: dict[str, Any]) -> str:
        with lock:  # what the metadata database's unique DAG run id does
            if run_id in created:
                return "duplicate"
            created.append(run_id)
            return "created"

    monkeypatch.setattr(plugin_app, "_variable", store.get)
    monkeypatch.setattr(plugin_app, "_trigger", trigger)
    monkeypatch.setattr(plugin_app, "deliveries", plugin_app.DeliveryCache())
    monkeypatch.setattr(state_store, "_variable", lambda: store)
    client = TestClient(plugin_app.create_app())

    def post(payload: dict[str, Any], delivery: str) -> Any:
        body = json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": "workflow_run",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": sign(SECRET, body),
            "Content-Type": "application/json",
        }
        return client.post("/webhook/github", content=body, headers=headers)

    post.created = created  # type: ignore[attr-defined]
    post.store = store  # type: ignore[attr-defined]
    return post


def test_two_workflows_of_one_push_delivered_at_once_trigger_one_session(hook: Any) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda args: hook(*args),
                [(_delivery(41, "lint"), "d-41"), (_delivery(42, "tests"), "d-42")],
            )
        )
    assert sorted(a.json()["status"] for a in answers) == ["created", "duplicate"]
    sid = session.session_id_for("github", "acme/shop", SHA, "main")
    assert hook.created == [f"{sid}__attempt1"]


def test_a_later_workflow_of_the_push_joins_the_open_session(hook: Any) -> None:
    run = builders.failed_run(41, "acme/shop")
    state = session.new_session("github", run, load_config(), builders.NOW)
    state_store.save_session(state)
    first = hook(_delivery(41, "lint"), "d-41")
    assert first.json()["status"] == "created"
    later = hook(_delivery(42, "tests"), "d-42")
    assert later.status_code == 202 and later.json()["status"] == "joined"
    assert session.session_runs(state_store.load_session(state.session_id)) == [41, 42]
    again = hook(_delivery(42, "tests"), "d-42b")  # a second delivery of it: joined once
    assert again.json()["status"] == "duplicate"
    assert session.session_runs(state_store.load_session(state.session_id)) == [41, 42]


def test_a_closed_session_is_not_joined(hook: Any) -> None:
    run = builders.failed_run(41, "acme/shop")
    state = session.new_session("github", run, load_config(), builders.NOW)
    session.close(state, Outcome.FIXED, builders.NOW, ["green"])
    state_store.save_session(state)
    hook(_delivery(41, "lint"), "d-41")
    assert hook(_delivery(42, "tests"), "d-42").json()["status"] == "duplicate"
    assert session.session_runs(state_store.load_session(state.session_id)) == [41]


def test_a_newer_commit_opens_its_own_session(hook: Any) -> None:
    hook(_delivery(41, "lint"), "d-41")
    newer = hook(_delivery(43, "lint", sha="b" * 40), "d-43")
    assert newer.json()["status"] == "created"
    assert len(hook.created) == 2
    assert not any(k.startswith(SESSION_PREFIX) for k in hook.store.values)


def test_outside_a_task_the_session_is_read_and_written_in_the_metadata_database() -> None:
    # the webhook runs in the API server, where the Task SDK's Variable cannot write
    assert state_store._variable() is state_store._MetadataVariables
