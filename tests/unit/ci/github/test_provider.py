"""What only the GitHub provider does, against the GitHub-compatible server (real PyGithub and
real git over loopback): GitHub's protected branches, jobs and logs, forks, retried writes and
the token's secrecy. What every provider does is in ``test_provider_contract.py``."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from cicd_devkit.worlds import GITHUB_TOKEN as TOKEN
from cicd_devkit.worlds import REPO, GitHubWorld, signed_marker

from cicd_orchestrator.ci.github.mapping import to_run
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import ProviderError, SafetyError

WorkTree = Callable[[GitHubWorld, str], Any]


def test_protected_branches_are_those_that_exist(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    github_world.github.protect_branch(REPO, "stable")
    assert set(gh.protected_branches(REPO)) == {"main"}  # "stable" does not exist yet
    gh.default_branch(REPO)
    gh.git_remote(REPO)
    assert gh.calls == 3


def test_steps_and_logs_are_github_s(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    lint = gh.get_run(REPO, github_world.head_run_id).failed_jobs[0]
    assert [s.name for s in lint.steps][3] == "Lint"
    assert lint.steps[3].conclusion is Conclusion.FAILURE
    with gh.open_job_log(REPO, lint.id) as fh:
        text = fh.read().decode()
    assert text == github_world.local.job_log_text(REPO, lint.id)
    assert "##[error]" in text


def test_an_existing_protected_branch_is_refused(
    github_world: GitHubWorld, work_tree: WorkTree
) -> None:
    gh = github_world.provider()
    work = work_tree(github_world, "stable")
    work.commit({"STABLE.md": "x\n"})
    github_world.github.protect_branch(REPO, "stable")
    work.git("push", "--quiet", str(github_world.local.repo_path(REPO)), "HEAD:refs/heads/stable")
    assert "stable" in gh.protected_branches(REPO)
    with pytest.raises(SafetyError):
        gh.push_branch(REPO, str(work.path), "stable")


def test_fix_for_a_fork_pull_request_goes_to_a_new_pull_request(
    github_world: GitHubWorld, work_tree: WorkTree
) -> None:
    gh = github_world.provider()
    number = github_world.github.add_fork_pull_request(
        REPO, "contributor/shipping", "add-labels", github_world.head_sha, "main"
    )
    assert gh.is_fork_pr(REPO, number)
    assert gh.fork_pull_for_branch(REPO, "add-labels") == number
    work = work_tree(github_world, "fork")
    work.commit({"FORK.md": "x\n"})
    with pytest.raises(SafetyError, match="fork"):
        gh.push_branch(REPO, str(work.path), "add-labels")
    gh.push_branch(REPO, str(work.path), "cicd-fix/add-labels-run2")
    mark = signed_marker("pull-request", "fork")
    pr = gh.open_or_update_pull_request(
        REPO, "cicd-fix/add-labels-run2", "add-labels", "Fix", "body", mark
    )
    assert pr.number != number and pr.base == "main" and pr.head == "cicd-fix/add-labels-run2"
    assert f"#{number}" in github_world.local.get_pull_request(REPO, pr.number).body


def test_retried_writes_do_not_duplicate(github_world: GitHubWorld, work_tree: WorkTree) -> None:
    """A truncated answer to a create (the object exists, the client did not see it) is
    retried as a lookup that finds it by its marker."""
    gh = github_world.provider()
    work = work_tree(github_world, "retry")
    work.commit({"RETRY.md": "x\n"})
    gh.push_branch(REPO, str(work.path), "cicd-fix/retry")
    mark = signed_marker("pull-request", "retry")
    github_world.github.inject("truncate", path=r"/pulls$", method="POST")
    pr = gh.open_or_update_pull_request(REPO, "cicd-fix/retry", "main", "Fix", "b", mark)
    pulls = github_world.local.list_pull_requests(REPO)
    assert len([p for p in pulls if mark in p.body]) == 1
    cmark = signed_marker("report", "retry")
    github_world.github.inject("truncate", path=r"/comments$", method="POST")
    gh.comment(REPO, pr.number, "report", cmark)
    assert len(github_world.local.list_comments(REPO, pr.number)) == 1


def test_the_token_never_shows_in_argv_urls_logs_or_errors(
    github_world: GitHubWorld,
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
    gh = github_world.provider()
    work = work_tree(github_world, "secret")
    work.commit({"SECRET.md": "x\n"})
    gh.push_branch(REPO, str(work.path), "cicd-fix/secret")
    pushes = [a for a in seen if "push" in a]
    assert pushes and all(TOKEN not in " ".join(a) for a in seen)
    assert not any("@" in part for a in pushes for part in a if part.startswith("http"))
    assert TOKEN not in work.git("config", "--list")

    bad = github_world.provider(git_token="ghp_" + "W" * 36)
    with pytest.raises(ProviderError) as info:
        bad.push_branch(REPO, str(work.path), "cicd-fix/secret-2")
    assert "W" * 36 not in str(info.value)
    github_world.github.inject("error", count=10, path=r"/pulls")
    with pytest.raises(ProviderError) as info:
        gh.open_or_update_pull_request(REPO, "cicd-fix/secret", "main", "t", "b", "<!-- m -->")
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text and "W" * 36 not in caplog.text


def test_a_pull_request_run_knows_its_pull_request() -> None:
    """GitHub lists a pull request run's pull request in ``pull_requests`` (none for a
    fork's); a push run has none, whatever the list holds."""
    base = {"id": 9, "path": ".github/workflows/ci.yml", "head_branch": "feature"}
    pulls = [{"number": 12, "head": {"ref": "feature"}, "base": {"ref": "main"}}]
    pr_run = to_run(REPO, {**base, "event": "pull_request", "pull_requests": pulls})
    assert pr_run.pull_request_number == 12
    fork = to_run(REPO, {**base, "event": "pull_request_target", "pull_requests": []})
    assert fork.pull_request_number is None
    push = to_run(REPO, {**base, "event": "push", "pull_requests": pulls})
    assert push.pull_request_number is None
