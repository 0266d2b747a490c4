"""Bisection between the last green commit and the failing one with the local job runner."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.git import git
from cicd_orchestrator.validation.jobs import JobTarget, all_passed, run_jobs

log = logging.getLogger(__name__)


@dataclass
class BisectResult:
    culprit_sha: str | None
    tested: dict[str, bool] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    reason: str = ""


def commits_between(git_dir: str | os.PathLike[str], good: str, bad: str) -> list[str]:
    """First-parent commits after ``good`` up to ``bad``, oldest first."""
    out = git(["rev-list", "--first-parent", "--reverse", f"{good}..{bad}"], cwd=git_dir)
    return [line for line in out.split() if line]


def bisect(
    runner: JobRunner,
    git_dir: str | os.PathLike[str],
    good: str,
    bad: str,
    targets: Iterable[JobTarget],
    repository: str,
) -> BisectResult:
    """Find the first commit between good and bad where the target jobs fail."""
    targets = list(targets)
    commits = commits_between(git_dir, good, bad)
    result = BisectResult(culprit_sha=None)
    if not commits:
        result.reason = f"{bad[:12]} is not a descendant of {good[:12]}"
        return result
    if len(commits) == 1:
        result.culprit_sha = commits[0]
        result.reason = "the only commit since the last green run"
        return result
    lo, hi = -1, len(commits) - 1  # commits[lo] passes (lo=-1 is good), commits[hi] fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        sha = commits[mid]
        passed = all_passed(run_jobs(runner, git_dir, sha, targets, repository=repository))
        result.tested[sha] = passed
        result.log.append(f"{sha[:12]}: {'pass' if passed else 'fail'}")
        log.info("bisect %s: %s", sha[:12], "pass" if passed else "fail")
        if passed:
            lo = mid
        else:
            hi = mid
    result.culprit_sha = commits[hi]
    result.reason = (
        f"bisect over {len(commits)} commits ({len(result.tested)} tested): first failing commit"
    )
    return result
