"""The local CI provider: pushes start asynchronous runs; re-runs, statuses, PRs, safety."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from cicd_devkit.worlds import signed_marker

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import (
    ProviderError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
)

REPO = "acme/widgets"
WORKFLOW = ".github/workflows/ci.yml"

RERUN_WORKFLOW = """\
name: CI
on: [push, pull_request]
jobs:
  lint:
    steps:
      - run: echo lint ok
  flaky:
    steps:
      - run: |
          echo "attempt $GITHUB_RUN_ATTEMPT"
          test "$GITHUB_RUN_ATTEMPT" -ge 2
  after:
    needs: flaky
    steps:
      - run: echo "after on attempt $GITHUB_RUN_ATTEMPT"
"""


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    prov = LocalProvider(tmp_path / "ci", secrets={"API_KEY": "k-998877"})
    prov.create_repository(REPO)
    return prov


def git_push(provider: LocalProvider, work: Any, refspec: str) -> None:
    """``git push`` as a person runs it: with the pusher's whole environment, which the
    post-receive hook sees (and must not hand on to the runs it starts)."""
    url = str(provider.repo_path(REPO))
    subprocess.run(["git", "push", "-q", url, refspec], cwd=work.path, check=True, timeout=60)


def push(provider: LocalProvider, work: Any, branch: str = "main") -> str:
    git_push(provider, work, f"HEAD:refs/heads/{branch}")
    return str(work.head())


def make_work(make_git_repo: Any, files: dict[str, str]) -> Any:
    """A working repository ``work`` with ``files`` committed on ``main``."""
    work = make_git_repo("work")
    work.commit(files, "initial")
    return work


def test_is_a_ci_provider(provider: LocalProvider, tmp_path: Path) -> None:
    assert isinstance(provider, CIProvider) and provider.name == "local"
    assert provider.default_branch(REPO) == "main"
    assert provider.git_remote(REPO).url == str(provider.repo_path(REPO))
    assert provider.git_remote(REPO).env == {}
    assert provider.repositories() == [REPO]
    rebuilt = LocalProvider(tmp_path / "ci")  # from the root alone, as a detached process does
    assert rebuilt.secrets == {"API_KEY": "k-998877"}
    assert "release/*" in rebuilt.protected_branches(REPO)


def test_push_starts_an_async_run_that_completes(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    wf = (
        "on: push\njobs:\n  build:\n    steps:\n"
        "      - run: sleep 4; echo key=${{ secrets.API_KEY }}\n"
    )
    work = make_work(make_git_repo, {WORKFLOW: wf})
    sha = push(provider, work)
    # the push does not wait for CI: its run is still going when the push returns
    (run,) = provider.list_runs(REPO, branch="main")
    assert run.head_sha == sha and run.status in (RunStatus.QUEUED, RunStatus.IN_PROGRESS)
    assert run.run_number == 1 and run.event == "push" and run.workflow == WORKFLOW
    assert provider.ref_status(REPO, sha).state is CombinedState.PENDING
    done = provider.wait_for_run(REPO, run.id, timeout=60)
    assert done.status is RunStatus.COMPLETED and done.conclusion is Conclusion.SUCCESS
    (job,) = done.jobs
    assert job.name == "build" and job.conclusion is Conclusion.SUCCESS and job.run_id == run.id
    assert [s.name for s in job.steps] == [
        "Set up job",
        "Run sleep 4; echo key=${{ secrets.API_KEY }}",
        "Complete job",
    ]
    with provider.open_job_log(REPO, job.id) as fh:
        text = fh.read().decode()
    assert "key=***" in text and "k-998877" not in text
    assert provider.ref_status(REPO, sha).state is CombinedState.SUCCESS
    assert provider.ref_status(REPO, "0" * 40).state is CombinedState.NONE
    assert provider.list_failed_runs(REPO, "main") == []


def test_branch_filter_and_deletion_start_nothing(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    wf = "on:\n  push:\n    branches: [main]\njobs:\n  a:\n    steps:\n      - run: 'true'\n"
    work = make_work(make_git_repo, {WORKFLOW: wf})
    push(provider, work, "feature/x")
    assert provider.list_runs(REPO) == []
    git_push(provider, work, ":refs/heads/feature/x")
    work.git("tag", "v1")
    git_push(provider, work, "refs/tags/v1")
    assert provider.list_runs(REPO) == []


def test_rerun_failed_jobs_makes_attempt_two(provider: LocalProvider, make_git_repo: Any) -> None:
    work = make_work(make_git_repo, {WORKFLOW: RERUN_WORKFLOW})
    sha = push(provider, work)
    (run,) = provider.list_runs(REPO, head_sha=sha)
    first = provider.wait_for_run(REPO, run.id, timeout=60)
    assert first.conclusion is Conclusion.FAILURE and first.run_attempt == 1
    assert [j.name for j in first.failed_jobs] == ["flaky"]
    assert provider.ref_status(REPO, sha).state is CombinedState.FAILURE
    assert [r.id for r in provider.list_failed_runs(REPO, "main")] == [run.id]
    ids1 = {j.name: j.id for j in first.jobs}

    assert provider.rerun_failed_jobs(REPO, run.id) == 2
    second = provider.wait_for_run(REPO, run.id, timeout=60)
    assert second.run_attempt == 2 and second.conclusion is Conclusion.SUCCESS
    ids2 = {j.name: j.id for j in second.jobs}
    assert ids2["lint"] == ids1["lint"]  # kept its result
    assert ids2["flaky"] != ids1["flaky"] and ids2["after"] != ids1["after"]
    attempts = {j.name: j.run_attempt for j in second.jobs}
    assert attempts == {"lint": 1, "flaky": 2, "after": 2}
    with provider.open_job_log(REPO, ids2["flaky"]) as fh:
        assert b"attempt 2" in fh.read()
    assert provider.get_run(REPO, run.id, attempt=1).conclusion is Conclusion.FAILURE
    assert provider.ref_status(REPO, sha).state is CombinedState.SUCCESS
    with pytest.raises(ProviderError, match="no failed jobs"):
        provider.rerun_failed_jobs(REPO, run.id)
    assert provider.rerun_all_jobs(REPO, run.id) == 3
    third = provider.wait_for_run(REPO, run.id, timeout=60)
    assert {j.run_attempt for j in third.jobs} == {3}


def test_commit_statuses_do_not_count_in_the_combined_state(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    work = make_work(make_git_repo, {"README.md": "no workflow\n"})
    sha = push(provider, work)
    provider.set_commit_status(REPO, sha, CombinedState.FAILURE, "fixing", "local://x")
    assert provider.ref_status(REPO, sha).state is CombinedState.NONE
    provider.set_commit_status(REPO, sha, CombinedState.SUCCESS, "fixed")
    (status,) = provider.commit_statuses(REPO, sha)
    assert status.context == "cicd-orchestrator" and status.state is CombinedState.SUCCESS
    provider.add_commit_status(REPO, sha, "external/check", CombinedState.FAILURE)
    assert provider.ref_status(REPO, sha).state is CombinedState.FAILURE


def test_push_branch_safety(provider: LocalProvider, make_git_repo: Any, tmp_path: Path) -> None:
    work = make_work(make_git_repo, {"a.txt": "1\n"})
    push(provider, work)
    for branch in ("main", "master", "release/1.2", "production", "+cicd-fix/x", "refs/heads/x"):
        with pytest.raises(SafetyError):
            provider.push_branch(REPO, str(work.path), branch)
    strict = LocalProvider(tmp_path / "ci", protected_branches=["main", "stable-*"])
    with pytest.raises(SafetyError, match="protected"):
        strict.push_branch(REPO, str(work.path), "stable-2")
    assert strict.protected_branches(REPO) == ["main", "stable-*"]

    sha = work.commit({"a.txt": "2\n"}, "fix")
    before = provider.calls
    assert provider.push_branch(REPO, str(work.path), "cicd-fix/one") == sha
    assert provider.calls == before + 1  # one call, whatever it does inside
    provider.ref_status(REPO, sha)
    provider.protected_branches(REPO)
    assert provider.calls == before + 3
    assert provider.branch_sha(REPO, "cicd-fix/one") == sha
    assert provider.branch_sha(REPO, "main") != sha  # main untouched

    other = make_git_repo("other")
    other.git("pull", "-q", str(provider.repo_path(REPO)), "main")
    other.commit({"b.txt": "diverging\n"}, "diverge")
    with pytest.raises(ProviderError, match="not a fast-forward"):
        provider.push_branch(REPO, str(other.path), "cicd-fix/one")
    assert provider.branch_sha(REPO, "cicd-fix/one") == sha


def test_pull_requests_issues_and_comments_are_idempotent(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    work = make_work(make_git_repo, {"a.txt": "1\n"})
    push(provider, work)
    work.commit({"a.txt": "2\n"}, "fix")
    provider.push_branch(REPO, str(work.path), "cicd-fix/a")
    marker = signed_marker("pull-request", "session-1")
    pr = provider.open_or_update_pull_request(REPO, "cicd-fix/a", "main", "Fix", "body", marker)
    again = provider.open_or_update_pull_request(
        REPO, "cicd-fix/a", "main", "Fix (updated)", f"new body {marker}", marker
    )
    assert again.number == pr.number and again.title == "Fix (updated)"
    assert pr.url == f"local://{REPO}/pull/{pr.number}"
    (only,) = provider.list_pull_requests(REPO)
    assert only.body.startswith("new body") and only.head == "cicd-fix/a" and only.base == "main"
    with pytest.raises(ProviderError, match="does not exist"):
        provider.open_or_update_pull_request(REPO, "nope", "main", "t", "b", "<!-- m2 -->")

    issue = provider.open_issue(REPO, "Help", "body", signed_marker("issue", "i"), ["ci"])
    same = provider.open_issue(REPO, "Help!", "more", signed_marker("issue", "i"))
    other = provider.open_issue(REPO, "Other", "x", signed_marker("issue", "j"))
    assert same.number == issue.number != other.number != pr.number
    assert [i.number for i in provider.list_issues(REPO)] == [issue.number, other.number]
    got = provider.get_issue(REPO, issue.number)
    assert got.title == "Help!" and signed_marker("issue", "i") in got.body
    assert got.url == f"local://{REPO}/issues/{issue.number}"

    provider.comment(REPO, pr.number, "report v1", signed_marker("report", "c"))
    provider.comment(REPO, pr.number, "report v2", signed_marker("report", "c"))
    provider.comment(REPO, pr.number, "another", signed_marker("report", "d"))
    bodies = [c.body for c in provider.list_comments(REPO, pr.number)]
    assert len(bodies) == 2 and bodies[0].startswith("report v2")
    with pytest.raises(ProviderError):
        provider.comment(REPO, 999, "x", "<!-- c -->")


def test_invalid_workflow_gives_a_failed_run_naming_file_and_line(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    bad = "on: push\njobs:\n  a:\n    steps:\n      - run: echo\n        uses: x/y@v1\n"
    work = make_work(make_git_repo, {WORKFLOW: bad})
    sha = push(provider, work)
    (run,) = provider.list_runs(REPO, head_sha=sha)
    run = provider.wait_for_run(REPO, run.id, timeout=30)
    assert run.status is RunStatus.COMPLETED and run.conclusion is Conclusion.FAILURE
    (job,) = run.jobs
    assert job.name == WORKFLOW and job.conclusion is Conclusion.FAILURE
    with provider.open_job_log(REPO, job.id) as fh:
        text = fh.read().decode()
    assert f"##[error]Invalid workflow file: {WORKFLOW}#L5: " in text
    assert "exactly one of 'run' or 'uses'" in text
    assert provider.ref_status(REPO, sha).state is CombinedState.FAILURE


def test_unknown_repository_and_run(provider: LocalProvider) -> None:
    with pytest.raises(UnknownRepositoryError, match="unknown repository"):
        provider.list_runs("acme/nothing")
    with pytest.raises(UnknownRepositoryError):
        provider.get_run("../etc", 1)
    with pytest.raises(UnknownRunError, match="unknown run 42"):
        provider.get_run(REPO, 42)
    with pytest.raises(UnknownRunError):
        provider.rerun_failed_jobs(REPO, 42)
    with pytest.raises(UnknownRunError), provider.open_job_log(REPO, 42):
        pass


def test_pushed_runs_see_no_credential_of_the_pusher(
    provider: LocalProvider, make_git_repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_from_the_pusher")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://u:pw@db/airflow")
    wf = (
        "on: push\njobs:\n  a:\n    steps:\n"
        '      - run: test -z "${GITHUB_TOKEN:-}${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}"\n'
    )
    work = make_work(make_git_repo, {WORKFLOW: wf})
    sha = push(provider, work)
    status = provider.wait_for_ref(REPO, sha, timeout=60)
    assert status.state is CombinedState.SUCCESS and len(status.runs) == 1


def test_a_deleted_repository_is_unknown_everywhere(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    work = make_work(make_git_repo, {WORKFLOW: RERUN_WORKFLOW})
    sha = push(provider, work)
    (run,) = provider.list_runs(REPO, head_sha=sha)
    run = provider.wait_for_run(REPO, run.id, timeout=60)
    flaky = next(j for j in run.jobs if j.name == "flaky")
    assert provider.job_attempt(REPO, flaky.id) == (run.id, 1)
    with pytest.raises(UnknownRunError):
        provider.job_attempt(REPO, 999_999)
    provider.delete_repository(REPO)
    assert REPO not in provider.repositories()
    for call in (
        lambda: provider.get_run(REPO, run.id),
        lambda: provider.ref_status(REPO, sha),
        lambda: provider.list_runs(REPO),
        lambda: provider.rerun_failed_jobs(REPO, run.id),
        lambda: provider.job_attempt(REPO, flaky.id),
    ):
        with pytest.raises(UnknownRepositoryError, match="unknown repository"):
            call()
    with pytest.raises(UnknownRepositoryError), provider.open_job_log(REPO, flaky.id):
        pass
    with pytest.raises(UnknownRepositoryError):
        provider.delete_repository(REPO)
    assert not (provider.root / "data" / REPO).exists()
    provider.create_repository(REPO)  # the name can be used again, with nothing of the old
    assert provider.list_runs(REPO) == []
