"""A whole session through the GitHub provider, in the real Airflow, against the
GitHub-compatible server: failure, analysis, repair, push, pull request, status, green; with
faults injected; no duplicate pull request or comment, and the token nowhere. The server and
the connection ``github_default`` are the session-wide ``github`` fixture of conftest.py."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cicd_devkit.airflow_stack import EXAMPLES
from cicd_devkit.scenarios import materialize

from cicd_orchestrator.session import session_id_of_run

pytestmark = pytest.mark.integration


def _everything_written(home: Path) -> str:
    """Task logs, the stack's log, every Variable and XCom value of the metadata DB."""
    parts = [p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file()]
    parts.append((home / "standalone.log").read_text(errors="replace"))
    with sqlite3.connect(home / "airflow.db") as db:
        for (val,) in db.execute("SELECT val FROM variable"):
            parts.append(str(val))
        for (val,) in db.execute("SELECT value FROM xcom"):
            parts.append(val if isinstance(val, str) else bytes(val).decode(errors="replace"))
    return "\n".join(parts)


def test_a_session_through_github_goes_green_with_faults(airflow_env, github):
    server, token = github
    made = materialize(EXAMPLES / "lint-failure", airflow_env.provider, "octo/shipping")
    run_id = made.head_run.id
    faults = [
        server.inject("error", path=r"/actions/runs/\d+$", status=502),
        server.inject("secondary", path=r"/actions/runs/\d+/jobs", retry_after=1),
        server.inject("error", path=r"/pulls$", method="POST", status=503),
        server.inject("primary", path=r"/statuses/", reset_in=1),
    ]
    resp = airflow_env.client.trigger(
        "cicd_attempt_1_standard_parallel_fixing",
        {"repository": "octo/shipping", "run_id": run_id, "provider": "github"},
    )
    assert resp.status_code in (200, 201), resp.text
    state = airflow_env.wait(session_id_of_run("github", made.head_run))
    assert state.outcome.value == "fixed", state.report
    assert state.links.pull_requests[0].startswith(server.url)
    assert len(airflow_env.provider.list_pull_requests("octo/shipping")) == 1
    pr = airflow_env.provider.list_pull_requests("octo/shipping")[0]
    assert len(airflow_env.provider.list_comments("octo/shipping", pr.number)) == 1
    fix_sha = state.attempt_record(1).published.sha
    contexts = {s.context for s in airflow_env.provider.commit_statuses("octo/shipping", fix_sha)}
    assert contexts == {"cicd-orchestrator"}
    assert airflow_env.provider.branch_sha("octo/shipping", "main") == made.head_sha
    assert all(f.fired == 1 for f in faults), [f.fired for f in faults]
    written = _everything_written(airflow_env.stack.home)
    assert token not in written
    assert token not in json.dumps(state.report)


def test_the_failing_commit_and_the_report_comment_follow_the_session(airflow_env, github):
    """At the end of a real session, the failing commit's status (context
    ``cicd-orchestrator/session``) says how it ended and links the session's page; a fix pull
    request's one report comment was edited to the final report."""
    repo = "octo/feedback"
    made = materialize(EXAMPLES / "lint-failure", airflow_env.provider, repo)
    run_id = made.head_run.id
    resp = airflow_env.client.trigger(
        "cicd_attempt_1_standard_parallel_fixing",
        {"repository": repo, "run_id": run_id, "provider": "github"},
    )
    assert resp.status_code in (200, 201), resp.text
    sid = session_id_of_run("github", made.head_run)
    state = airflow_env.wait(sid)
    assert state.status.value == "closed", state.report
    local = airflow_env.provider

    [status] = [
        s
        for s in local.commit_statuses(repo, made.head_sha)
        if s.context == "cicd-orchestrator/session"
    ]
    assert status.target_url.endswith(f"/cicd/sessions/{sid}") or status.target_url == ""
    published = [r.published for r in state.attempt_history if r.published]
    prs = [p.pull_request for p in published if p.pull_request]
    issues = [p.issue for p in published if p.issue]
    assert state.outcome.value == "fixed", state.report
    assert prs and not issues
    assert status.state.value == "success"
    assert status.description == f"fixed: the fix in #{prs[-1].number} is green"
    for pr in prs:
        comments = local.list_comments(repo, pr.number)
        [report] = [c for c in comments if "cicd-orchestrator:report:" in c.body]
        assert f"Outcome: **{state.outcome.value}**" in report.body
        assert f"Pipeline: {repo} / " in report.body and "Trigger: push (no PR)" in report.body
        assert report.updated_at > report.created_at  # written when published, edited since
