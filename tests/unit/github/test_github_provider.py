"""Each method of the GitHub provider against the GitHub-compatible server (real PyGithub and
real git over loopback)."""

from __future__ import annotations

import io
import logging
import subprocess
import time
import zipfile

import pytest
from gh_helpers import REPO, TOKEN, World, clone, commit_file

from cicd_orchestrator.ci.github.archive import ArchiveError, ArchiveLimits
from cicd_orchestrator.ci.github.ratelimit import BackoffPolicy, RateLimitedError
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import ProviderError, SafetyError, UnknownRunError


# --------------------------------------------------------------------------- reads
def test_repository_facts(world: World) -> None:
    gh = world.provider()
    world.server.protect_branch(REPO, "stable")
    assert gh.default_branch(REPO) == "main"
    assert set(gh.protected_branches(REPO)) == {"main"}  # "stable" does not exist yet
    remote = gh.git_remote(REPO)
    assert remote.url == f"{world.server.url}/{REPO}.git"
    assert TOKEN not in remote.url and remote.env["CICD_GIT_TOKEN"] == TOKEN
    assert gh.calls == 3


def test_runs_jobs_steps_and_logs(world: World) -> None:
    gh = world.provider()
    runs = gh.list_runs(REPO, branch="main")
    assert [r.conclusion for r in runs] == [Conclusion.FAILURE, Conclusion.SUCCESS]
    assert runs[0].workflow_path == ".github/workflows/ci.yml"
    assert gh.list_runs(REPO, head_sha=world.made.head_sha)[0].id == runs[0].id
    failed = gh.list_failed_runs(REPO, "main")
    assert [r.id for r in failed] == [world.made.head_run.id]
    assert gh.list_failed_runs(REPO, "main", since_run_id=failed[0].id) == []

    run = gh.get_run(REPO, failed[0].id)
    assert {j.name: j.conclusion for j in run.jobs} == {
        "lint": Conclusion.FAILURE,
        "test": Conclusion.SUCCESS,
    }
    lint = run.failed_jobs[0]
    assert [s.name for s in lint.steps][3] == "Lint"
    assert lint.steps[3].conclusion is Conclusion.FAILURE
    with gh.open_job_log(REPO, lint.id) as fh:
        text = fh.read().decode()
    assert text == world.local.job_log_text(REPO, lint.id)
    assert "##[error]" in text
    with pytest.raises(UnknownRunError):
        gh.get_run(REPO, 999_999)
    with pytest.raises(UnknownRunError), gh.open_job_log(REPO, 999_999):
        pass


def test_run_log_archive_is_extracted(world: World) -> None:
    gh = world.provider()
    files = gh.run_log_archive(REPO, world.made.head_run.id, world.tmp / "archive")
    assert sorted(p.name for p in files) == ["0_lint.txt", "1_test.txt"]
    assert "ruff" in (world.tmp / "archive" / "0_lint.txt").read_text()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "limits", "message"),
    [
        ({"0_bomb.txt": b"\0" * 30_000_000}, None, "zip bomb"),
        ({"0_big.txt": b"log line\n" * 2000}, ArchiveLimits(max_member_bytes=10_000), "limit"),
        ({"../escape.txt": b"x"}, None, "escapes"),
    ],
    ids=["bomb", "oversized-member", "traversal"],
)
def test_malicious_log_archives_are_refused(
    world: World, members: dict[str, bytes], limits: ArchiveLimits | None, message: str
) -> None:
    run_id = world.made.head_run.id
    world.server.replace_run_logs(REPO, run_id, _zip(members))
    gh = world.provider(archive_limits=limits) if limits else world.provider()
    dest = world.tmp / f"bad-{message.replace(' ', '-')}"
    try:
        with pytest.raises(ArchiveError, match=message):
            gh.run_log_archive(REPO, run_id, dest)
    finally:
        world.server.state.run_archives.clear()
    assert not any(p.is_file() for p in dest.rglob("*"))


def _lint_job(world: World) -> int:
    run = world.local.get_run(REPO, world.made.head_run.id)
    return next(j.id for j in run.jobs if j.name == "lint")


