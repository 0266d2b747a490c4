"""``commit_to_pr_branch``: a fix goes onto a same-repository pull request's own branch as a
fast-forward of the failing commit, and never onto a fork's branch, a protected branch, or
a branch that moved since the failure (then the usual fix branch and pull request)."""

from __future__ import annotations

import dataclasses

import pytest
from cicd_devkit.hostile import NO_CI, STILL_RED, StartWorld, attempt_on, fix, hostings, push_commit
from cicd_devkit.worlds import REPO, GitHubWorld, GitLabWorld, World

from cicd_orchestrator import branches
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.git import git
from cicd_orchestrator.models import PullHead
from cicd_orchestrator.publish.change import fix_branch_name, publish_change

BRANCH = "feature/labels"
SHA = "a" * 40


# --------------------------------------------------------------------------- the decision
def test_the_decision_allows_only_a_same_repository_pull_request_at_the_failing_commit():
    same = PullHead(5, BRANCH, SHA, True)
    assert branches.pr_branch_refusal(same, BRANCH, SHA, SHA) is None
    assert "fork" in branches.pr_branch_refusal(
        dataclasses.replace(same, same_repository=False), BRANCH, SHA, SHA
    )
    assert "moved" in branches.pr_branch_refusal(same, BRANCH, SHA, "b" * 40)
    assert "moved" in branches.pr_branch_refusal(same, BRANCH, SHA, None)  # deleted
    assert "another head branch" in branches.pr_branch_refusal(same, "other", SHA, SHA)
    assert "no pull request" in branches.pr_branch_refusal(None, BRANCH, SHA, SHA)


# --------------------------------------------------------------------------- on a hosting
def _pull_request_attempt(world: World, config: dict[str, object]) -> tuple[Attempt, str, int]:
    """A failing pull request from ``BRANCH`` into main, and attempt 1 on its run."""
    sha = push_commit(world, BRANCH, STILL_RED)
    provider = world.provider()
    pr = world.local.open_or_update_pull_request(
        REPO, BRANCH, "main", "Labels", "a change", "<!-- a person's pull request -->"
    )
    run = _failed_pull_request_run(world, sha)
    attempt = attempt_on(world, run.id, config={"commit_to_pr_branch": True, **config})
    assert attempt.failed_run.pull_request_number == pr.number, provider.name
    return attempt, sha, pr.number


def _failed_pull_request_run(world: World, sha: str):
    import time

    provider = world.provider()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = [r for r in provider.list_runs(REPO, head_sha=sha) if r.event == "pull_request"]
        if runs and runs[0].status.value == "completed":
            return provider.get_run(REPO, runs[0].id)
        time.sleep(0.5)
    raise AssertionError(f"no completed pull_request run of {sha[:12]}")


def _parent(world: World, sha: str) -> str:
    return git(["rev-parse", f"{sha}^"], world.local.repo_path(REPO)).strip()


@pytest.mark.parametrize("kind", hostings("github", "local"))
def test_a_same_repository_pull_request_gets_the_fix_on_its_own_branch(
    start: StartWorld, kind: str
) -> None:
    world = start(kind)
    attempt, sha, number = _pull_request_attempt(world, {})
    published = publish_change(attempt, [fix()], "the report")
    assert published.branch == BRANCH and published.pull_request is None
    assert world.local.branch_sha(REPO, BRANCH) == published.sha
    assert _parent(world, published.sha) == sha  # a fast-forward of the failing commit
    pulls = world.local.list_pull_requests(REPO)
    assert [p.number for p in pulls] == [number]  # no second pull request
    assert world.local.branch_sha(REPO, fix_branch_name(attempt)) is None


@pytest.mark.parametrize("kind", hostings("github", "local"))
def test_a_branch_that_moved_since_the_failure_is_not_pushed_to(
    start: StartWorld, kind: str
) -> None:
    world = start(kind)
    attempt, sha, _ = _pull_request_attempt(world, {})
    moved = push_commit(world, BRANCH, {"MORE.md": "a person's next commit\n", **NO_CI}, base=sha)
    published = publish_change(attempt, [fix()], "the report")
    assert world.local.branch_sha(REPO, BRANCH) == moved
    assert published.branch == fix_branch_name(attempt) and published.pull_request
    assert any("moved since the failure" in n for n in published.notes)


@pytest.mark.parametrize("kind", hostings("github", "local"))
def test_a_protected_pull_request_branch_is_never_pushed_to(start: StartWorld, kind: str) -> None:
    world = start(kind)
    attempt, sha, _ = _pull_request_attempt(world, {"protected_branch_patterns": ["feature/*"]})
    published = publish_change(attempt, [fix()], "the report")
    assert world.local.branch_sha(REPO, BRANCH) == sha
    assert published.branch == fix_branch_name(attempt) and published.pull_request
    assert any("protected" in n for n in published.notes)


def test_a_fork_pull_request_never_gets_a_push_to_its_branch(start: StartWorld) -> None:
    world = start("github")
    # the fork's branch has the name of a branch of the repository itself
    attempt, sha, _ = _pull_request_attempt(world, {})
    fork = world.github.add_fork_pull_request(REPO, "mallory/shipping", BRANCH, sha, "main")
    head = world.provider().pull_request_head(REPO, fork)
    assert head is not None and not head.same_repository
    attempt.failed_run.pull_request_number = fork  # the failure names the fork's pull request
    published = publish_change(attempt, [fix()], "the report")
    assert world.local.branch_sha(REPO, BRANCH) == sha
    assert published.branch == fix_branch_name(attempt)
    assert any("from a fork" in n for n in published.notes)


def test_without_the_option_the_pull_request_branch_is_left_alone(start: StartWorld) -> None:
    world = start("local")
    attempt, sha, _ = _pull_request_attempt(world, {})
    attempt.config = dataclasses.replace(attempt.config, commit_to_pr_branch=False)
    published = publish_change(attempt, [fix()], "the report")
    assert world.local.branch_sha(REPO, BRANCH) == sha
    assert published.branch == fix_branch_name(attempt)


@pytest.mark.parametrize("kind", ["local", "github", "gitlab"])
def test_the_providers_say_where_a_pull_request_comes_from(start: StartWorld, kind: str) -> None:
    world = start(kind)
    sha = push_commit(world, BRANCH, STILL_RED)
    provider = world.provider()
    own = world.local.open_or_update_pull_request(
        REPO, BRANCH, "main", "Labels", "a change", "<!-- a person's pull request -->"
    )
    head = provider.pull_request_head(REPO, own.number)
    assert head == PullHead(own.number, BRANCH, sha, True)
    assert provider.branch_head(REPO, BRANCH) == sha
    assert provider.branch_head(REPO, "no-such-branch") is None
    if isinstance(world, GitHubWorld):
        fork = world.github.add_fork_pull_request(REPO, "mallory/shipping", BRANCH, sha, "main")
    elif isinstance(world, GitLabWorld):
        fork = world.gitlab.add_fork_merge_request(REPO, "mallory/shipping", BRANCH, sha, "main")
    else:
        return  # the local hosting has no forks
    forked = provider.pull_request_head(REPO, fork)
    assert forked is not None and not forked.same_repository
