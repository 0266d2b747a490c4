from __future__ import annotations

from cicd_orchestrator.analysis.bisect import bisect
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


def test_bisect_names_the_first_failing_commit(repo):
    good = repo.commit({".github/workflows/ci.yml": WORKFLOW, "value.py": "V = 0\n"}, "v0")
    shas = [repo.commit({"value.py": f"V = {n}\n"}, f"v{n}") for n in range(1, 7)]
    target = [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))]
    result = bisect(make_runner(load_config()), repo.path, good, shas[-1], target, "acme/x")
    assert result.culprit_sha == shas[2]  # V = 3 is the first failing value
    assert 1 <= len(result.tested) <= 3


def test_single_commit_needs_no_run(repo):
    good = repo.commit({".github/workflows/ci.yml": WORKFLOW, "value.py": "V = 0\n"}, "v0")
    bad = repo.commit({"value.py": "V = 9\n"}, "v9")
    target = [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))]
    result = bisect(make_runner(load_config()), repo.path, good, bad, target, "acme/x")
    assert result.culprit_sha == bad and not result.tested


def test_run_jobs_reports_each_job_and_only_the_named_ones(repo):
    sha = repo.commit({".github/workflows/ci.yml": WORKFLOW, "value.py": "V = 5\n"}, "v5")
    runner = make_runner(load_config())
    target = [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))]
    results = run_jobs(runner, repo.path, sha, target, repository="acme/x")
    assert [r.job for r in results] == ["test"]
    assert results[0].conclusion is Conclusion.FAILURE
    assert "AssertionError" in results[0].log_tail
    assert not all_passed(results)
    other = run_jobs(
        runner,
        repo.path,
        sha,
        [JobTarget(".github/workflows/ci.yml", frozenset({"other"}))],
        repository="acme/x",
    )
    assert all_passed(other)


def test_invalid_workflow_is_a_clear_failure(repo):
    sha = repo.commit({".github/workflows/ci.yml": "jobs: [oops\n"}, "broken")
    results = run_jobs(
        make_runner(load_config()),
        repo.path,
        sha,
        [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))],
        repository="acme/x",
    )
    assert results[0].conclusion is Conclusion.FAILURE
    assert "ci.yml" in results[0].log_tail
