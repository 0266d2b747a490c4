"""Each method of the GitLab provider against the GitLab-compatible server (real python-gitlab
and real git over loopback)."""

from __future__ import annotations

import logging
import subprocess
import time

import pytest
from gl_helpers import REPO, TOKEN, World, clone, commit_file

from cicd_orchestrator.ci.gitlab.provider import GitLabJob
from cicd_orchestrator.ci.gitlab.ratelimit import BackoffPolicy, RateLimitedError
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import ProviderError, SafetyError, UnknownRunError


# --------------------------------------------------------------------------- reads
def test_repository_facts(world: World) -> None:
    gl = world.provider()
    world.server.protect_branch(REPO, "stable/*")
    assert gl.default_branch(REPO) == "main"
    assert set(gl.protected_branches(REPO)) == {"main", "stable/*"}
    remote = gl.git_remote(REPO)
    assert remote.url == f"{world.server.url}/{REPO}.git"
    assert TOKEN not in remote.url and remote.env["CICD_GIT_TOKEN"] == TOKEN
    assert remote.env["CICD_GIT_USERNAME"] == "oauth2"
    assert gl.calls == 3


def test_pipelines_jobs_stages_and_traces(world: World) -> None:
    gl = world.provider()
    runs = gl.list_runs(REPO, branch="main")
    assert [r.conclusion for r in runs] == [Conclusion.FAILURE, Conclusion.SUCCESS]
    assert runs[0].workflow_path == ".github/workflows/ci.yml"  # the project's ci_config_path
    assert runs[0].html_url == f"{world.server.url}/{REPO}/-/pipelines/{runs[0].id}"
    assert gl.list_runs(REPO, head_sha=world.made.head_sha)[0].id == runs[0].id
    failed = gl.list_failed_runs(REPO, "main")
    assert [r.id for r in failed] == [world.made.head_run.id]
    assert gl.list_failed_runs(REPO, "main", since_run_id=failed[0].id) == []

    run = gl.get_run(REPO, failed[0].id)
    assert run.run_attempt == 1 and run.status is RunStatus.COMPLETED
    assert {j.name: j.conclusion for j in run.jobs} == {
        "lint": Conclusion.FAILURE,
        "test": Conclusion.SUCCESS,
    }
    lint = run.failed_jobs[0]
    assert isinstance(lint, GitLabJob) and lint.failure_reason == "script_failure"
    assert lint.stage == "stage-1" and [s.name for s in lint.steps] == ["stage-1"]
    assert lint.steps[0].conclusion is Conclusion.FAILURE and lint.needs == []
    with gl.open_job_log(REPO, lint.id) as fh:
        text = fh.read().decode()
    assert "section_start:" in text and "section_end:" in text and "\x1b[0K" in text
    assert "\x1b[32;1m$ ruff check .\x1b[0;m" in text and "F401" in text
    assert text.rstrip().endswith("ERROR: Job failed: exit code 1\x1b[0;m")
    assert "##[" not in text
    with pytest.raises(UnknownRunError):
        gl.get_run(REPO, 999_999)
    with pytest.raises(UnknownRunError), gl.open_job_log(REPO, 999_999):
        pass
    with pytest.raises(UnknownRunError):
        gl.get_run(REPO, failed[0].id, attempt=2)


def test_a_trace_beyond_the_limit_is_refused(world: World) -> None:
    gl = world.provider(max_log_bytes=100)
    lint = gl.get_run(REPO, world.made.head_run.id).failed_jobs[0]
    with pytest.raises(ProviderError, match="limit"), gl.open_job_log(REPO, lint.id):
        pass


def test_rate_limits_5xx_timeouts_and_truncation_are_backed_off(world: World) -> None:
    gl = world.provider()
    world.sleeps.clear()
    world.server.inject("ratelimit", path=r"/pipelines$", retry_after=1)
    world.server.inject("error", path=r"/pipelines$", status=503)
    world.server.inject("timeout", path=r"/pipelines$", delay=1.5)
    assert len(gl.list_runs(REPO, branch="main")) == 2
    assert world.sleeps[0] == 1.0 and len(world.sleeps) == 3
    lint = gl.get_run(REPO, world.made.head_run.id).failed_jobs[0]
    world.server.inject("truncate", path=r"/trace$")
    with gl.open_job_log(REPO, lint.id) as fh:
        assert fh.read().rstrip().endswith(b"exit code 1\x1b[0;m")

    world.server.inject("error", count=10, path=r"/pipelines$", status=500)
    with pytest.raises(ProviderError, match="failed after 4 tries"):
        gl.list_runs(REPO)
    world.server.clear_faults()
    slow = world.provider(backoff=BackoffPolicy(max_tries=3, base_delay=0.01, max_wait=2.0))
    world.server.inject("ratelimit", path=r"/pipelines$", retry_after=600)
    start = time.monotonic()
    with pytest.raises(RateLimitedError, match="resets in"):
        slow.list_runs(REPO)
    assert time.monotonic() - start < 2