def test_a_job_without_its_own_log_is_read_from_the_run_archive(world: World) -> None:
    gh = world.provider()
    job_id = _lint_job(world)
    fault = world.server.inject("error", path=rf"/actions/jobs/{job_id}/logs$", status=404)
    with gh.open_job_log(REPO, job_id) as fh:
        text = fh.read().decode()
    assert fault.fired == 1
    assert text == world.local.job_log_text(REPO, job_id)
    with pytest.raises(UnknownRunError), gh.open_job_log(REPO, 999_999):
        pass


def test_a_zip_bomb_in_place_of_a_job_log_is_refused_clearly(world: World) -> None:
    gh = world.provider()
    job_id = _lint_job(world)
    run_id = world.made.head_run.id
    world.server.inject("error", path=rf"/actions/jobs/{job_id}/logs$", status=404)
    world.server.replace_run_logs(REPO, run_id, _zip({"0_lint.txt": b"\0" * 30_000_000}))
    try:
        with pytest.raises(ArchiveError) as info, gh.open_job_log(REPO, job_id):
            pass
    finally:
        world.server.state.run_archives.clear()
    message = str(info.value)
    assert f"log of job {job_id} of {REPO}" in message
    assert f"log archive of run {run_id} was refused" in message and "zip bomb" in message


@pytest.mark.parametrize(
    ("member", "job", "expected"),
    [
        ("0_lint.txt", "lint", True),
        ("3_build (ubuntu, 3.11).txt", "build (ubuntu, 3.11)", True),
        ("2_deploy_prod.txt", "deploy/prod", True),
        ("lint/1_Set up job.txt", "lint", False),
        ("0_lint.txt", "test", False),
        ("lint.txt", "lint", False),
    ],
)
def test_archive_members_are_matched_to_their_job(member: str, job: str, expected: bool) -> None:
    from cicd_orchestrator.ci.github.provider import _archive_member_of

    assert _archive_member_of(member, job) is expected


# --------------------------------------------------------------------------- rate limits
def test_a_sweep_with_nothing_new_costs_no_rate_limit(world: World) -> None:
    gh = world.provider()
    head = world.made.head_run.id
    assert [r.id for r in gh.list_failed_runs(REPO, "main", since_run_id=0)] == [head]
    used = world.server.rate_used
    before = len(world.server.requests)
    assert gh.list_failed_runs(REPO, "main", since_run_id=head) == []
    new = world.server.requests[before:]
    assert [(r.status, r.counted) for r in new] == [(304, False)]
    assert world.server.rate_used == used
    assert gh.not_modified == 1 and gh.etags.hits == 1


@pytest.mark.parametrize(
    ("kind", "options", "min_sleep"),
    [
        ("error", {"status": 502}, 0.0),
        ("error", {"status": 503, "count": 2}, 0.0),
        ("secondary", {"retry_after": 1}, 1.0),
        ("primary", {"reset_in": 1}, 0.5),
        ("timeout", {"delay": 1.5}, 0.0),
        ("truncate", {}, 0.0),
    ],
)
def test_back_off_on_each_fault_then_succeed(
    world: World, kind: str, options: dict[str, int], min_sleep: float
) -> None:
    gh = world.provider()
    world.sleeps.clear()
    fault = world.server.inject(kind, path=r"/actions/runs/\d+$", **options)
    run = gh.get_run(REPO, world.made.head_run.id)
    assert run.conclusion is Conclusion.FAILURE
    assert fault.fired == options.get("count", 1)
    assert len(world.sleeps) == fault.fired
    assert max(world.sleeps) >= min_sleep
    assert max(world.sleeps) <= FAST_MAX


FAST_MAX = 5.0


def test_back_off_is_bounded(world: World) -> None:
    gh = world.provider()
    world.server.inject("error", count=10, path=r"/repos/acme/shipping$")
    with pytest.raises(ProviderError, match="failed after 4 tries") as info:
        gh.default_branch(REPO)
    assert TOKEN not in str(info.value)
    world.server.clear_faults()
    gh2 = world.provider(backoff=BackoffPolicy(max_tries=3, max_wait=2.0))
    world.server.inject("primary", path=r"/repos/acme/shipping$", reset_in=600)
    start = time.monotonic()
    with pytest.raises(RateLimitedError, match="resets in"):
        gh2.default_branch(REPO)
    assert time.monotonic() - start < 2


