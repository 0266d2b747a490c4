"""One whole attempt of a session through the domain's stages, without Airflow: what the
attempt DAG's tasks do, in their order, on any provider (tests of the providers use it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import RepairKind
from cicd_orchestrator.models import CIState, FixerResult, Published, SessionState
from cicd_orchestrator.publish.attempt import publish_attempt
from cicd_orchestrator.stages import classification, discovery, fixing, monitoring
from cicd_orchestrator.validation import replay


@dataclass
class AttemptRun:
    """What a whole attempt did: the fixers' results, what it kept, what it published (twice,
    as a retried task would)."""

    results: list[FixerResult]
    kept: fixing.FixingOutcome
    first: Published
    again: Published


def whole_attempt(attempt: Attempt, group: str = "quality") -> AttemptRun:
    """Discovery, classification, the fixers of ``group``, validation and publishing, each
    folded into the session as the gates fold it."""
    state, n = attempt.state, attempt.number
    session.fold_discovery(
        state, n, 0.0, discovery.detect_failures(attempt, {}), discovery.analyse_context(attempt)
    )
    session.fold_classification(
        state,
        n,
        0.0,
        classification.classify_failures(attempt, {}),
        classification.map_dependencies(attempt),
    )
    results = fixing.fix_group(attempt, group)
    kept = fixing.merge_repairs(attempt, results)
    session.fold_fixing(state, n, 0.0, kept.repairs, results, kept.notes)
    session.fold_validation(
        state,
        n,
        0.0,
        replay.validate_fixes(attempt, kept.repairs),
        replay.regression_run(attempt, kept.repairs),
    )
    first = publish_attempt(attempt)
    again = publish_attempt(attempt)
    session.fold_publish(state, n, 0.0, first, state.start_time or "")
    return AttemptRun(results, kept, first, again)


def wait_ci(attempt: Attempt, published: Published, timeout: float = 120) -> CIState:
    """CI's state of ``published`` once it is finished (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        ci = monitoring.ci_state(attempt.provider, attempt.repository, attempt.head_sha, published)
        if ci.done:
            return ci
        assert time.monotonic() < deadline, ci.detail
        time.sleep(0.3)


def check_lint_fix_published(
    state: SessionState, done: AttemptRun, local: LocalProvider, repo: str, head_sha: str
) -> None:
    """What a whole attempt on a world's lint failure does, through any hosting: finds the
    lint job (quality) with the head as culprit, repairs it with ruff, validates the repair,
    and publishes it twice (a retried task) as one branch, one pull request, one comment,
    the default branch untouched (``local`` is the hosting's backing repository)."""
    # discovery and classification
    assert [f.job for f in state.failures] == ["lint"]
    assert state.failures[0].category.value == "quality"
    assert state.context is not None and state.context.culprit_sha == head_sha

    # fixing and validation
    assert [r.fixer for r in done.kept.repairs] == ["ruff-fix"] and not done.kept.notes
    record = state.attempt_record(1)
    assert record is not None and record.validation is not None
    assert record.validation.reproduced and record.validation.passed
    assert record.validation.regression_passed

    # publishing, twice (a retried task): one branch, one pull request, one comment
    first, again = done.first, done.again
    assert first.kind is RepairKind.CHANGE and first.sha == again.sha
    assert first.pull_request and again.pull_request
    assert first.pull_request.number == again.pull_request.number
    assert len(local.list_pull_requests(repo)) == 1
    assert len(local.list_comments(repo, first.pull_request.number)) == 1
    assert local.branch_sha(repo, "main") == head_sha
    assert local.branch_sha(repo, first.branch or "") == first.sha
