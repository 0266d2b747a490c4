"""One whole attempt of a session through the domain's stages, without Airflow: what the
attempt DAG's tasks do, in their order, on any provider (tests of the providers use it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.models import CIState, FixerResult, Published
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
