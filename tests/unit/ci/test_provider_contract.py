"""What every provider promises through ``CIProvider``, checked on each of them: the local
provider, and the GitHub, GitLab and Jenkins providers against their compatible servers
(backed by a local provider; Jenkins publishes through it, its git hosting).

Each provider gets a world of its own (``cicd_devkit.worlds``): a repository with a green
commit and a failing head (the ``lint`` job fails, ``test`` passes). The tests run in this
order on each world; the pushes come after the reads (a push starts CI on its branch) and the
re-run comes last (it changes the failed run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cicd_devkit.worlds import REPO, World, signed_marker

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.constants import (
    FAILED_CONCLUSIONS,
    STATUS_CONTEXT,
    CombinedState,
    Conclusion,
    RunStatus,
)
from cicd_orchestrator.exceptions import (
    ProviderError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
)
from cicd_orchestrator.git import BOT_EMAIL

WorkTree = Callable[[World, str], Any]
WORKFLOW = ".github/workflows/ci.yml"


def _pushed(world: World, work_tree: WorkTree, branch: str) -> CIProvider:
    """The world's provider, once a commit on top of the head is pushed to ``branch``."""
    ci = world.provider()
    work = work_tree(world, branch.replace("/", "-"))
    work.commit({f"{branch.replace('/', '-')}.md": "a change\n"}, f"change for {branch}")
    ci.push_branch(REPO, str(work.path), branch)
    return ci


# --------------------------------------------------------------------------- repositories
def test_repository_facts(world: World) -> None:
    ci = world.provider()
    assert isinstance(ci, CIProvider)
    assert ci.default_branch(REPO) == "main"
    assert "main" in ci.protected_branches(REPO)
    remote = ci.git_remote(REPO)
    assert remote.url == world.remote_url and "@" not in remote.url
    assert remote.env.get("CICD_GIT_TOKEN") == world.git_token


# --------------------------------------------------------------------------- runs
def test_runs_newest_first_without_jobs(world: World) -> None:
    ci = world.provider()
    runs = ci.list_runs(REPO)
    assert [r.id for r in runs] == [world.head_run_id, world.green_run_id]
    assert [r.conclusion for r in runs] == [Conclusion.FAILURE, Conclusion.SUCCESS]
    assert [r.head_sha for r in runs] == [world.head_sha, world.green_sha]
    assert all(r.head_branch == "main" and r.event == "push" and not r.jobs for r in runs)
    assert {r.workflow_path for r in runs} == {WORKFLOW}
    assert [r.id for r in ci.list_runs(REPO, branch="main")] == [r.id for r in runs]
    assert ci.list_runs(REPO, branch="nope") == []
    assert [r.id for r in ci.list_runs(REPO, head_sha=world.head_sha)] == [world.head_run_id]


def test_failed_runs_above_the_cursor(world: World) -> None:
    ci = world.provider()
    head = world.head_run_id
    assert [r.id for r in ci.list_failed_runs(REPO, "main")] == [head]
    assert ci.list_failed_runs(REPO, "main", since_run_id=head) == []
    assert [r.id for r in ci.list_failed_runs(REPO, "main", since_run_id=head - 1)] == [head]
    failed = ci.list_failed_runs(REPO, "main", conclusions=FAILED_CONCLUSIONS)
    assert [r.id for r in failed] == [head]
    cancelled = frozenset({Conclusion.CANCELLED})
    assert ci.list_failed_runs(REPO, "main", conclusions=cancelled) == []