# --------------------------------------------------------------------------- writes
def test_push_merge_request_note_and_issue_are_idempotent(world: World) -> None:
    gl = world.provider()
    work = clone(world, gl, "idem", world.made.head_sha)
    sha = commit_file(work, "FIX.md", "fixed\n")
    assert gl.push_branch(REPO, str(work), "cicd-fix/idem") == sha
    assert world.local.branch_sha(REPO, "cicd-fix/idem") == sha
    assert gl.push_branch(REPO, str(work), "cicd-fix/idem") == sha  # again: a no-op
    mark = "<!-- cicd-orchestrator:pull-request:idem -->"
    first = gl.open_or_update_pull_request(REPO, "cicd-fix/idem", "main", "Fix", "body", mark)
    again = gl.open_or_update_pull_request(REPO, "cicd-fix/idem", "main", "Fix 2", "b2", mark)
    assert first.number == again.number and again.title == "Fix 2"
    assert again.head == "cicd-fix/idem" and again.base == "main" and again.state == "open"
    pulls = [p for p in world.local.list_pull_requests(REPO) if mark in p.body]
    assert len(pulls) == 1 and pulls[0].body.startswith("b2")

    cmark = "<!-- cicd-orchestrator:report:idem -->"
    gl.comment(REPO, first.number, "report 1", cmark)
    gl.comment(REPO, first.number, "report 2", cmark)
    notes = world.local.list_comments(REPO, first.number)
    assert len(notes) == 1 and notes[0].body.startswith("report 2")

    imark = "<!-- cicd-orchestrator:issue:idem -->"
    one = gl.open_issue(REPO, "Help", "context", imark, labels=["ci-failure", "automated"])
    two = gl.open_issue(REPO, "Help!", "more context", imark, labels=["ci-failure", "automated"])
    assert one.number == two.number and two.state == "open"
    issues = [i for i in world.local.list_issues(REPO) if imark in i.body]
    assert len(issues) == 1 and issues[0].title == "Help!"
    assert issues[0].labels == ["ci-failure", "automated"]
    gl.comment(REPO, one.number, "on the issue", "<!-- cicd-orchestrator:note:issue -->")
    assert len(world.local.list_comments(REPO, one.number)) == 1


def test_retried_writes_do_not_duplicate(world: World) -> None:
    """A truncated answer to a create (the object exists, the client did not see it) is
    retried as a lookup that finds it by its marker."""
    gl = world.provider()
    work = clone(world, gl, "retry", world.made.head_sha)
    commit_file(work, "RETRY.md", "x\n")
    gl.push_branch(REPO, str(work), "cicd-fix/retry")
    mark = "<!-- cicd-orchestrator:pull-request:retry -->"
    world.server.inject("truncate", path=r"/merge_requests$", method="POST")
    mr = gl.open_or_update_pull_request(REPO, "cicd-fix/retry", "main", "Fix", "b", mark)
    assert len([p for p in world.local.list_pull_requests(REPO) if mark in p.body]) == 1
    cmark = "<!-- cicd-orchestrator:report:retry -->"
    world.server.inject("truncate", path=r"/notes$", method="POST")
    gl.comment(REPO, mr.number, "report", cmark)
    assert len(world.local.list_comments(REPO, mr.number)) == 1
    imark = "<!-- cicd-orchestrator:issue:retry -->"
    world.server.inject("truncate", path=r"/issues$", method="POST")
    gl.open_issue(REPO, "Retry", "b", imark)
    assert len([i for i in world.local.list_issues(REPO) if imark in i.body]) == 1


def test_commit_status_and_combined_state(world: World) -> None:
    gl = world.provider()
    green = world.made.sha_of("01-initial")
    assert gl.ref_status(REPO, green).state is CombinedState.SUCCESS
    gl.set_commit_status(REPO, green, CombinedState.PENDING, "our own status does not count")
    gl.set_commit_status(REPO, green, CombinedState.PENDING, "the same state again: no error")
    statuses = world.local.commit_statuses(REPO, green)
    assert [(s.context, s.state) for s in statuses] == [(STATUS_CONTEXT, CombinedState.PENDING)]
    assert gl.ref_status(REPO, green).state is CombinedState.SUCCESS
    gl.set_commit_status(REPO, green, CombinedState.FAILURE, "still ours")
    assert gl.ref_status(REPO, green).state is CombinedState.SUCCESS
    world.local.add_commit_status(REPO, green, "security/scan", CombinedState.FAILURE)
    assert gl.ref_status(REPO, green).state is CombinedState.FAILURE
    red = gl.ref_status(REPO, world.made.head_sha)
    assert red.state is CombinedState.FAILURE
    assert [j.name for r in red.runs for j in r.failed_jobs] == ["lint"]
    assert gl.ref_status(REPO, "0" * 40).state is CombinedState.NONE


