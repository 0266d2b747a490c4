"""Finding 6, loops and noise: a failing run of the orchestrator's own fix branch, or of a
commit it authored, opens no session (webhooks, the sweep, a DAG run's conf); when a later
attempt publishes its fix, the earlier attempts' fix pull requests still open are closed
with a comment naming the new one, once."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from cicd_devkit.hostile import (
    NOW,
    STILL_RED,
    StartWorld,
    attempt_on,
    completed_run,
    fix,
    hostings,
    push_commit,
)
from cicd_devkit.servers.gitlab.payloads import fixture_text
from cicd_devkit.worlds import REPO, World

from cicd_orchestrator import session
from cicd_orchestrator.airflow import plugin_app, runtime, state_store, tasks
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.exceptions import OwnRunError
from cicd_orchestrator.git import BOT_EMAIL, BOT_NAME
from cicd_orchestrator.publish.change import fix_branch_name, publish_change
from cicd_orchestrator.stages import opening
from cicd_orchestrator.stages.sweep import sweep
from cicd_orchestrator.webhooks.github import sign

SECRET = "webhook-secret-for-tests"
GITLAB_TOKEN = "gitlab-hook-token-for-tests"
BOT = f"{BOT_NAME} <{BOT_EMAIL}>"


# --------------------------------------------------------------------------- webhooks
@pytest.fixture
def post(monkeypatch: pytest.MonkeyPatch) -> Any:
    """POST a delivery to the plugin's GitHub or GitLab route; what was triggered is kept."""
    from fastapi.testclient import TestClient

    variables = {
        "cicd_webhook_secret": SECRET,
        "cicd_gitlab_webhook_token": GITLAB_TOKEN,
        "cicd_orchestrator_config": json.dumps({"fix_branch_prefix": "bot-fixes/"}),
    }
    triggered: list[dict[str, Any]] = []
    monkeypatch.setattr(plugin_app, "_variable", variables.get)
    monkeypatch.setattr(
        plugin_app, "_trigger", lambda run_id, conf: triggered.append(conf) or "created"
    )
    monkeypatch.setattr(plugin_app, "deliveries", plugin_app.DeliveryCache())
    client = TestClient(plugin_app.create_app())

    def send(hosting: str, event: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload).encode()
        if hosting == "github":
            headers = {
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(SECRET, body),
            }
        else:
            headers = {
                "X-Gitlab-Event": event,
                "X-Gitlab-Event-UUID": str(uuid.uuid4()),
                "X-Gitlab-Token": GITLAB_TOKEN,
            }
        headers["Content-Type"] = "application/json"
        return client.post(f"/webhook/{hosting}", content=body, headers=headers)

    send.triggered = triggered  # type: ignore[attr-defined]
    return send


def _workflow_run(branch: str, email: str) -> dict[str, Any]:
    return {
        "action": "completed",
        "repository": {"full_name": REPO, "default_branch": "main"},
        "workflow_run": {
            "id": 4242,
            "conclusion": "failure",
            "head_branch": branch,
            "head_sha": "a" * 40,
            "head_commit": {"id": "a" * 40, "author": {"name": "x", "email": email}},
        },
    }


def _pipeline(ref: str, email: str) -> dict[str, Any]:
    data = json.loads(fixture_text("pipeline_hook"))
    data["object_attributes"].update(status="failed", ref=ref)
    data["commit"]["author"]["email"] = email
    return dict(data)


def _job(email: str) -> dict[str, Any]:
    data = json.loads(fixture_text("job_hook"))
    data.update(build_status="failed", build_allow_failure=False, ref="main")
    data["commit"]["author_email"] = email
    return dict(data)


def test_webhooks_ignore_the_orchestrator_s_own_runs(post: Any) -> None:
    ignored = [
        post("github", "workflow_run", _workflow_run("bot-fixes/main-run1-attempt1", "d@x.io")),
        post("github", "workflow_run", _workflow_run("main", BOT_EMAIL)),
        post("github", "workflow_run", _workflow_run("main", BOT_EMAIL.upper())),
        post("gitlab", "Pipeline Hook", _pipeline("bot-fixes/main-run1-attempt2", "d@x.io")),
        post("gitlab", "Pipeline Hook", _pipeline("main", BOT_EMAIL)),
        post("gitlab", "Job Hook", _job(BOT_EMAIL)),
    ]
    for answer in ignored:
        assert answer.status_code == 202 and answer.json()["status"] == "ignored"
        assert "the orchestrator's own" in answer.json()["reason"]
    assert post.triggered == []
    # somebody else's failures still open sessions
    assert post("github", "workflow_run", _workflow_run("main", "d@x.io")).json()["status"] == (
        "created"
    )
    human = copy.deepcopy(_pipeline("main", "d@x.io"))
    assert post("gitlab", "Pipeline Hook", human).json()["status"] == "created"
    assert len(post.triggered) == 2


