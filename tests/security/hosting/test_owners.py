"""Owners of a fix pull request and an escalation issue, from the configuration and from the
repository's CODEOWNERS (hostile content: the orchestrator is never named, the count is
capped, e-mail addresses and bad handles are dropped), on the local provider and on the
GitHub provider against its server (assignees and review requests read back with PyGithub)."""

from __future__ import annotations

import dataclasses

import pytest
from cicd_devkit.hostile import NO_CI, StartWorld, attempt_on, fix, push_commit
from cicd_devkit.worlds import REPO, GitHubWorld

from cicd_orchestrator.publish.change import publish_change
from cicd_orchestrator.publish.owners import owners_of

HOSTILE_CODEOWNERS = """\
*            @acme/core victim@example.com @-bad @a;b
FIXED.md     @alice @{me} @bob @carol @dave @erin
"""


@pytest.mark.parametrize("kind", ["local", "github"])
def test_a_fix_goes_to_its_codeowners_capped_and_never_the_orchestrator(
    start: StartWorld, kind: str
) -> None:
    world = start(kind)
    config = {"owners": {REPO: {"users": ["zoe"], "teams": ["acme/ops"]}}, "max_owners": 3}
    attempt = attempt_on(world, config=config)
    provider = attempt.provider
    me = provider.identity()  # CODEOWNERS naming the orchestrator does not make it an owner
    text = HOSTILE_CODEOWNERS.format(me=me)
    attempt.state.head_sha = push_commit(world, "owners", {".github/CODEOWNERS": text, **NO_CI})

    published = publish_change(attempt, [dataclasses.replace(fix(), files=["FIXED.md"])], "r")

    pr = published.pull_request
    assert pr is not None
    expected = ["zoe", "alice", "bob"]  # capped at max_owners, the orchestrator left out
    owners = world.local.owners(REPO, pr.number)
    assert owners["assignees"] == expected and owners["reviewers"] == expected
    assert owners["team_reviewers"] == ["acme/ops"]  # FIXED.md's own line wins over *
    assert any(n.startswith("owners: ") for n in published.notes)
    if isinstance(world, GitHubWorld):  # what GitHub's API shows, read back by PyGithub
        gh = provider.client.get_repo(REPO).get_pull(pr.number)
        assert [u.login for u in gh.assignees] == expected
        assert [u.login for u in gh.requested_reviewers] == expected
        assert [t.slug for t in gh.requested_teams] == ["ops"]


def test_codeowners_can_be_switched_off_per_repository(start: StartWorld) -> None:
    world = start("local")
    attempt = attempt_on(world, config={"owners": {"*": {"codeowners": False}}})
    attempt.state.head_sha = push_commit(world, "owners", {"CODEOWNERS": "* @alice\n", **NO_CI})
    assert owners_of(attempt, ["x"]) == ([], [])
    on = attempt_on(world)
    on.state.head_sha = attempt.state.head_sha
    assert owners_of(on, ["x"]) == (["alice"], [])


def test_a_huge_codeowners_is_ignored(start: StartWorld) -> None:
    world = start("local")
    attempt = attempt_on(world)
    huge = "* @alice\n" + "#" * (2 * 1024 * 1024)
    attempt.state.head_sha = push_commit(world, "owners", {"CODEOWNERS": huge, **NO_CI})
    assert owners_of(attempt, ["x"]) == ([], [])