def test_downloads_back_off_too(world: World) -> None:
    gh = world.provider()
    run = gh.get_run(REPO, world.made.head_run.id)
    world.server.inject("truncate", path=r"^/_blobs/job-logs/")
    world.server.inject("error", path=r"^/_blobs/job-logs/", status=500)
    with gh.open_job_log(REPO, run.failed_jobs[0].id) as fh:
        assert fh.read() == world.local.job_log_text(REPO, run.failed_jobs[0].id).encode()


# --------------------------------------------------------------------------- writes
def test_push_pull_request_comment_and_issue_are_idempotent(world: World) -> None:
    gh = world.provider()
    work = clone(world, gh, "idem", world.made.head_sha)
    sha = commit_file(work, "FIX.md", "fixed\n")
    assert gh.push_branch(REPO, str(work), "cicd-fix/idem") == sha
    assert world.local.branch_sha(REPO, "cicd-fix/idem") == sha
    assert gh.push_branch(REPO, str(work), "cicd-fix/idem") == sha  # again: a no-op
    mark = "<!-- cicd-orchestrator:pull-request:idem -->"
    first = gh.open_or_update_pull_request(REPO, "cicd-fix/idem", "main", "Fix", "body", mark)
    again = gh.open_or_update_pull_request(REPO, "cicd-fix/idem", "main", "Fix 2", "b2", mark)
    assert first.number == again.number and again.title == "Fix 2"
    pulls = [p for p in world.local.list_pull_requests(REPO) if mark in p.body]
    assert len(pulls) == 1 and pulls[0].body.startswith("b2")

    cmark = "<!-- cicd-orchestrator:report:idem -->"
    gh.comment(REPO, first.number, "report 1", cmark)
    gh.comment(REPO, first.number, "report 2", cmark)
    comments = world.local.list_comments(REPO, first.number)
    assert len(comments) == 1 and comments[0].body.startswith("report 2")

    imark = "<!-- cicd-orchestrator:issue:idem -->"
    one = gh.open_issue(REPO, "Help", "context", imark, labels=["ci-failure"])
    two = gh.open_issue(REPO, "Help!", "more context", imark, labels=["ci-failure"])
    assert one.number == two.number
    issues = [i for i in world.local.list_issues(REPO) if imark in i.body]
    assert len(issues) == 1 and issues[0].title == "Help!"
    assert issues[0].labels == ["ci-failure"]


def test_retried_writes_do_not_duplicate(world: World) -> None:
    """A truncated answer to a create (the object exists, the client did not see it) is
    retried as a lookup that finds it by its marker."""
    gh = world.provider()
    work = clone(world, gh, "retry", world.made.head_sha)
    commit_file(work, "RETRY.md", "x\n")
    gh.push_branch(REPO, str(work), "cicd-fix/retry")
    mark = "<!-- cicd-orchestrator:pull-request:retry -->"
    world.server.inject("truncate", path=r"/pulls$", method="POST")
    pr = gh.open_or_update_pull_request(REPO, "cicd-fix/retry", "main", "Fix", "b", mark)
    assert len([p for p in world.local.list_pull_requests(REPO) if mark in p.body]) == 1
    cmark = "<!-- cicd-orchestrator:report:retry -->"
    world.server.inject("truncate", path=r"/comments$", method="POST")
    gh.comment(REPO, pr.number, "report", cmark)
    assert len(world.local.list_comments(REPO, pr.number)) == 1


def test_commit_status_and_combined_state(world: World) -> None:
    gh = world.provider()
    green = world.made.sha_of("01-initial")
    assert gh.ref_status(REPO, green).state is CombinedState.SUCCESS
    gh.set_commit_status(REPO, green, CombinedState.FAILURE, "our own status does not count")
    statuses = world.local.commit_statuses(REPO, green)
    assert [(s.context, s.state) for s in statuses] == [(STATUS_CONTEXT, CombinedState.FAILURE)]
    assert gh.ref_status(REPO, green).state is CombinedState.SUCCESS
    world.local.add_commit_status(REPO, green, "security/scan", CombinedState.FAILURE)
    assert gh.ref_status(REPO, green).state is CombinedState.FAILURE
    red = gh.ref_status(REPO, world.made.head_sha)
    assert red.state is CombinedState.FAILURE
    assert [j.name for r in red.runs for j in r.failed_jobs] == ["lint"]


