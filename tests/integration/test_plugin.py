"""The plugin's FastAPI app inside the real API server: webhook, health, sessions pages."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from cicd_devkit import sessions

from cicd_orchestrator import session
from cicd_orchestrator.airflow.names import SESSION_PREFIX
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.models import Run
from cicd_orchestrator.serde import to_json_obj
from cicd_orchestrator.webhooks.github import sign

pytestmark = pytest.mark.integration
SECRET = "webhook-test-secret"


@pytest.fixture(scope="module")
def hook(airflow_env):
    airflow_env.client.set_variable("cicd_webhook_secret", SECRET)
    url = f"{airflow_env.stack.url}/cicd/webhook/github"

    def post(event, payload, *, secret=SECRET, delivery=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        if secret:
            headers["X-Hub-Signature-256"] = sign(secret, body)
        return requests.post(url, data=body, headers=headers, timeout=60)

    return post


def payload(run_id, repo="hooks/shop", conclusion="failure", sha="d" * 40):
    return {
        "action": "completed",
        "repository": {"full_name": repo, "default_branch": "main"},
        "workflow_run": {
            "id": run_id,
            "conclusion": conclusion,
            "head_branch": "main",
            "head_sha": sha,
        },
    }


def test_health(airflow_env):
    resp = requests.get(f"{airflow_env.stack.url}/cicd/health", timeout=30)
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_unsigned_or_badly_signed_deliveries_are_refused(hook):
    assert hook("workflow_run", payload(1), secret=None).status_code == 401
    assert hook("workflow_run", payload(1), secret="wrong").status_code == 401
    # the signature is checked before the body is read as JSON
    assert hook("workflow_run", None, secret="wrong", raw=b"not json").status_code == 401


def test_malformed_and_irrelevant_deliveries(hook):
    assert hook("workflow_run", None, raw=b"{not json").status_code == 400
    assert hook("workflow_run", {"action": "completed"}).status_code == 400
    resp = hook("workflow_run", payload(5, conclusion="success"))
    assert resp.status_code == 202 and resp.json()["status"] == "ignored"
    assert hook("issues", {"action": "opened"}).json()["status"] == "ignored"


def test_a_failed_run_opens_one_session_and_replays_do_not(airflow_env, hook):
    delivery = str(uuid.uuid4())
    first = hook("workflow_run", payload(77), delivery=delivery)
    assert first.status_code == 202 and first.json()["status"] == "created"
    assert first.json()["priority"] == "critical"
    replay = hook("workflow_run", payload(77), delivery=delivery)
    assert replay.json()["status"] == "duplicate delivery"
    again = hook("workflow_run", payload(77))  # a new delivery for the same failed run
    assert again.json()["status"] == "duplicate"
    runs = [
        r
        for r in airflow_env.client.dag_runs(sessions.FIRST_DAG)
        if r["conf"].get("repository") == "hooks/shop" and r["conf"].get("run_id") == 77
    ]
    assert len(runs) == 1
    assert runs[0]["conf"]["provider"] == "github"


def test_sessions_pages_need_a_login(airflow_env, opened):
    url = f"{airflow_env.stack.url}/cicd/sessions"
    assert requests.get(url, timeout=30).status_code in (401, 403)
    token = airflow_env.client.http.headers["Authorization"]
    sid = opened["lint-failure"]
    airflow_env.wait(sid)
    page = requests.get(url, headers={"Authorization": token}, timeout=30)
    assert page.status_code == 200 and "CI/CD orchestration sessions" in page.text
    assert sid in page.text and "it/lint-failure" in page.text
    one = requests.get(f"{url}/{sid}", headers={"Authorization": token}, timeout=30)
    assert one.status_code == 200 and "Timeline" in one.text and "Report" in one.text
    filtered = requests.get(
        url,
        params={"repository": "nothing-like-this"},
        headers={"Authorization": token},
        timeout=30,
    )
    assert "No sessions." in filtered.text


def test_a_later_workflow_of_the_push_joins_its_open_session(airflow_env, hook):
    """Through the real API server: the session Variable is read and written in the
    metadata database (the Task SDK cannot write there)."""
    repo, sha = "hooks/joined", "e" * 40
    run = Run(
        81,
        repo,
        "lint",
        ".github/workflows/lint.yml",
        "main",
        sha,
        "push",
        RunStatus.COMPLETED,
        Conclusion.FAILURE,
        1,
    )
    state = session.new_session("github", run, load_config(), "2026-01-01T00:00:00+00:00")
    airflow_env.client.set_variable(
        SESSION_PREFIX + state.session_id, json.dumps(to_json_obj(state)), "a session"
    )
    first = hook("workflow_run", payload(81, repo=repo, sha=sha))
    assert first.json()["status"] == "created"
    assert first.json()["dag_run_id"] == f"{state.session_id}__attempt1"
    later = hook("workflow_run", payload(82, repo=repo, sha=sha))  # the push's other workflow
    assert later.status_code == 202 and later.json()["status"] == "joined", later.text
    joined = sessions.sessions(airflow_env.client)[state.session_id]
    assert session.session_runs(joined) == [81, 82]


def test_metrics_json_needs_a_login_and_counts_the_sessions(airflow_env, opened):
    url = f"{airflow_env.stack.url}/cicd/api/metrics"
    assert requests.get(url, timeout=30).status_code in (401, 403)
    token = airflow_env.client.http.headers["Authorization"]
    airflow_env.wait(opened["lint-failure"])
    figures = requests.get(url, headers={"Authorization": token}, timeout=30).json()
    assert figures["sessions"]["total"] >= 1 and figures["sessions"]["closed"] >= 1
    assert sum(day["sessions"] for day in figures["sessions_per_day"]) >= 1
    assert figures["days"] == 30 and len(figures["sessions_per_day"]) == 30