def test_a_run_with_its_jobs_and_steps(world: World) -> None:
    ci = world.provider()
    run = ci.get_run(REPO, world.head_run_id)
    assert run.id == world.head_run_id and run.head_sha == world.head_sha
    assert run.run_attempt == 1 and run.status is RunStatus.COMPLETED
    assert run.conclusion is Conclusion.FAILURE and run.workflow_path == WORKFLOW
    assert {j.name: j.conclusion for j in run.jobs} == {
        "lint": Conclusion.FAILURE,
        "test": Conclusion.SUCCESS,
    }
    lint = run.failed_jobs[0]
    assert [j.name for j in run.failed_jobs] == ["lint"] and lint.run_attempt == 1
    assert lint.steps and any(s.conclusion is Conclusion.FAILURE for s in lint.steps)
    assert all(j.run_id == run.id for j in run.jobs)
    green = ci.get_run(REPO, world.green_run_id)
    assert green.conclusion is Conclusion.SUCCESS and green.jobs and not green.failed_jobs


def test_unknown_repositories_runs_attempts_and_jobs(world: World) -> None:
    ci = world.provider()
    with pytest.raises(UnknownRepositoryError):
        ci.list_runs("acme/nope")
    with pytest.raises(UnknownRunError):
        ci.get_run(REPO, 999_999)
    for attempt in (2, 9):
        with pytest.raises(UnknownRunError):
            ci.get_run(REPO, world.head_run_id, attempt=attempt)
    with pytest.raises(UnknownRunError), ci.open_job_log(REPO, 999_999):
        pass


def test_the_log_of_a_failed_job(world: World) -> None:
    ci = world.provider()
    lint = ci.get_run(REPO, world.head_run_id).failed_jobs[0]
    with ci.open_job_log(REPO, lint.id) as fh:
        text = fh.read().decode()
    assert "ruff check" in text and "F401" in text
    test = next(j for j in ci.get_run(REPO, world.head_run_id).jobs if j.name == "test")
    with ci.open_job_log(REPO, test.id) as fh:
        assert "F401" not in fh.read().decode()


# --------------------------------------------------------------------------- commit states
def test_the_combined_state_of_a_commit(world: World) -> None:
    ci = world.provider()
    red = ci.ref_status(REPO, world.head_sha)
    assert red.state is CombinedState.FAILURE and red.sha == world.head_sha
    assert [r.id for r in red.runs] == [world.head_run_id]
    assert ci.ref_status(REPO, world.green_sha).state is CombinedState.SUCCESS
    assert ci.ref_status(REPO, "0" * 40).state is CombinedState.NONE


def test_the_failed_runs_of_a_commit_come_with_their_jobs(world: World) -> None:
    red = world.provider().ref_status(REPO, world.head_sha)
    assert [j.name for r in red.runs for j in r.failed_jobs] == ["lint"]


def test_the_orchestrator_status_is_set_and_does_not_count(world: World) -> None:
    ci = world.provider()
    green = world.green_sha
    ci.set_commit_status(REPO, green, CombinedState.FAILURE, "our own status does not count")
    statuses = world.local.commit_statuses(REPO, green)
    assert [(s.context, s.state) for s in statuses] == [(STATUS_CONTEXT, CombinedState.FAILURE)]
    assert statuses[0].description == "our own status does not count"
    assert ci.ref_status(REPO, green).state is CombinedState.SUCCESS


# Jenkins judges a commit by its builds only (the hosting's statuses are not its CI)
@pytest.mark.parametrize("world", ["local", "github", "gitlab"], indirect=True)
def test_the_statuses_of_other_checks_count(world: World) -> None:
    ci = world.provider()
    world.local.add_commit_status(REPO, world.green_sha, "security/scan", CombinedState.FAILURE)
    assert ci.ref_status(REPO, world.green_sha).state is CombinedState.FAILURE


def test_the_author_of_a_commit(world: World, work_tree: WorkTree) -> None:
    ci = world.provider()
    assert ci.commit_author(REPO, world.head_sha) == "author@example.invalid"
    work = work_tree(world, "authored")
    sha = work.commit({"AUTHORED.md": "x\n"}, "the orchestrator's commit")
    ci.push_branch(REPO, str(work.path), "cicd-fix/authored")
    assert ci.commit_author(REPO, sha) == BOT_EMAIL  # the orchestrator's git identity
    with pytest.raises(UnknownRunError):
        ci.commit_author(REPO, "0" * 40)


