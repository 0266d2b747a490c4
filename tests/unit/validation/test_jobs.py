"""Running a workflow's jobs for validation, regression runs and bisection."""

from __future__ import annotations

from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.models import JobResult, Run
from cicd_orchestrator.validation.jobs import (
    JobTarget,
    RunEvent,
    all_passed,
    make_runner,
    run_event,
    run_jobs,
)

WORKFLOW = """name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - name: check
        run: python -c "import value; assert value.V < 3, value.V"
  other:
    runs-on: ubuntu-latest
    steps:
      - run: echo fine
"""


def test_run_jobs_reports_each_job_and_only_the_named_ones(git_repo):
    sha = git_repo.commit({".github/workflows/ci.yml": WORKFLOW, "value.py": "V = 5\n"}, "v5")
    runner = make_runner(load_config())
    target = [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))]
    results = run_jobs(runner, git_repo.path, sha, target, repository="acme/x")
    assert [r.job for r in results] == ["test"]
    assert results[0].conclusion is Conclusion.FAILURE
    assert "AssertionError" in results[0].log_tail
    assert not all_passed(results)
    other = run_jobs(
        runner,
        git_repo.path,
        sha,
        [JobTarget(".github/workflows/ci.yml", frozenset({"other"}))],
        repository="acme/x",
    )
    assert all_passed(other)


def test_invalid_workflow_is_a_clear_failure(git_repo):
    sha = git_repo.commit({".github/workflows/ci.yml": "jobs: [oops\n"}, "broken")
    results = run_jobs(
        make_runner(load_config()),
        git_repo.path,
        sha,
        [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))],
        repository="acme/x",
    )
    assert results[0].conclusion is Conclusion.FAILURE
    assert "ci.yml" in results[0].log_tail


EVENT_WORKFLOW = """name: CI
on: [push, pull_request]
jobs:
  test:
    name: Tests on ${{ github.event_name }} of ${{ github.ref_name }}
    runs-on: ubuntu-latest
    steps:
      - run: |
          test -n "$GITHUB_TOKEN"
          echo "ref=$GITHUB_REF event=$GITHUB_EVENT_NAME pr=${{ github.event.number }}"
          echo "token=$GITHUB_TOKEN"
        env:
          GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
  deploy:
    if: github.ref == 'refs/heads/main'
    runs-on: ubuntu-latest
    steps:
      - run: echo deploying
"""


def _run(number: int | None, event: str, branch: str) -> Run:
    return Run(
        id=7,
        repository="acme/x",
        workflow="CI",
        workflow_path=".github/workflows/ci.yml",
        head_branch=branch,
        head_sha="a" * 40,
        event=event,
        status=RunStatus.COMPLETED,
        conclusion=Conclusion.FAILURE,
        run_number=3,
        pull_request_number=number,
    )


def test_a_replay_runs_as_the_failed_run_s_event_and_ref(git_repo):
    """Validation replays the jobs with the failed run's ref and event (a job condition on
    the ref sees what it saw in CI), finds a job by the name the provider reported (an
    expression of run contexts in it), and gives each job a masked GITHUB_TOKEN."""
    sha = git_repo.commit({".github/workflows/ci.yml": EVENT_WORKFLOW}, "events")
    runner = make_runner(load_config())
    target = JobTarget(".github/workflows/ci.yml", frozenset({"Tests on pull_request of 4/merge"}))
    pr = run_event(_run(4, "pull_request", "feature"))
    assert pr.ref == "refs/pull/4/merge" and pr.event == "pull_request"
    results = run_jobs(runner, git_repo.path, sha, [target], repository="acme/x", on=pr)
    assert [r.job for r in results] == ["Tests on pull_request of 4/merge"]
    assert all_passed(results), results[0].log_tail
    assert "ref=refs/pull/4/merge event=pull_request pr=4" in results[0].log_tail
    assert "token=***" in results[0].log_tail

    main = run_event(_run(None, "push", "main"))
    assert main == RunEvent("refs/heads/main", "push")
    deploy = [JobTarget(".github/workflows/ci.yml", frozenset({"deploy"}))]
    ran = run_jobs(runner, git_repo.path, sha, deploy, repository="acme/x", on=main)
    assert ran and ran[0].conclusion is Conclusion.SUCCESS and "deploying" in ran[0].log_tail
    on_feature = run_event(_run(None, "push", "feature"))
    skipped = run_jobs(runner, git_repo.path, sha, deploy, repository="acme/x", on=on_feature)
    assert [r.conclusion for r in skipped] in ([], [Conclusion.SKIPPED])
    assert not any("deploying" in r.log_tail for r in skipped)


def test_a_job_that_could_not_be_replayed_passes_nothing():
    ran = JobResult(job="a", conclusion=Conclusion.SUCCESS)
    neutral = JobResult(job="b", conclusion=Conclusion.NEUTRAL, not_replayable="needs docker")
    assert all_passed([ran])
    assert not all_passed([ran, neutral])
    assert not all_passed([])
