from __future__ import annotations

import pytest

from cicd_orchestrator.constants import Priority
from cicd_orchestrator.exceptions import ConfError
from cicd_orchestrator.webhooks.github import DeliveryCache, parse_event, sign, verify_signature

REPO = {"full_name": "acme/shop", "default_branch": "main"}


def run_payload(conclusion="failure", action="completed", branch="main"):
    return {
        "action": action,
        "repository": REPO,
        "workflow_run": {
            "id": 42,
            "conclusion": conclusion,
            "head_branch": branch,
            "head_sha": "a" * 40,
        },
    }


def test_signature():
    body = b'{"a": 1}'
    assert verify_signature("s3cret", body, sign("s3cret", body))
    assert not verify_signature("s3cret", body, sign("other", body))
    assert not verify_signature("s3cret", body + b" ", sign("s3cret", body))
    assert not verify_signature("s3cret", body, None)
    assert not verify_signature("s3cret", body, "sha1=abc")
    assert not verify_signature(None, body, sign("s3cret", body))  # no secret: refuse all


@pytest.mark.parametrize(
    "branch,priority",
    [
        ("main", Priority.CRITICAL),
        ("release/2.1", Priority.HIGH),
        ("hotfix/login", Priority.URGENT),
        ("feature/x", Priority.MEDIUM),
    ],
)
def test_failed_workflow_run_opens_a_session_with_priority(branch, priority):
    wanted, reason = parse_event("workflow_run", "d1", run_payload(branch=branch))
    assert reason == "ok"
    assert wanted.run_id == 42 and wanted.repository == "acme/shop"
    assert wanted.priority is priority
    assert wanted.conf()["provider"] == "github"


@pytest.mark.parametrize(
    "payload,why",
    [
        (run_payload(conclusion="success"), "concluded success"),
        (run_payload(action="requested"), "not completed"),
        (run_payload(conclusion="cancelled"), "concluded cancelled"),
    ],
)
def test_irrelevant_runs_are_ignored(payload, why):
    wanted, reason = parse_event("workflow_run", "d", payload)
    assert wanted is None and why in reason


def test_cancelled_counts_when_configured():
    wanted, _ = parse_event("workflow_run", "d", run_payload(conclusion="cancelled"), True)
    assert wanted is not None


def test_check_suite_and_deployment_status():
    suite = {
        "action": "completed",
        "repository": REPO,
        "check_suite": {"conclusion": "failure", "head_sha": "b" * 40, "head_branch": "main"},
    }
    wanted, _ = parse_event("check_suite", "d", suite)
    assert wanted.head_sha == "b" * 40 and wanted.run_id is None
    dep = {
        "repository": REPO,
        "deployment_status": {"state": "failure"},
        "deployment": {"sha": "c" * 40, "ref": "release/1"},
    }
    wanted, _ = parse_event("deployment_status", "d", dep)
    assert wanted.head_sha == "c" * 40 and wanted.priority is Priority.HIGH
    dep["deployment_status"]["state"] = "success"
    assert parse_event("deployment_status", "d", dep)[0] is None


def test_other_events_are_ignored():
    assert parse_event("push", "d", {"repository": REPO})[0] is None
    assert parse_event("ping", "d", {"zen": "x"})[1] == "ping"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"action": "completed"},
        {"action": "completed", "repository": REPO, "workflow_run": {"id": "x"}},
    ],
)
def test_malformed_payloads_are_errors(payload):
    with pytest.raises(ConfError):
        parse_event("workflow_run", "d", payload)


def test_delivery_cache_is_bounded():
    cache = DeliveryCache(size=2)
    assert not cache.known("a")  # not recorded until its session was triggered
    cache.record("a")
    assert cache.known("a")
    cache.record("b")
    cache.record("c")
    assert not cache.known("a")  # evicted