# --------------------------------------------------------------------------- sweep and conf
def _own_failures(world: World) -> dict[str, str]:
    """Failing runs of: a fix branch, a commit the orchestrator authored, and a person's
    commit (branch -> sha, each run completed)."""
    shas = {
        "cicd-fix/main-run1-attempt1": push_commit(world, "cicd-fix/main-run1-attempt1", STILL_RED),
        "feature/by-the-bot": push_commit(world, "feature/by-the-bot", STILL_RED, author=BOT),
        "feature/by-a-person": push_commit(world, "feature/by-a-person", STILL_RED),
    }
    for sha in shas.values():
        assert completed_run(world, sha).conclusion.value == "failure"
    return shas


@pytest.mark.parametrize("kind", hostings("github", "local"))
def test_the_sweep_and_a_conf_open_no_session_for_the_orchestrator_s_runs(
    start: StartWorld, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = start(kind)
    shas = _own_failures(world)
    config = load_config(
        {
            "local_ci_root": str(world.local.root),
            "watched_repositories": [
                {"repository": REPO, "branches": list(shas), "provider": kind}
            ],
        }
    )
    provider = world.provider()
    found = sweep(config, lambda name: provider, lambda sid: False)
    assert [provider.get_run(REPO, item.run_id).head_sha for item in found] == [
        shas["feature/by-a-person"]
    ]
    for branch, sha in shas.items():
        run = completed_run(world, sha)
        request = opening.parse_request({"repository": REPO, "run_id": run.id, "provider": kind})
        if branch == "feature/by-a-person":
            assert opening.failed_run_of(provider, request, config).id == run.id
            continue
        with pytest.raises(OwnRunError, match="ignored"):
            opening.failed_run_of(provider, request, config)

    # the DAG's first task skips with the reason
    bot_run = completed_run(world, shas["feature/by-the-bot"])
    monkeypatch.setattr(state_store, "load_orchestrator_config", lambda overrides=None: config)
    monkeypatch.setattr(runtime, "provider_for", lambda name, cfg: provider)
    monkeypatch.setattr(state_store, "session_exists", lambda sid: False)

    class DagRun:
        run_id = "manual__own"

    params = {"repository": REPO, "run_id": bot_run.id, "provider": kind}
    with pytest.raises(AirflowSkipException, match="authored by the orchestrator"):
        tasks.open_session(
            "cicd_attempt_1", "standard-parallel-fixing", params=params, dag_run=DagRun()
        )


# --------------------------------------------------------------------------- superseded
@pytest.mark.parametrize("kind", hostings("github", "local", "gitlab"))
def test_a_later_attempt_closes_the_earlier_fix_pull_request(start: StartWorld, kind: str) -> None:
    world = start(kind)
    first_attempt = attempt_on(world)
    state = first_attempt.state
    first = publish_change(first_attempt, [fix()], "report 1")
    session.fold_publish(state, 1, 0.0, first, NOW)
    session.start_attempt(state, 2, Strategy.EXTENDED_ANALYSIS, NOW)
    second_attempt = Attempt(
        state, 2, first_attempt.config, first_attempt.provider, cache_dir=first_attempt.cache_dir
    )
    second = publish_change(second_attempt, [fix("Another way")], "report 2")
    again = publish_change(second_attempt, [fix("Another way")], "report 2")  # a retried task

    old, new = first.pull_request, second.pull_request
    assert old is not None and new is not None and old.number != new.number
    assert again.pull_request.number == new.number
    assert fix_branch_name(second_attempt) == new.head != old.head
    assert world.local.get_pull_request(REPO, old.number).state == "closed"
    assert world.local.get_pull_request(REPO, new.number).state == "open"  # the result
    closing = [c for c in world.local.list_comments(REPO, old.number) if "Superseded" in c.body]
    assert len(closing) == 1
    assert new.url in closing[0].body and f"number {new.number}" in closing[0].body
    assert any("closed the pull request of attempt 1" in n for n in second.notes)
