"""Running a workflow's jobs for validation, regression runs and bisection."""

from __future__ import annotations

from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.validation.jobs import JobTarget, all_passed, make_runner, run_jobs

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