def test_pushes_to_default_protected_or_rewritten_branches_are_refused(world: World) -> None:
    gh = world.provider()
    work = clone(world, gh, "unsafe", world.made.head_sha)
    commit_file(work, "UNSAFE.md", "x\n")
    world.server.protect_branch(REPO, "stable")
    subprocess.run(
        ["git", "push", "--quiet", "origin", "HEAD:refs/heads/stable"],
        cwd=work,
        env={**gh.git_remote(REPO).env, "PATH": "/usr/bin:/bin", "HOME": str(world.tmp)},
        check=True,
        capture_output=True,
    )
    for branch in ("main", "stable", "release/1.0", "production", "+cicd-fix/x", "refs/heads/x"):
        with pytest.raises(SafetyError):
            gh.push_branch(REPO, str(work), branch)
    assert world.local.branch_sha(REPO, "main") == world.made.head_sha
    # never forced: a branch that moved on is not overwritten
    gh.push_branch(REPO, str(work), "cicd-fix/moved")
    other = clone(world, gh, "unsafe-other", world.made.head_sha)
    commit_file(other, "OTHER.md", "y\n")
    with pytest.raises(ProviderError, match="never forces"):
        gh.push_branch(REPO, str(other), "cicd-fix/moved")


def test_fix_for_a_fork_pull_request_goes_to_a_new_pull_request(world: World) -> None:
    gh = world.provider()
    number = world.server.add_fork_pull_request(
        REPO, "contributor/shipping", "add-labels", world.made.head_sha, "main"
    )
    assert gh.is_fork_pr(REPO, number)
    work = clone(world, gh, "fork", world.made.head_sha)
    commit_file(work, "FORK.md", "x\n")
    with pytest.raises(SafetyError, match="fork"):
        gh.push_branch(REPO, str(work), "add-labels")
    gh.push_branch(REPO, str(work), "cicd-fix/add-labels-run2")
    mark = "<!-- cicd-orchestrator:pull-request:fork -->"
    pr = gh.open_or_update_pull_request(
        REPO, "cicd-fix/add-labels-run2", "add-labels", "Fix", "body", mark
    )
    assert pr.number != number and pr.base == "main" and pr.head == "cicd-fix/add-labels-run2"
    assert f"#{number}" in world.local.get_pull_request(REPO, pr.number).body


def test_rerun_failed_jobs_makes_a_new_attempt(world: World) -> None:
    gh = world.provider()
    run_id = world.made.head_run.id
    assert gh.rerun_failed_jobs(REPO, run_id) == 2
    deadline = time.monotonic() + 60
    while (run := gh.get_run(REPO, run_id)).status is not RunStatus.COMPLETED:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert run.run_attempt == 2 and run.conclusion is Conclusion.FAILURE
    first = gh.get_run(REPO, run_id, attempt=1)
    assert first.run_attempt == 1
    assert {j.id for j in first.jobs} != {j.id for j in run.jobs}


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
    gh = world.provider()
    work = clone(world, gh, "secret", world.made.head_sha)
    commit_file(work, "SECRET.md", "x\n")
    gh.push_branch(REPO, str(work), "cicd-fix/secret")
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

    bad = world.provider(git_token="ghp_" + "W" * 36)
    with pytest.raises(ProviderError) as info:
        bad.push_branch(REPO, str(work), "cicd-fix/secret-2")
    assert "W" * 36 not in str(info.value)
    world.server.inject("error", count=10, path=r"/pulls")
    with pytest.raises(ProviderError) as info:
        gh.open_or_update_pull_request(REPO, "cicd-fix/secret", "main", "t", "b", "<!-- m -->")
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text and "W" * 36 not in caplog.text
