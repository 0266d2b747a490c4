"""Bisection between the last green commit and the failing one."""

from __future__ import annotations

from cicd_orchestrator.config import load_config
from cicd_orchestrator.validation.bisect import bisect
from cicd_orchestrator.validation.jobs import JobTarget, make_runner

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


def test_bisect_names_the_first_failing_commit(git_repo):
    good = git_repo.commit({".github/workflows/ci.yml": WORKFLOW, "value.py": "V = 0\n"}, "v0")
    shas = [git_repo.commit({"value.py": f"V = {n}\n"}, f"v{n}") for n in range(1, 7)]
    target = [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))]
    result = bisect(make_runner(load_config()), git_repo.path, good, shas[-1], target, "acme/x")
    assert result.culprit_sha == shas[2]  # V = 3 is the first failing value
    assert 1 <= len(result.tested) <= 3


def test_single_commit_needs_no_run(git_repo):
    good = git_repo.commit({".github/workflows/ci.yml": WORKFLOW, "value.py": "V = 0\n"}, "v0")
    bad = git_repo.commit({"value.py": "V = 9\n"}, "v9")
    target = [JobTarget(".github/workflows/ci.yml", frozenset({"test"}))]
    result = bisect(make_runner(load_config()), git_repo.path, good, bad, target, "acme/x")
    assert result.culprit_sha == bad and not result.tested
