"""An attempt on a push with several failed workflows: every failed run and the last green
run of each workflow, each fetched once; the jobs to replay in the workflow that failed them."""

from __future__ import annotations

import dataclasses

from cicd_devkit import builders

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion, RunStatus, Strategy
from cicd_orchestrator.models import Job, Run


def _run(run_id: int, workflow: str, sha: str, conclusion: Conclusion, jobs: list[str]) -> Run:
    run = dataclasses.replace(
        builders.failed_run(run_id),
        workflow=workflow,
        workflow_path=f".github/workflows/{workflow}.yml",
        head_sha=sha,
        conclusion=conclusion,
    )
    run.jobs = [
        Job(run_id * 10 + i, run_id, name, RunStatus.COMPLETED, conclusion)
        for i, name in enumerate(jobs)
    ]
    return run


RUNS = {
    5: _run(5, "lint", "0" * 40, Conclusion.SUCCESS, ["lint"]),
    6: _run(6, "tests", "0" * 40, Conclusion.SUCCESS, ["unit", "e2e"]),
    7: _run(7, "lint", "a" * 40, Conclusion.FAILURE, ["lint"]),
    8: _run(8, "tests", "a" * 40, Conclusion.FAILURE, ["unit", "e2e"]),
}


class Provider:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        self.asked.append(f"get_run {run_id}")
        return RUNS[run_id]

    def list_runs(self, repo, branch=None, head_sha=None):
        self.asked.append("list_runs")
        return sorted(RUNS.values(), key=lambda r: r.id, reverse=True)


def _attempt(provider: Provider) -> Attempt:
    state = session.new_session("local", RUNS[7], load_config(), builders.NOW)
    session.join_run(state, RUNS[8])
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, builders.NOW)
    return Attempt(state, 1, load_config(), provider)  # type: ignore[arg-type]


def test_every_failed_run_and_its_last_green_run_are_fetched_once():
    provider = Provider()
    attempt = _attempt(provider)
    assert [r.id for r in attempt.failed_runs] == [7, 8]
    greens = [attempt.last_green_of(r) for r in attempt.failed_runs]
    assert [g.id if g else None for g in greens] == [5, 6]
    assert attempt.last_green_run is greens[0]
    attempt.last_green_of(RUNS[8])
    assert sorted(provider.asked) == sorted(
        ["get_run 7", "get_run 8", "list_runs", "get_run 5", "get_run 6"]
    )


def test_the_jobs_to_replay_are_in_the_workflow_that_failed_them():
    attempt = _attempt(Provider())
    assert attempt.jobs_by_workflow({"lint", "unit", "nowhere"}) == {
        ".github/workflows/lint.yml": {"lint", "nowhere"},
        ".github/workflows/tests.yml": {"unit"},
    }