def test_pushes_to_default_protected_or_rewritten_branches_are_refused(world: World) -> None:
    gl = world.provider()
    work = clone(world, gl, "unsafe", world.made.head_sha)
    commit_file(work, "UNSAFE.md", "x\n")
    world.server.protect_branch(REPO, "stable/*")
    for branch in (
        "main",
        "stable/2.0",
        "release/1.0",
        "production",
        "+cicd-fix/x",
        "refs/heads/x",
        "a..b",
    ):
        with pytest.raises(SafetyError):
            gl.push_branch(REPO, str(work), branch)
    assert world.local.branch_sha(REPO, "main") == world.made.head_sha
    assert world.local.branch_sha(REPO, "stable/2.0") is None
    # never forced: a branch that moved on is not overwritten
    gl.push_branch(REPO, str(work), "cicd-fix/moved")
    other = clone(world, gl, "unsafe-other", world.made.head_sha)
    commit_file(other, "OTHER.md", "y\n")
    with pytest.raises(ProviderError, match="never forces"):
        gl.push_branch(REPO, str(other), "cicd-fix/moved")


def test_fix_for_a_fork_merge_request_goes_to_a_new_merge_request(world: World) -> None:
    gl = world.provider()
    number = world.server.add_fork_merge_request(
        REPO, "contributor/shipping", "add-labels", world.made.head_sha, "main"
    )
    assert gl.fork_merge_request_for_branch(REPO, "add-labels") == number
    work = clone(world, gl, "fork", world.made.head_sha)
    commit_file(work, "FORK.md", "x\n")
    with pytest.raises(SafetyError, match="fork"):
        gl.push_branch(REPO, str(work), "add-labels")
    gl.push_branch(REPO, str(work), "cicd-fix/add-labels-run2")
    mark = "<!-- cicd-orchestrator:pull-request:fork -->"
    mr = gl.open_or_update_pull_request(
        REPO, "cicd-fix/add-labels-run2", "add-labels", "Fix", "body", mark
    )
    assert mr.number != number and mr.base == "main" and mr.head == "cicd-fix/add-labels-run2"
    assert f"!{number}" in world.local.get_pull_request(REPO, mr.number).body


# --------------------------------------------------------------------------- secrets
def test_the_token_never_shows_in_argv_urls_logs_or_errors(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[list[str]] = []
    real_popen_init = subprocess.Popen.__init__

    def spy(self: subprocess.Popen[bytes], args: object, *a: object, **kw: object) -> None:
        seen.append([str(x) for x in args] if isinstance(args, (list, tuple)) else [str(args)])
        real_popen_init(self, args, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    gl = world.provider()
    work = clone(world, gl, "secret", world.made.head_sha)
    commit_file(work, "SECRET.md", "x\n")
    gl.push_branch(REPO, str(work), "cicd-fix/secret")
    pushes = [a for a in seen if "push" in a]
    assert pushes and all(TOKEN not in " ".join(a) for a in seen)
    assert not any("@" in part for a in pushes for part in a if part.startswith("http"))
    remote_cfg = subprocess.run(
        ["git", "config", "--get-regexp", "remote|credential"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert TOKEN not in remote_cfg
    assert all(TOKEN not in r.path for r in world.server.requests)
    assert any(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in world.server.requests)

    bad_token = "glpat-" + "W" * 24
    bad = world.provider(client=None, url=world.server.url, token=bad_token)
    with pytest.raises(ProviderError) as info:
        bad.default_branch(REPO)
    assert "W" * 24 not in str(info.value) and "401" in str(info.value)
    with pytest.raises(ProviderError) as info:
        world.provider(token=bad_token).push_branch(REPO, str(work), "cicd-fix/secret-2")
    assert "W" * 24 not in str(info.value)
    world.server.inject("error", count=10, path=r"/merge_requests")
    with pytest.raises(ProviderError) as info:
        gl.open_or_update_pull_request(REPO, "cicd-fix/secret", "main", "t", "b", "<!-- m -->")
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text and "W" * 24 not in caplog.text


# --------------------------------------------------------------------------- retries (last:
# they change the failed pipeline)
def test_retry_of_failed_jobs_makes_a_new_attempt(world: World) -> None:
    gl = world.provider()
    run_id = world.made.head_run.id
    first = gl.get_run(REPO, run_id)
    assert gl.rerun_failed_jobs(REPO, run_id) == 2
    deadline = time.monotonic() + 60
    while (run := gl.get_run(REPO, run_id)).status is not RunStatus.COMPLETED:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert run.run_attempt == 2 and run.conclusion is Conclusion.FAILURE
    again = gl.get_run(REPO, run_id, attempt=1)
    assert again.run_attempt == 1 and [j.id for j in again.jobs] == [j.id for j in first.jobs]
    lint1 = next(j for j in again.jobs if j.name == "lint")
    lint2 = next(j for j in run.jobs if j.name == "lint")
    test1 = next(j for j in again.jobs if j.name == "test")
    test2 = next(j for j in run.jobs if j.name == "test")
    assert lint1.id != lint2.id and lint2.run_attempt == 2  # retried: a new job
    assert test1.id == test2.id and test2.run_attempt == 1  # passed: kept
    assert gl.rerun_failed_jobs(REPO, run_id) == 3
    while gl.get_run(REPO, run_id).status is not RunStatus.COMPLETED:
        assert time.monotonic() < deadline
        time.sleep(0.3)
