"""GitLab webhook deliveries: the pure parser (documented payloads) and the plugin's route
(``POST /webhook/gitlab``) with the Variable and the DAG trigger stubbed."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from cicd_devkit.servers.gitlab.payloads import fixture_text

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.constants import Priority
from cicd_orchestrator.exceptions import ConfError
from cicd_orchestrator.session import session_id_for
from cicd_orchestrator.webhooks.gitlab import (
    JOB_EVENT,
    PIPELINE_EVENT,
    delivery_id,
    parse_gitlab_event,
    verify_token,
)

TOKEN = "hook-token-for-tests"


class NoSessions:
    """Airflow Variables without any session (the sessions are not opened here)."""

    def get(self, key: str, default: Any = None) -> Any:
        return default


def pipeline_hook(status: str = "failed", ref: str = "main") -> dict[str, Any]:
    data = json.loads(fixture_text("pipeline_hook"))
    data["object_attributes"].update(status=status, ref=ref)
    return dict(data)


def job_hook(status: str = "failed", allow_failure: bool = False) -> dict[str, Any]:
    data = json.loads(fixture_text("job_hook"))
    data.update(build_status=status, build_allow_failure=allow_failure, ref="main")
    return dict(data)


# --------------------------------------------------------------------------- the parser
def test_token_is_compared_whole_and_refused_without_configuration() -> None:
    assert verify_token(TOKEN, TOKEN)
    assert not verify_token(TOKEN, TOKEN + "x") and not verify_token(TOKEN, TOKEN[:-1])
    assert not verify_token(TOKEN, None) and not verify_token(TOKEN, "")
    assert not verify_token(None, TOKEN) and not verify_token("", "")


def test_delivery_ids() -> None:
    assert delivery_id("e-1", "w-1") == "gitlab:e-1"
    assert delivery_id(None, "w-1") == "gitlab:w-1"
    assert delivery_id("  ", None) is None


@pytest.mark.parametrize(
    ("ref", "priority"),
    [("main", Priority.CRITICAL), ("release/1.2", Priority.HIGH), ("feature/x", Priority.MEDIUM)],
)
def test_a_failed_pipeline_opens_a_gitlab_session(ref: str, priority: Priority) -> None:
    wanted, reason = parse_gitlab_event(PIPELINE_EVENT, "d1", pipeline_hook(ref=ref))
    assert reason == "ok" and wanted is not None
    assert wanted.repository == "gitlab-org/gitlab-test" and wanted.run_id == 31
    assert wanted.priority is priority and wanted.branch == ref
    assert wanted.conf() == {
        "repository": "gitlab-org/gitlab-test",
        "provider": "gitlab",
        "priority": priority.value,
        "run_id": 31,
        "head_sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
    }


def test_a_failed_job_opens_a_session_for_its_pipeline() -> None:
    wanted, _ = parse_gitlab_event(JOB_EVENT, "d2", job_hook())
    assert wanted is not None and wanted.run_id == 2366
    assert wanted.repository == "gitlab-org/gitlab-test" and wanted.provider == "gitlab"
    older = job_hook()
    del older["project"]  # older GitLab versions: the repository's homepage names the project
    wanted, _ = parse_gitlab_event(JOB_EVENT, "d3", older)
    assert wanted is not None and wanted.repository == "gitlab-org/gitlab-test"


@pytest.mark.parametrize(
    ("event", "payload", "why"),
    [
        (PIPELINE_EVENT, pipeline_hook("success"), "is success"),
        (PIPELINE_EVENT, pipeline_hook("running"), "is running"),
        (PIPELINE_EVENT, pipeline_hook("canceled"), "is canceled"),
        (JOB_EVENT, job_hook("success"), "is success"),
        (JOB_EVENT, job_hook("failed", allow_failure=True), "allow_failure"),
        ("Push Hook", {"object_kind": "push"}, "not handled"),
        ("Merge Request Hook", {"object_kind": "merge_request"}, "not handled"),
    ],
)
def test_irrelevant_events_are_ignored(event: str, payload: dict[str, Any], why: str) -> None:
    wanted, reason = parse_gitlab_event(event, "d", payload)
    assert wanted is None and why in reason


def test_cancelled_pipelines_count_when_configured() -> None:
    wanted, _ = parse_gitlab_event(PIPELINE_EVENT, "d", pipeline_hook("canceled"), True)
    assert wanted is not None


def test_nested_groups_are_ignored_with_a_reason() -> None:
    payload = pipeline_hook()
    payload["project"]["path_with_namespace"] = "org/team/app"
    wanted, reason = parse_gitlab_event(PIPELINE_EVENT, "d", payload)
    assert wanted is None and "subgroups" in reason


@pytest.mark.parametrize(
    ("event", "mutate"),
    [
        (PIPELINE_EVENT, lambda p: p.pop("object_attributes")),
        (PIPELINE_EVENT, lambda p: p["object_attributes"].update(id="31")),
        (PIPELINE_EVENT, lambda p: p.pop("project")),
        (PIPELINE_EVENT, lambda p: p["object_attributes"].update(sha=12)),
        (JOB_EVENT, lambda p: p.pop("pipeline_id")),
        (JOB_EVENT, lambda p: (p.pop("project"), p.pop("repository"))),
    ],
)
def test_malformed_payloads_are_conf_errors(event: str, mutate: Any) -> None:
    payload = pipeline_hook() if event == PIPELINE_EVENT else job_hook()
    mutate(payload)
    with pytest.raises(ConfError):
        parse_gitlab_event(event, "d", payload)
    with pytest.raises(ConfError):
        parse_gitlab_event(event, "d", [payload])


# --------------------------------------------------------------------------- the route
@pytest.fixture
def route(monkeypatch: pytest.MonkeyPatch) -> Any:
    from fastapi.testclient import TestClient

    from cicd_orchestrator.airflow import plugin_app

    variables = {"cicd_gitlab_webhook_token": TOKEN}
    triggered: list[tuple[str, dict[str, Any]]] = []
    runs: set[str] = set()

    def trigger(run_id: str, conf: dict[str, Any]) -> str:
        triggered.append((run_id, conf))
        if run_id in runs:
            return "duplicate"
        runs.add(run_id)
        return "created"

    monkeypatch.setattr(plugin_app, "_variable", variables.get)
    monkeypatch.setattr(plugin_app, "_trigger", trigger)
    monkeypatch.setattr(plugin_app, "deliveries", plugin_app.DeliveryCache())
    monkeypatch.setattr(state_store, "_variable", lambda: NoSessions())
    client = TestClient(plugin_app.create_app())

    def post(
        event: str,
        payload: Any,
        *,
        token: str | None = TOKEN,
        event_uuid: str | None = None,
        raw: bytes | None = None,
        webhook_uuid: str | None = "hook-1",
    ) -> Any:
        headers = {"X-Gitlab-Event": event, "Content-Type": "application/json"}
        if event_uuid != "":
            headers["X-Gitlab-Event-UUID"] = event_uuid or str(uuid.uuid4())
        if webhook_uuid:
            headers["X-Gitlab-Webhook-UUID"] = webhook_uuid
        if token is not None:
            headers["X-Gitlab-Token"] = token
        body = raw if raw is not None else json.dumps(payload).encode()
        return client.post("/webhook/gitlab", content=body, headers=headers)

    post.triggered = triggered  # type: ignore[attr-defined]
    return post


def test_the_route_refuses_a_missing_or_wrong_token_before_reading(route: Any) -> None:
    assert route(PIPELINE_EVENT, pipeline_hook(), token=None).status_code == 401
    assert route(PIPELINE_EVENT, pipeline_hook(), token="wrong").status_code == 401
    assert route(PIPELINE_EVENT, None, token="wrong", raw=b"{not json").status_code == 401
    assert route.triggered == []


def test_the_route_answers_malformed_and_irrelevant_deliveries(route: Any) -> None:
    assert route(PIPELINE_EVENT, None, raw=b"{not json").status_code == 400
    broken = pipeline_hook()
    broken.pop("object_attributes")
    assert route(PIPELINE_EVENT, broken).status_code == 400
    response = route(PIPELINE_EVENT, pipeline_hook("success"))
    assert response.status_code == 202 and response.json()["status"] == "ignored"
    assert route("Push Hook", {"object_kind": "push"}).json()["status"] == "ignored"
    assert route.triggered == []


def test_a_failed_pipeline_triggers_one_session_and_replays_do_not(route: Any) -> None:
    event_uuid = str(uuid.uuid4())
    first = route(PIPELINE_EVENT, pipeline_hook(), event_uuid=event_uuid)
    assert first.status_code == 202 and first.json()["status"] == "created"
    assert first.json()["priority"] == "critical"
    replay = route(PIPELINE_EVENT, pipeline_hook(), event_uuid=event_uuid)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate delivery"
    job = copy.deepcopy(job_hook())
    job["pipeline_id"] = 31
    job["project"] = pipeline_hook()["project"]
    job["sha"] = pipeline_hook()["object_attributes"]["sha"]  # a job of that pipeline
    again = route(JOB_EVENT, job)  # another delivery naming the same failed pipeline
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    (run_id, conf), _ = route.triggered
    sha = pipeline_hook()["object_attributes"]["sha"]
    sid = session_id_for("gitlab", "gitlab-org/gitlab-test", sha, "main")
    assert run_id == f"{sid}__attempt1"
    assert conf["provider"] == "gitlab" and conf["run_id"] == 31


def test_delivery_ids_come_from_either_uuid_header(route: Any) -> None:
    assert (
        route(PIPELINE_EVENT, pipeline_hook(), event_uuid="", webhook_uuid=None).status_code == 400
    )
    only_event = route(PIPELINE_EVENT, pipeline_hook("success"), webhook_uuid=None)
    assert only_event.status_code == 202
    only_hook = route(PIPELINE_EVENT, pipeline_hook("success"), event_uuid="", webhook_uuid="w9")
    assert only_hook.status_code == 202
    replay = route(PIPELINE_EVENT, pipeline_hook("success"), event_uuid="", webhook_uuid="w9")
    assert replay.json()["status"] == "duplicate delivery"


def test_a_merge_request_pipeline_is_a_session_of_its_source_branch() -> None:
    hook = pipeline_hook("failed", ref="refs/merge-requests/1/head")
    wanted, reason = parse_gitlab_event(PIPELINE_EVENT, "d", hook)
    assert reason == "ok" and wanted is not None
    assert wanted.branch == "test"  # the merge request's source branch
    assert wanted.run_id == 31


def test_merge_request_pipelines_map_to_their_merge_request() -> None:
    from cicd_orchestrator.ci.gitlab import mapping

    data = {"id": 5, "ref": "refs/merge-requests/15/merge", "sha": "c" * 40, "status": "failed"}
    run = mapping.to_run("g/p", data, ".gitlab-ci.yml")
    assert run.pull_request_number == 15 and run.event == "pull_request"
    for ref in ("main", "refs/merge-requests/x/head", "refs/merge-requests/0/head", "v1.0"):
        assert mapping.merge_request_of_ref(ref) is None, ref
