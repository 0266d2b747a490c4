"""Owners of a merge request and of an issue on GitLab, against the GitLab-compatible server
(real python-gitlab over loopback): users found by username and assigned by id, asked for
review on a merge request, added to those already there; a username GitLab does not know and
a team are skipped, with a warning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from cicd_devkit.worlds import REPO, GitLabWorld, signed_marker

from cicd_orchestrator.ci.gitlab.auth import token_client
from cicd_orchestrator.exceptions import ProviderError

WorkTree = Callable[[GitLabWorld, str], Any]


def _merge_request(gitlab_world: GitLabWorld, work_tree: WorkTree, name: str) -> int:
    """A merge request the orchestrator opened from a branch of its own."""
    gl = gitlab_world.provider()
    work = work_tree(gitlab_world, name)
    work.commit({f"{name.upper()}.md": "x\n"})
    branch = f"cicd-fix/{name}"
    gl.push_branch(REPO, str(work.path), branch)
    mark = signed_marker("pull-request", name)
    return gl.open_or_update_pull_request(REPO, branch, "main", "Fix", "body", mark).number


def _usernames(users: list[dict[str, Any]] | None) -> list[str]:
    return [str(u["username"]) for u in users or []]


def _people(gitlab_world: GitLabWorld, *names: str) -> None:
    for name in names:
        gitlab_world.gitlab.add_user(name)


def test_users_are_found_by_username(gitlab_world: GitLabWorld) -> None:
    _people(gitlab_world, "Heidi", "heidi")
    client = gitlab_world.provider().client
    found = client.users.list(username="HEIDI")
    assert [u.attributes["username"] for u in found] == ["Heidi"]
    assert {"id", "username", "name", "state"} <= set(found[0].attributes)
    assert client.users.list(username="nobody-here") == []


def test_assignees_and_reviewers_land_on_a_merge_request_and_who_is_there_stays(
    gitlab_world: GitLabWorld, work_tree: WorkTree
) -> None:
    _people(gitlab_world, "alice", "bob", "carol")
    gl = gitlab_world.provider()
    number = _merge_request(gitlab_world, work_tree, "owners")
    # somebody else assigns alice and asks bob for review first
    ids = {u.attributes["username"]: u.attributes["id"] for u in gl.client.users.list()}
    other = token_client(gitlab_world.gitlab.add_user("maintainer"), gitlab_world.gitlab.url)
    other.projects.get(REPO, lazy=True).mergerequests.update(
        number, {"assignee_ids": [ids["alice"]], "reviewer_ids": [ids["bob"]]}
    )

    gl.set_owners(REPO, number, ["carol", "alice"], ["carol"])

    owners = gitlab_world.local.owners(REPO, number)
    assert owners["assignees"] == ["alice", "carol"]
    assert owners["reviewers"] == ["bob", "carol"]
    mr = gl.client.projects.get(REPO, lazy=True).mergerequests.get(number).attributes
    assert _usernames(mr["assignees"]) == ["alice", "carol"]
    assert mr["assignee"]["username"] == "alice"
    assert _usernames(mr["reviewers"]) == ["bob", "carol"]

    puts = [r for r in gitlab_world.gitlab.requests if r.method == "PUT"]
    gl.set_owners(REPO, number, ["carol"], ["bob"])  # nothing new: nothing is written
    assert [r for r in gitlab_world.gitlab.requests if r.method == "PUT"] == puts
    assert gitlab_world.local.owners(REPO, number) == owners


def test_an_unknown_username_and_a_team_are_skipped_with_a_warning(
    gitlab_world: GitLabWorld, work_tree: WorkTree, caplog: pytest.LogCaptureFixture
) -> None:
    _people(gitlab_world, "dave")
    gl = gitlab_world.provider()
    number = _merge_request(gitlab_world, work_tree, "unknown")
    caplog.set_level(logging.WARNING, logger="cicd_orchestrator.ci.gitlab.provider")

    gl.set_owners(REPO, number, ["ghost", "dave"], ["dave", "ghost"], ["acme/ops"])

    owners = gitlab_world.local.owners(REPO, number)
    assert owners["assignees"] == ["dave"] and owners["reviewers"] == ["dave"]
    assert owners["team_reviewers"] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ghost" in w and "assignee" in w for w in warnings)
    assert any("ghost" in w and "reviewer" in w for w in warnings)
    assert any("acme/ops" in w and "team" in w for w in warnings)


def test_an_issue_gets_assignees_but_no_reviewers(gitlab_world: GitLabWorld) -> None:
    _people(gitlab_world, "erin", "frank")
    gl = gitlab_world.provider()
    issue = gl.open_issue(REPO, "Escalation", "body", signed_marker("issue", "owners"))

    gl.set_owners(REPO, issue.number, ["erin"])
    gl.set_owners(REPO, issue.number, ["frank", "nobody-at-all"])

    assert gitlab_world.local.owners(REPO, issue.number)["assignees"] == ["erin", "frank"]
    found = gl.client.projects.get(REPO, lazy=True).issues.get(issue.number).attributes
    assert _usernames(found["assignees"]) == ["erin", "frank"]
    with pytest.raises(ProviderError, match="issue"):
        gl.set_owners(REPO, issue.number, ["erin"], ["frank"])
    assert gitlab_world.local.owners(REPO, issue.number)["reviewers"] == []


def test_a_failed_write_is_retried(gitlab_world: GitLabWorld, work_tree: WorkTree) -> None:
    _people(gitlab_world, "grace")
    gl = gitlab_world.provider()
    number = _merge_request(gitlab_world, work_tree, "retried")
    server = gitlab_world.gitlab
    server.inject("error", path=r"/merge_requests/\d+$", method="PUT", status=502)
    gl.set_owners(REPO, number, ["grace"], ["grace"])
    assert [r.status for r in server.requests if r.method == "PUT"][-2:] == [502, 200]
    owners = gitlab_world.local.owners(REPO, number)
    assert owners["assignees"] == ["grace"] and owners["reviewers"] == ["grace"]
