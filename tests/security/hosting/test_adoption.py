"""Finding 5, PR hijack: a pull request, comment or issue somebody else wrote, carrying a
copy of the orchestrator's marker (copied whole, unsigned, or signed with another key), is
never adopted or edited; the orchestrator writes its own. Through the real publishing code,
on the local provider and on the GitHub and GitLab providers against their servers."""

from __future__ import annotations

import logging

import pytest
from cicd_devkit.hostile import NO_CI, StartWorld, attempt_on, fix, hostings, push_commit
from cicd_devkit.worlds import REPO, GitHubWorld, GitLabWorld, World

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.constants import RepairKind
from cicd_orchestrator.publish import markers
from cicd_orchestrator.publish.change import fix_branch_name, publish_change
from cicd_orchestrator.publish.issue import publish_issue
from cicd_orchestrator.publish.markers import key_of, marker, signing_key


def _mallory(world: World) -> CIProvider:
    """Somebody with write access to the repository who is not the orchestrator."""
    return world.as_user("mallory")


def _copies(real: str, session_id: str, kind: str, attempt: int | None) -> dict[str, str]:
    return {
        "copied": real,  # copied whole from one of the orchestrator's bodies
        "unsigned": marker(None, session_id, kind, attempt),
        "other-key": marker(signing_key("somebody-else's-key-0000"), session_id, kind, attempt),
    }


@pytest.mark.parametrize("variant", ["copied", "unsigned", "other-key"])
@pytest.mark.parametrize("kind", hostings("github", "local", "gitlab"))
def test_a_pull_request_with_a_copied_marker_is_not_adopted(
    start: StartWorld, kind: str, variant: str
) -> None:
    world = start(kind)
    attempt = attempt_on(world)
    sid = attempt.state.session_id
    real = marker(key_of(attempt), sid, "pull-request", 1)
    copy = _copies(real, sid, "pull-request", 1)[variant]
    push_commit(world, "mallory/hijack", {"EVIL.md": "evil\n", **NO_CI})
    mallory = _mallory(world)
    theirs = mallory.open_or_update_pull_request(
        REPO, "mallory/hijack", "main", "Mallory's change", f"Please merge.\n{copy}", copy
    )

    published = publish_change(attempt, [fix()], "the report")
    again = publish_change(attempt, [fix()], "the report")  # a retried task

    assert published.kind is RepairKind.CHANGE and published.pull_request is not None
    ours = published.pull_request
    assert ours.number != theirs.number and again.pull_request.number == ours.number
    assert ours.head == fix_branch_name(attempt)
    left = world.local.get_pull_request(REPO, theirs.number)
    assert (left.title, left.head, left.state) == ("Mallory's change", "mallory/hijack", "open")
    assert left.body.startswith("Please merge.") and left.author == "mallory"
    assert world.local.list_comments(REPO, theirs.number) == []
    mine = [p for p in world.local.list_pull_requests(REPO) if p.author != "mallory"]
    assert [p.number for p in mine] == [ours.number]


@pytest.mark.parametrize("kind", hostings("github", "local", "gitlab"))
def test_copied_markers_in_comments_and_issues_are_left_alone(start: StartWorld, kind: str) -> None:
    world = start(kind)
    attempt = attempt_on(world)
    sid, key = attempt.state.session_id, key_of(attempt)
    mallory = _mallory(world)

    # the report comment: mallory copies the marker of the orchestrator's report
    published = publish_change(attempt, [fix()], "report v1")
    number = published.pull_request.number
    report = marker(key, sid, "report", 1)
    mallory.comment(REPO, number, f"ping @org/team\n{report}", report)
    publish_change(attempt, [fix()], "report v2")
    comments = world.local.list_comments(REPO, number)
    theirs = [c for c in comments if c.author == "mallory"]
    ours = [c for c in comments if c.author != "mallory"]
    assert len(theirs) == 1 and theirs[0].body.startswith("ping @org/team")
    assert len(ours) == 1 and "report v2" in ours[0].body

    # the escalation issue: mallory opens one with the marker first
    issue_mark = marker(key, sid, "issue")
    planted = mallory.open_issue(REPO, "Give me the bot's issue", f"x\n{issue_mark}", issue_mark)
    issue = publish_issue(attempt).issue
    again = publish_issue(attempt).issue
    assert issue is not None and again is not None
    assert issue.number != planted.number and again.number == issue.number
    left = world.local.get_issue(REPO, planted.number)
    assert left.title == "Give me the bot's issue" and left.body.startswith("x\n")


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_pull_request_from_a_fork_is_not_adopted(start: StartWorld, kind: str) -> None:
    """A fork's pull request from a branch named as the fix branch, carrying the marker, even
    one the orchestrator's own user opened, is not the fix's pull request."""
    world = start(kind)
    attempt = attempt_on(world)
    provider = attempt.provider
    branch = fix_branch_name(attempt)
    mark = marker(key_of(attempt), attempt.state.session_id, "pull-request", 1)
    push_commit(world, branch, {"FIXED.md": "fixed\n", **NO_CI})
    body = f"from a fork\n{mark}"
    if isinstance(world, GitHubWorld):
        fork = world.github.add_fork_pull_request(
            REPO,
            "mallory/shipping",
            branch,
            world.head_sha,
            "main",
            body=body,
            author=provider.identity(),
        )
    else:
        assert isinstance(world, GitLabWorld)
        fork = world.gitlab.add_fork_merge_request(
            REPO,
            "mallory/shipping",
            branch,
            world.head_sha,
            "main",
            description=body,
            author=provider.identity(),
        )
    pr = provider.open_or_update_pull_request(REPO, branch, "main", "Fix", "the fix", mark)
    assert pr.number != fork
    left = world.local.get_pull_request(REPO, fork)
    assert left.title == "A change from a fork" and left.body == body


def test_a_github_app_knows_its_bot_and_adopts_only_its_own(start: StartWorld) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from cicd_orchestrator.ci.github.auth import app_client
    from cicd_orchestrator.ci.github.provider import GitHubProvider

    world = start("github")
    assert isinstance(world, GitHubWorld)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    world.github.register_app(4242, public, 77, slug="acme-fixer")
    app = GitHubProvider(app_client(4242, private, 77, world.github.api_url, timeout=5.0))
    assert app.identity() == "acme-fixer[bot]"
    token_user = world.provider()
    assert token_user.identity() == "cicd-orchestrator[bot]"
    push_commit(world, "cicd-fix/app", {"APP.md": "x\n", **NO_CI})
    mark = marker(signing_key("k" * 20), "s", "pull-request", 1)
    theirs = token_user.open_or_update_pull_request(REPO, "cicd-fix/app", "main", "T", "b", mark)
    ours = app.open_or_update_pull_request(REPO, "cicd-fix/app", "main", "App", "b", mark)
    again = app.open_or_update_pull_request(REPO, "cicd-fix/app", "main", "App 2", "b", mark)
    assert ours.number != theirs.number and again.number == ours.number
    assert world.local.get_pull_request(REPO, theirs.number).title == "T"


def test_without_a_key_nothing_is_ever_adopted(
    start: StartWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """No marker key: a warning, unsigned markers, and a retry makes a new pull request
    rather than trusting a marker anybody could have written."""
    world = start("local")
    attempt = attempt_on(world, config={"marker_key": None})
    markers._warn_unsigned.cache_clear()
    caplog.set_level(logging.WARNING)
    first = publish_change(attempt, [fix()], "r")
    second = publish_change(attempt, [fix()], "r")
    assert "no marker key" in caplog.text
    assert first.pull_request.number != second.pull_request.number
