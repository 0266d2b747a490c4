"""The sweep's choice of the failures that open a session: not superseded, one per push,
cancelled runs as the configuration says."""

from __future__ import annotations

import dataclasses

from cicd_devkit import builders

from cicd_orchestrator import git, session
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.models import Run
from cicd_orchestrator.stages.opening import failed_runs_of_push
from cicd_orchestrator.stages.sweep import sweep

REPO = "acme/shop"
A, B = "a" * 40, "b" * 40


def _run(run_id: int, sha: str, workflow: str = "ci", conclusion: Conclusion | None = None) -> Run:
    return dataclasses.replace(
        builders.failed_run(run_id, REPO),
        head_sha=sha,
        workflow=workflow,
        workflow_path=f".github/workflows/{workflow}.yml",
        conclusion=conclusion or Conclusion.FAILURE,
    )


def _in_progress(run_id: int, sha: str, workflow: str = "ci") -> Run:
    return dataclasses.replace(
        _run(run_id, sha, workflow), status=RunStatus.IN_PROGRESS, conclusion=None
    )


class FakeProvider:
    """What the sweep asks of a provider: the default branch, runs, commit authors."""

    def __init__(self, runs: list[Run], authors: dict[str, str] | None = None) -> None:
        self.runs = runs
        self.authors = authors or {}

    def default_branch(self, repo: str) -> str:
        return "main"

    def list_runs(self, repo, branch=None, head_sha=None):
        found = [
            r
            for r in self.runs
            if branch in (None, r.head_branch) and head_sha in (None, r.head_sha)
        ]
        return sorted(found, key=lambda r: r.id, reverse=True)

    def commit_author(self, repo: str, sha: str) -> str:
        return self.authors.get(sha, "dev@example.com")


def _sweep(runs, sessions=(), authors=None, **config):
    cfg = load_config(
        {"watched_repositories": [{"repository": REPO, "branches": ["main"]}], **config}
    )
    provider = FakeProvider(runs, authors)
    return sweep(cfg, lambda name: provider, lambda sid: sid in set(sessions))


def test_two_failed_workflows_of_one_push_open_one_session():
    lint, tests = _run(7, A, "lint"), _run(8, A, "tests")
    items = _sweep([lint, tests])
    assert len(items) == 1
    assert items[0].run_id == 7
    assert items[0].session_id == session.session_id_of_run("local", tests)


def test_a_failure_superseded_by_a_newer_run_of_its_workflow_opens_nothing():
    assert _sweep([_run(7, A), _run(9, B, conclusion=Conclusion.SUCCESS)]) == []
    assert _sweep([_run(7, A), _in_progress(9, B)]) == []


def test_a_failure_is_not_superseded_by_another_workflow():
    items = _sweep([_run(7, A, "ci"), _run(9, B, "docs", Conclusion.SUCCESS)])
    assert [i.run_id for i in items] == [7]


def test_a_failed_run_green_by_itself_opens_nothing():
    assert _sweep([_run(7, A, conclusion=Conclusion.SUCCESS)]) == []


def test_the_newest_failure_of_the_branch_opens_one_and_the_older_push_none():
    items = _sweep([_run(7, A), _run(9, B)])
    assert [i.run_id for i in items] == [9]


def test_a_push_with_a_session_is_not_opened_again():
    runs = [_run(7, A, "lint"), _run(8, A, "tests")]
    sid = session.session_id_of_run("local", runs[0])
    assert _sweep(runs, sessions=[sid]) == []


def test_the_orchestrators_own_commit_opens_nothing():
    assert _sweep([_run(7, A)], authors={A: git.BOT_EMAIL}) == []


def test_cancelled_runs_count_as_the_configuration_says():
    cancelled = _run(7, A, conclusion=Conclusion.CANCELLED)
    assert _sweep([cancelled], cancelled_is_failure=False) == []
    assert [i.run_id for i in _sweep([cancelled], cancelled_is_failure=True)] == [7]


def test_a_session_opens_with_every_failed_workflow_of_its_push():
    lint, tests, docs = _run(7, A, "lint"), _run(8, A, "tests"), _run(9, A, "docs")
    docs.conclusion = Conclusion.SUCCESS
    cancelled = _run(10, A, "deploy", Conclusion.CANCELLED)
    running = _in_progress(11, A, "e2e")
    later = _run(12, B, "tests")
    provider = FakeProvider([lint, tests, docs, cancelled, running, later])
    config = load_config()
    others = failed_runs_of_push(provider, lint, config)
    assert [r.id for r in others] == ([8, 10] if config.cancelled_is_failure else [8])
    strict = load_config({"cancelled_is_failure": False})
    assert [r.id for r in failed_runs_of_push(provider, lint, strict)] == [8]
    lenient = load_config({"cancelled_is_failure": True})
    assert [r.id for r in failed_runs_of_push(provider, lint, lenient)] == [8, 10]
    state = session.new_session("local", lint, config, builders.NOW)
    for run in failed_runs_of_push(provider, lint, lenient):
        session.join_run(state, run)
    assert session.session_runs(state) == [7, 8, 10]
