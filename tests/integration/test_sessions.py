"""Whole sessions through a real scheduler and triggerer on the example repositories."""

from __future__ import annotations

import subprocess
import time

import pytest
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import EXAMPLES
from cicd_devkit.scenarios import fail_head_until_red, materialize

from cicd_orchestrator.constants import Conclusion, Outcome, RepairKind, SessionStatus
from cicd_orchestrator.git import git

pytestmark = pytest.mark.integration


def _main_untouched(env, name):
    made = env.made[name]
    assert env.provider.branch_sha(made.repo, "main") == made.head_sha
    out = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short)", "refs/heads"],
        cwd=env.provider.repo_path(made.repo),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "main" in out
    assert all(b == "main" or b.startswith("cicd-fix/") for b in out), out


def test_quality_fix_goes_green(airflow_env, opened):
    state = airflow_env.wait(opened["lint-failure"])
    assert state.status is SessionStatus.CLOSED
    assert state.outcome is Outcome.FIXED, state.report
    assert state.current_attempt == 1
    record = state.attempt_record(1)
    assert record.published.kind is RepairKind.CHANGE
    assert record.published.branch.startswith("cicd-fix/")
    prs = airflow_env.provider.list_pull_requests(state.repository)
    assert len(prs) == 1 and prs[0].base == "main"
    assert state.report and "fixed" in state.report
    _main_untouched(airflow_env, "lint-failure")


def test_transient_failure_is_rerun_green(airflow_env, opened):
    state = airflow_env.wait(opened["transient-network"])
    assert state.outcome is Outcome.RERUN_GREEN, state.report
    assert state.current_attempt == 1
    assert state.failures[0].category.value == "infrastructure"
    assert airflow_env.provider.list_pull_requests(state.repository) == []
    _main_untouched(airflow_env, "transient-network")


def test_regression_escalates_to_issue_then_revert(airflow_env, opened):
    state = airflow_env.wait(opened["bisect-regression"], timeout=1500)
    made = airflow_env.made["bisect-regression"]
    culprit = dict(made.commits)["03-overtime"]
    assert state.outcome is Outcome.ROLLED_BACK, state.report
    assert state.context.culprit_sha == culprit
    issues = airflow_env.provider.list_issues(state.repository)
    assert len(issues) == 1 and culprit in issues[0].body
    issue_attempt = next(
        r.attempt for r in state.attempt_history if r.published and r.published.issue
    )
    # no attempt proposed a change: sequential fixing, which would repeat them, is skipped
    # (the issue comes at attempt 3, the revert at 4)
    assert issue_attempt == 3 and state.current_attempt == 4
    notes = [n for r in state.attempt_history for n in r.notes]
    assert any("sequential-fixing-with-validation skipped" in n for n in notes), notes
    assert "- adds: a validated revert of exactly the culprit commit" in state.report
    record = state.attempt_record(4)
    assert record.published.kind is RepairKind.REVERT
    revert = record.repairs[0]
    assert revert.revert_shas == [culprit]
    _main_untouched(airflow_env, "bisect-regression")


def _wait_dag_run(env, dag_id, run_id, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = next(r for r in env.client.dag_runs(dag_id) if r["dag_run_id"] == run_id)
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise AssertionError(f"{dag_id} {run_id} did not finish")


def test_duplicate_request_is_answered_by_the_existing_session(airflow_env, opened):
    sid = opened["lint-failure"]
    made = airflow_env.made["lint-failure"]
    conf = {"repository": made.repo, "run_id": airflow_env.failed_runs["lint-failure"]}
    resp = airflow_env.client.trigger(sessions.FIRST_DAG, conf)
    assert resp.status_code in (200, 201)
    dup = _wait_dag_run(airflow_env, sessions.FIRST_DAG, resp.json()["dag_run_id"])
    tis = {
        t["task_id"]: t["state"]
        for t in airflow_env.client.task_instances(sessions.FIRST_DAG, dup["dag_run_id"])
    }
    assert tis["open_session"] == "skipped"
    assert set(tis.values()) == {"skipped"}
    state = airflow_env.wait(sid)
    assert dup["dag_run_id"] not in {rec.dag_run_id for rec in state.attempt_history}
    assert len([k for k in sessions.sessions(airflow_env.client) if k == sid]) == 1
    assert len(airflow_env.provider.list_pull_requests(made.repo)) == 1


@pytest.mark.parametrize(
    "conf",
    [
        {"repository": "acme/shop", "run_id": "not-a-number"},
        {"repository": "no-slash", "run_id": 3},
        {"repository": "acme/shop", "run_id": -4},
    ],
)
def test_malformed_conf_is_rejected_with_400(airflow_env, conf):
    resp = airflow_env.client.trigger(sessions.FIRST_DAG, conf)
    assert resp.status_code == 400, resp.text
    assert not [k for k in sessions.sessions(airflow_env.client) if "acme" in k]


def test_unknown_repository_fails_clearly_without_a_session(airflow_env):
    resp = airflow_env.client.trigger(
        sessions.FIRST_DAG, {"repository": "nobody/nothing", "run_id": 99}
    )
    assert resp.status_code in (200, 201)
    run = _wait_dag_run(airflow_env, sessions.FIRST_DAG, resp.json()["dag_run_id"])
    assert run["state"] == "failed"
    tis = {
        t["task_id"]: t["state"]
        for t in airflow_env.client.task_instances(sessions.FIRST_DAG, run["dag_run_id"])
    }
    assert tis["open_session"] == "failed"
    assert not [
        s
        for s in sessions.sessions(airflow_env.client).values()
        if s.repository == "nobody/nothing"
    ]


def _push_next_commit(env, repo: str, base: str, tmp_path) -> str:
    """A person's next commit on main (CI starts on it): it supersedes the failure."""
    work = tmp_path / "next-commit"
    git(["clone", "--quiet", str(env.provider.repo_path(repo)), str(work)])
    git(["checkout", "--quiet", "--detach", base], work)
    (work / "NEXT.md").write_text("the next change\n", encoding="utf-8")
    git(["add", "-A"], work)
    git(["commit", "--quiet", "--author=Dev <dev@example.invalid>", "-m", "next"], work)
    git(["push", "--quiet", str(env.provider.repo_path(repo)), "HEAD:refs/heads/main"], work)
    return git(["rev-parse", "HEAD"], work).strip()


def test_a_failure_a_newer_commit_supersedes_ends_as_superseded(airflow_env, tmp_path):
    repo = "it/superseded"
    made = materialize(EXAMPLES / "lint-failure", airflow_env.provider, repo)
    run = made.head_run
    if run is None or run.conclusion is Conclusion.SUCCESS:
        run = fail_head_until_red(airflow_env.provider, repo, made.head_sha)
    sid, status = sessions.open_session(airflow_env.client, repo, run.id, run=run)
    assert status in (200, 201)
    # once the session is open (a failure superseded before that opens none)
    assert sessions.session_of_run(airflow_env.client, repo, run.id, timeout=300) == sid
    newer = _push_next_commit(airflow_env, repo, run.head_sha, tmp_path)
    state = airflow_env.wait(sid)
    assert state.outcome is Outcome.SUPERSEDED, state.report
    assert newer[:12] in state.report
    pulls = airflow_env.provider.list_pull_requests(repo)
    assert len(pulls) == len(state.links.pull_requests)
    for pull in pulls:  # the session's fix pull requests are closed, saying why
        assert pull.state == "closed"
        bodies = [c.body for c in airflow_env.provider.list_comments(repo, pull.number)]
        assert any("superseded" in b for b in bodies), bodies
    assert airflow_env.provider.branch_sha(repo, "main") == newer