# --------------------------------------------------------------------------- pushing
def test_a_fix_branch_is_pushed(world: World, work_tree: WorkTree) -> None:
    ci = world.provider()
    work = work_tree(world, "fix")
    sha = work.commit({"FIX.md": "fixed\n"}, "fix")
    assert ci.push_branch(REPO, str(work.path), "cicd-fix/contract") == sha
    assert world.local.branch_sha(REPO, "cicd-fix/contract") == sha
    assert ci.push_branch(REPO, str(work.path), "cicd-fix/contract") == sha  # again: a no-op


def test_the_default_and_protected_branches_are_refused(world: World, work_tree: WorkTree) -> None:
    ci = world.provider()
    work = work_tree(world, "unsafe")
    work.commit({"UNSAFE.md": "x\n"})
    for branch in ("main", "release/1.0", "production", "+cicd-fix/x", "refs/heads/x", "a..b"):
        with pytest.raises(SafetyError):
            ci.push_branch(REPO, str(work.path), branch)
    assert world.local.branch_sha(REPO, "main") == world.head_sha
    assert world.local.branch_sha(REPO, "release/1.0") is None


def test_a_push_is_never_forced(world: World, work_tree: WorkTree) -> None:
    ci = _pushed(world, work_tree, "cicd-fix/moved")
    other = work_tree(world, "other")
    other.commit({"OTHER.md": "y\n"})
    with pytest.raises(ProviderError, match="never forces"):
        ci.push_branch(REPO, str(other.path), "cicd-fix/moved")


# --------------------------------------------------------------------------- marked writes
def test_one_pull_request_per_marker(world: World, work_tree: WorkTree) -> None:
    ci = _pushed(world, work_tree, "cicd-fix/pull")
    mark = signed_marker("pull-request", "contract")
    first = ci.open_or_update_pull_request(REPO, "cicd-fix/pull", "main", "Fix", "body", mark)
    again = ci.open_or_update_pull_request(REPO, "cicd-fix/pull", "main", "Fix 2", "b2", mark)
    assert first.number == again.number and again.title == "Fix 2"
    assert (again.head, again.base, again.state) == ("cicd-fix/pull", "main", "open")
    pulls = [p for p in world.local.list_pull_requests(REPO) if mark in p.body]
    assert len(pulls) == 1 and pulls[0].body.startswith("b2")
    with pytest.raises(ProviderError, match="marker"):
        ci.open_or_update_pull_request(REPO, "cicd-fix/pull", "main", "Fix", "body", "")


def test_a_pull_request_opened_as_a_draft(world: World, work_tree: WorkTree) -> None:
    ci = _pushed(world, work_tree, "cicd-fix/draft")
    mark = signed_marker("pull-request", "draft")
    pr = ci.open_or_update_pull_request(
        REPO, "cicd-fix/draft", "main", "Fix", "body", mark, draft=True
    )
    assert pr.draft and pr.title == "Fix" and pr.head == "cicd-fix/draft"
    again = ci.open_or_update_pull_request(
        REPO, "cicd-fix/draft", "main", "Fix", "b2", mark, draft=True
    )
    assert again.number == pr.number and again.draft
    _pushed(world, work_tree, "cicd-fix/ready")
    ready = ci.open_or_update_pull_request(
        REPO, "cicd-fix/ready", "main", "Fix", "body", signed_marker("pull-request", "ready")
    )
    assert not ready.draft


