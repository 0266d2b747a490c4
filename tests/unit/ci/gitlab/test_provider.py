"""What only the GitLab provider does, against the GitLab-compatible server (real python-gitlab
and real git over loopback): wildcard protected branches, pipelines and traces, the status
GitLab refuses to set twice, forks, retried writes, the token's secrecy, and retries that
keep the jobs that passed. What every provider does is in ``test_provider_contract.py``."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from cicd_devkit.worlds import GITLAB_TOKEN as TOKEN
from cicd_devkit.worlds import REPO, GitLabWorld, signed_marker

from cicd_orchestrator.ci.gitlab.mapping import GitLabJob
from cicd_orchestrator.ci.retry import BackoffPolicy, RateLimitedError
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion
from cicd_orchestrator.exceptions import ProviderError, SafetyError

WorkTree = Callable[[GitLabWorld, str], Any]


# --------------------------------------------------------------------------- reads
def test_protected_wildcards_and_the_git_user(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider()
    gitlab_world.gitlab.protect_branch(REPO, "stable/*")
    assert set(gl.protected_branches(REPO)) == {"main", "stable/*"}
    gl.default_branch(REPO)
    assert gl.git_remote(REPO).env["CICD_GIT_USERNAME"] == "oauth2"
    assert gl.calls == 3


def test_pipelines_jobs_stages_and_traces(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider()
    runs = gl.list_runs(REPO, branch="main")
    assert runs[0].html_url == f"{gitlab_world.gitlab.url}/{REPO}/-/pipelines/{runs[0].id}"
    assert runs[0].workflow_path == ".github/workflows/ci.yml"  # the project's ci_config_path
    lint = gl.get_run(REPO, gitlab_world.head_run_id).failed_jobs[0]
    assert isinstance(lint, GitLabJob) and lint.failure_reason == "script_failure"
    assert lint.stage == "stage-1" and [s.name for s in lint.steps] == ["stage-1"]
    assert lint.steps[0].conclusion is Conclusion.FAILURE and lint.needs == []
    with gl.open_job_log(REPO, lint.id) as fh:
        text = fh.read().decode()
    assert "section_start:" in text and "section_end:" in text and "\x1b[0K" in text
    assert "\x1b[32;1m$ ruff check .\x1b[0;m" in text and "F401" in text
    assert text.rstrip().endswith("ERROR: Job failed: exit code 1\x1b[0;m")
    assert "##[" not in text


def test_a_trace_beyond_the_limit_is_refused(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider(max_log_bytes=100)
    lint = gl.get_run(REPO, gitlab_world.head_run_id).failed_jobs[0]
    with pytest.raises(ProviderError, match="limit"), gl.open_job_log(REPO, lint.id):
        pass


def test_rate_limits_5xx_timeouts_and_truncation_are_backed_off(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider()
    server = gitlab_world.gitlab
    gitlab_world.sleeps.clear()
    server.inject("ratelimit", path=r"/pipelines$", retry_after=1)
    server.inject("error", path=r"/pipelines$", status=503)
    server.inject("timeout", path=r"/pipelines$", delay=1.5)
    assert len(gl.list_runs(REPO, branch="main")) == 2
    assert gitlab_world.sleeps[0] == 1.0 and len(gitlab_world.sleeps) == 3
    lint = gl.get_run(REPO, gitlab_world.head_run_id).failed_jobs[0]
    server.inject("truncate", path=r"/trace$")
    with gl.open_job_log(REPO, lint.id) as fh:
        assert fh.read().rstrip().endswith(b"exit code 1\x1b[0;m")

    server.inject("error", count=10, path=r"/pipelines$", status=500)
    with pytest.raises(ProviderError, match="failed after 4 tries"):
        gl.list_runs(REPO)
    server.clear_faults()
    slow = gitlab_world.provider(backoff=BackoffPolicy(max_tries=3, base_delay=0.01, max_wait=2.0))
    server.inject("ratelimit", path=r"/pipelines$", retry_after=600)
    start = time.monotonic()
    with pytest.raises(RateLimitedError, match="resets in"):
        slow.list_runs(REPO)
    assert time.monotonic() - start < 2


# --------------------------------------------------------------------------- writes
def test_the_same_status_twice_is_no_error(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider()
    green = gitlab_world.green_sha
    gl.set_commit_status(REPO, green, CombinedState.PENDING, "our own status does not count")
    gl.set_commit_status(REPO, green, CombinedState.PENDING, "the same state again: no error")
    statuses = gitlab_world.local.commit_statuses(REPO, green)
    assert [(s.context, s.state) for s in statuses] == [(STATUS_CONTEXT, CombinedState.PENDING)]
    assert gl.ref_status(REPO, green).state is CombinedState.SUCCESS


def test_a_protected_wildcard_is_refused(gitlab_world: GitLabWorld, work_tree: WorkTree) -> None:
    gl = gitlab_world.provider()
    work = work_tree(gitlab_world, "unsafe")
    work.commit({"UNSAFE.md": "x\n"})
    gitlab_world.gitlab.protect_branch(REPO, "stable/*")
    with pytest.raises(SafetyError):
        gl.push_branch(REPO, str(work.path), "stable/2.0")
    assert gitlab_world.local.branch_sha(REPO, "stable/2.0") is None


def test_fix_for_a_fork_merge_request_goes_to_a_new_merge_request(
    gitlab_world: GitLabWorld, work_tree: WorkTree
) -> None:
    gl = gitlab_world.provider()
    number = gitlab_world.gitlab.add_fork_merge_request(
        REPO, "contributor/shipping", "add-labels", gitlab_world.head_sha, "main"
    )
    assert gl.fork_pull_for_branch(REPO, "add-labels") == number
    work = work_tree(gitlab_world, "fork")
    work.commit({"FORK.md": "x\n"})
    with pytest.raises(SafetyError, match="fork"):
        gl.push_branch(REPO, str(work.path), "add-labels")
    gl.push_branch(REPO, str(work.path), "cicd-fix/add-labels-run2")
    mark = signed_marker("pull-request", "fork")
    mr = gl.open_or_update_pull_request(
        REPO, "cicd-fix/add-labels-run2", "add-labels", "Fix", "body", mark
    )
    assert mr.number != number and mr.base == "main" and mr.head == "cicd-fix/add-labels-run2"
    assert f"!{number}" in gitlab_world.local.get_pull_request(REPO, mr.number).body


def test_retried_writes_do_not_duplicate(gitlab_world: GitLabWorld, work_tree: WorkTree) -> None:
    """A truncated answer to a create (the object exists, the client did not see it) is
    retried as a lookup that finds it by its marker."""
    gl = gitlab_world.provider()
    server, local = gitlab_world.gitlab, gitlab_world.local
    work = work_tree(gitlab_world, "retry")
    work.commit({"RETRY.md": "x\n"})
    gl.push_branch(REPO, str(work.path), "cicd-fix/retry")
    mark = signed_marker("pull-request", "retry")
    server.inject("truncate", path=r"/merge_requests$", method="POST")
    mr = gl.open_or_update_pull_request(REPO, "cicd-fix/retry", "main", "Fix", "b", mark)
    assert len([p for p in local.list_pull_requests(REPO) if mark in p.body]) == 1
    cmark = signed_marker("report", "retry")
    server.inject("truncate", path=r"/notes$", method="POST")
    gl.comment(REPO, mr.number, "report", cmark)
    assert len(local.list_comments(REPO, mr.number)) == 1
    imark = signed_marker("issue", "retry")
    server.inject("truncate", path=r"/issues$", method="POST")
    gl.open_issue(REPO, "Retry", "b", imark)
    assert len([i for i in local.list_issues(REPO) if imark in i.body]) == 1


# --------------------------------------------------------------------------- secrets
def test_the_token_never_shows_in_argv_urls_logs_or_errors(
    gitlab_world: GitLabWorld,
    work_tree: WorkTree,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[list[str]] = []
    real_popen_init = subprocess.Popen.__init__

    def spy(self: subprocess.Popen[bytes], args: object, *a: object, **kw: object) -> None:
        seen.append([str(x) for x in args] if isinstance(args, (list, tuple)) else [str(args)])
        real_popen_init(self, args, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    gl = gitlab_world.provider()
    server = gitlab_world.gitlab
    work = work_tree(gitlab_world, "secret")
    work.commit({"SECRET.md": "x\n"})
    gl.push_branch(REPO, str(work.path), "cicd-fix/secret")
    pushes = [a for a in seen if "push" in a]
    assert pushes and all(TOKEN not in " ".join(a) for a in seen)
    assert not any("@" in part for a in pushes for part in a if part.startswith("http"))
    assert TOKEN not in work.git("config", "--list")
    assert all(TOKEN not in r.path + r.query for r in server.requests)
    assert any(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in server.requests)

    bad_token = "glpat-" + "W" * 24
    bad = gitlab_world.provider(client=None, url=server.url, token=bad_token)
    with pytest.raises(ProviderError) as info:
        bad.default_branch(REPO)
    assert "W" * 24 not in str(info.value) and "401" in str(info.value)
    with pytest.raises(ProviderError) as info:
        gitlab_world.provider(token=bad_token).push_branch(REPO, str(work.path), "cicd-fix/s-2")
    assert "W" * 24 not in str(info.value)
    server.inject("error", count=10, path=r"/merge_requests")
    with pytest.raises(ProviderError) as info:
        gl.open_or_update_pull_request(REPO, "cicd-fix/secret", "main", "t", "b", "<!-- m -->")
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text and "W" * 24 not in caplog.text


# --------------------------------------------------------------------------- retries (last:
# they change the failed pipeline)
def test_a_retry_keeps_the_jobs_that_passed(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider()
    run_id = gitlab_world.head_run_id
    first = gl.get_run(REPO, run_id)
    assert gl.rerun_failed_jobs(REPO, run_id) == 2
    run = gitlab_world.wait_run(gl, run_id)
    lint1 = next(j for j in first.jobs if j.name == "lint")
    lint2 = next(j for j in run.jobs if j.name == "lint")
    test1 = next(j for j in first.jobs if j.name == "test")
    test2 = next(j for j in run.jobs if j.name == "test")
    assert lint1.id != lint2.id and lint2.run_attempt == 2  # retried: a new job
    assert test1.id == test2.id and test2.run_attempt == 1  # passed: kept
    assert gl.rerun_failed_jobs(REPO, run_id) == 3
    assert gitlab_world.wait_run(gl, run_id).run_attempt == 3