def test_one_comment_per_marker(world: World, work_tree: WorkTree) -> None:
    ci = _pushed(world, work_tree, "cicd-fix/comment")
    mark = signed_marker("pull-request", "comment")
    pull = ci.open_or_update_pull_request(REPO, "cicd-fix/comment", "main", "Fix", "b", mark)
    report = signed_marker("report", "contract")
    ci.comment(REPO, pull.number, "report 1", report)
    ci.comment(REPO, pull.number, "report 2", report)
    comments = world.local.list_comments(REPO, pull.number)
    assert len(comments) == 1 and comments[0].body.startswith("report 2")
    assert report in comments[0].body
    with pytest.raises(ProviderError, match="marker"):
        ci.comment(REPO, pull.number, "report 3", "")


def test_one_issue_per_marker(world: World) -> None:
    ci = world.provider()
    mark = signed_marker("issue", "contract")
    labels = ["ci-failure", "automated"]
    one = ci.open_issue(REPO, "Help", "context", mark, labels=labels)
    two = ci.open_issue(REPO, "Help!", "more context", mark, labels=labels)
    assert one.number == two.number and two.state == "open"
    issues = [i for i in world.local.list_issues(REPO) if mark in i.body]
    assert len(issues) == 1 and issues[0].title == "Help!" and issues[0].labels == labels
    assert issues[0].body.startswith("more context")
    ci.comment(REPO, one.number, "on the issue", signed_marker("note", "issue"))
    assert len(world.local.list_comments(REPO, one.number)) == 1


def test_what_another_user_wrote_is_never_adopted(world: World, work_tree: WorkTree) -> None:
    """Somebody else's pull request, comment and issue carrying a copy of the orchestrator's
    marker are left alone; the orchestrator writes its own."""
    ci = _pushed(world, work_tree, "cicd-fix/copied")
    mallory = world.as_user("mallory")
    assert ci.identity() and mallory.identity() == "mallory" != ci.identity()
    work = work_tree(world, "mallory")
    work.commit({"MALLORY.md": "x\n"}, "mallory's change")
    mallory.push_branch(REPO, str(work.path), "mallory/copied")
    mark = signed_marker("pull-request", "copied")
    theirs = mallory.open_or_update_pull_request(
        REPO, "mallory/copied", "main", "Mallory's", "copied", mark
    )
    ours = ci.open_or_update_pull_request(REPO, "cicd-fix/copied", "main", "Fix", "b", mark)
    assert ours.number != theirs.number
    left = world.local.get_pull_request(REPO, theirs.number)
    assert (left.title, left.head, left.author) == ("Mallory's", "mallory/copied", "mallory")
    assert world.local.get_pull_request(REPO, ours.number).author == ci.identity()
    again = ci.open_or_update_pull_request(REPO, "cicd-fix/copied", "main", "Fix 2", "b", mark)
    assert again.number == ours.number

    report = signed_marker("report", "copied")
    mallory.comment(REPO, ours.number, "mallory's words", report)
    ci.comment(REPO, ours.number, "the report", report)
    comments = world.local.list_comments(REPO, ours.number)
    assert sorted(c.body.split("\n")[0] for c in comments) == ["mallory's words", "the report"]

    issue_mark = signed_marker("issue", "copied")
    their_issue = mallory.open_issue(REPO, "Mallory's issue", "copied", issue_mark)
    our_issue = ci.open_issue(REPO, "Help", "context", issue_mark)
    assert our_issue.number != their_issue.number
    assert world.local.get_issue(REPO, their_issue.number).title == "Mallory's issue"


def test_a_superseded_pull_request_is_closed_with_a_comment(
    world: World, work_tree: WorkTree
) -> None:
    ci = _pushed(world, work_tree, "cicd-fix/first")
    _pushed(world, work_tree, "cicd-fix/second")
    first = ci.open_or_update_pull_request(
        REPO, "cicd-fix/first", "main", "Fix 1", "b", signed_marker("pull-request", "s", 1)
    )
    second = ci.open_or_update_pull_request(
        REPO, "cicd-fix/second", "main", "Fix 2", "b", signed_marker("pull-request", "s", 2)
    )
    mark = signed_marker("superseded", "s", 1)
    why = f"Superseded by {second.url} (number {second.number})."
    ci.close_pull_request(REPO, first.number, why, mark)
    ci.close_pull_request(REPO, first.number, why, mark)  # a retry: nothing twice
    assert world.local.get_pull_request(REPO, first.number).state == "closed"
    assert world.local.get_pull_request(REPO, second.number).state == "open"
    (comment,) = world.local.list_comments(REPO, first.number)
    assert comment.body.startswith(why) and mark in comment.body

    mallory = world.as_user("mallory")
    work = work_tree(world, "mallory-close")
    work.commit({"MALLORY2.md": "x\n"})
    mallory.push_branch(REPO, str(work.path), "mallory/close")
    theirs = mallory.open_or_update_pull_request(
        REPO, "mallory/close", "main", "Mallory's", "b", signed_marker("pull-request", "m")
    )
    with pytest.raises(SafetyError, match="refusing to close"):
        ci.close_pull_request(REPO, theirs.number, why, mark)
    assert world.local.get_pull_request(REPO, theirs.number).state == "open"
    assert world.local.list_comments(REPO, theirs.number) == []


# --------------------------------------------------------------------------- re-runs (last:
# they change the failed run)
def test_a_rerun_of_the_failed_jobs_is_a_new_attempt(world: World) -> None:
    ci = world.provider()
    run_id = world.head_run_id
    first = ci.get_run(REPO, run_id)
    assert ci.rerun_failed_jobs(REPO, run_id) == 2
    run = world.wait_run(ci, run_id)
    assert run.id == run_id and run.run_attempt == 2 and run.conclusion is Conclusion.FAILURE
    assert [j.name for j in run.failed_jobs] == ["lint"]
    assert next(j for j in run.jobs if j.name == "lint").run_attempt == 2
    again = ci.get_run(REPO, run_id, attempt=1)
    assert again.run_attempt == 1 and [j.id for j in again.jobs] == [j.id for j in first.jobs]
    assert {j.id for j in again.jobs} != {j.id for j in run.jobs}
    assert [r.id for r in ci.list_failed_runs(REPO, "main", since_run_id=run_id)] == []


def test_a_draft_is_marked_ready_for_review(world: World, work_tree: WorkTree) -> None:
    """What the monitor does once the real CI is green on a fix it verified: the draft is
    ready for review; a retry changes nothing; a pull request another user opened is left
    alone."""
    ci = _pushed(world, work_tree, "cicd-fix/verified")
    mark = signed_marker("pull-request", "verified")
    draft = ci.open_or_update_pull_request(
        REPO, "cicd-fix/verified", "main", "Fix", "body", mark, draft=True
    )
    assert draft.draft
    ready = ci.mark_ready_for_review(REPO, draft.number)
    assert ready.number == draft.number and not ready.draft and ready.title == "Fix"
    again = ci.mark_ready_for_review(REPO, draft.number)  # a retry: nothing twice
    assert not again.draft and again.state == "open"
    found = ci.open_or_update_pull_request(REPO, "cicd-fix/verified", "main", "Fix", "b", mark)
    assert found.number == draft.number and not found.draft

    mallory = world.as_user("mallory")
    work = work_tree(world, "mallory-ready")
    work.commit({"MALLORY3.md": "x\n"})
    mallory.push_branch(REPO, str(work.path), "mallory/ready")
    theirs = mallory.open_or_update_pull_request(
        REPO,
        "mallory/ready",
        "main",
        "Mallory's",
        "b",
        signed_marker("pull-request", "mr"),
        draft=True,
    )
    with pytest.raises(SafetyError, match="ready for review"):
        ci.mark_ready_for_review(REPO, theirs.number)
    assert mallory.open_or_update_pull_request(
        REPO,
        "mallory/ready",
        "main",
        "Mallory's",
        "b",
        signed_marker("pull-request", "mr"),
        draft=True,
    ).draft
