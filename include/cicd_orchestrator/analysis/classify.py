"""Classify a failed job from its log analysis: category, confidence, signature, repair recipe.

The pattern library has already spoken in :func:`cicd_orchestrator.logs.analyze.analyze_log`;
the category comes from :mod:`cicd_orchestrator.logs.categorize` there (the same for the CLI,
the sessions and the reports: give the step and job names to the analysis); here the
repository's learned patterns are consulted first and the result becomes a
:class:`models.Failure`. Flaky is not a pattern's verdict but evidence's: :func:`mark_flaky`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.analysis.learning import lookup
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import LogAnalysis
from cicd_orchestrator.models import Failure

log = logging.getLogger(__name__)

MAX_EVIDENCE = 12


def _location(captures: Mapping[str, str]) -> str | None:
    file, line = captures.get("file"), captures.get("line")
    if file and line:
        return f"{file}:{line}"
    return None


def _apply_learned(failure: Failure, learned: Mapping[str, Any] | None) -> None:
    found = lookup(learned, failure.signature) if learned else None
    if found is None:
        return
    failure.category = found.category
    failure.pattern = found.pattern or failure.pattern
    if found.repair and found.worked is not False:
        failure.recipe = found.repair
    failure.confidence = max(failure.confidence, 0.95 if found.worked else 0.8)
    outcome = {True: "worked", False: "failed", None: "untried"}[found.worked]
    failure.notes.append(
        f"learned: seen {found.seen} time(s) as {found.category.value}; "
        f"repair {found.repair} {outcome}"
    )


def classify(
    job_name: str,
    step_name: str | None,
    analysis: LogAnalysis,
    learned: Mapping[str, Any] | None = None,
    *,
    job_id: int = 0,
    run_id: int = 0,
) -> Failure:
    """A :class:`Failure` for one failed job (learned patterns first, then the library)."""
    step = step_name or (analysis.failed_step.name if analysis.failed_step else None)
    captures = {str(k): str(v) for k, v in analysis.captures.items()}
    location = _location(captures)
    if location:
        captures.setdefault("location", location)
    failure = Failure(
        job=job_name,
        job_id=job_id,
        run_id=run_id,
        step=step,
        category=analysis.category,
        confidence=analysis.confidence,
        signature=analysis.signature,
        pattern=analysis.pattern,
        message=analysis.message,
        excerpts=list(analysis.excerpts),
        evidence=list(analysis.evidence)[:MAX_EVIDENCE],
        recipe=analysis.recipe,
        captures=captures,
        tests=list(analysis.tests),
    )
    failure.recipe = failure.recipe or "none"
    if analysis.reasons:
        failure.notes.append(f"category {failure.category.value}: " + "; ".join(analysis.reasons))
    _apply_learned(failure, learned)
    if analysis.needs_person:
        failure.notes.append("only a person can fix this (secret or permission)")
    if not failure.message:
        failure.message = failure.evidence[0] if failure.evidence else f"{job_name} failed"
    log.debug("classified %s: %s (%s)", job_name, failure.category.value, failure.pattern)
    return failure


@dataclass
class FlakyEvidence:
    """What decides that a failure is flaky.

    ``passed_same_commit``: the same job (or the failing tests) passed on the same commit in
    another run or attempt. ``failed_signatures_same_commit``: the signatures this job failed
    with on that commit (the same signature passing and failing is the strongest evidence).
    ``known_flaky_tests``: tests the repository already knows to be flaky.
    """

    passed_same_commit: bool = False
    failed_signatures_same_commit: Collection[str] = field(default_factory=frozenset)
    known_flaky_tests: Collection[str] = field(default_factory=frozenset)


def _known(test: str, known: Collection[str]) -> bool:
    return test in known or any(test.endswith(k) or k.endswith(test) for k in known if "::" in k)


def mark_flaky(failure: Failure, evidence: FlakyEvidence | str) -> Failure:
    """``failure`` re-categorised as flaky when the evidence says so (a new object).

    ``evidence`` is a :class:`FlakyEvidence`, or a sentence when the caller has already
    established the evidence (for example "job test passed on the same commit in attempt 2").
    """
    if isinstance(evidence, str):
        reasons = [evidence] if evidence.strip() else []
        known: list[str] = []
        strong = bool(reasons)
    else:
        known = [t for t in failure.tests if _known(t, evidence.known_flaky_tests)]
        same_sig = failure.signature in set(evidence.failed_signatures_same_commit)
        reasons = []
        if evidence.passed_same_commit:
            reasons.append(
                "the same signature failed and passed on the same commit"
                if same_sig
                else "the job passed on the same commit"
            )
        if known:
            reasons.append(f"known flaky test(s): {', '.join(known)}")
        strong = same_sig or bool(known)
    if not reasons:
        return failure
    return dataclasses.replace(
        failure,
        category=FailureCategory.FLAKY,
        confidence=0.9 if strong else 0.75,
        recipe="quarantine-test" if failure.tests else "rerun",
        notes=[*failure.notes, "flaky: " + "; ".join(reasons)],
        captures={**failure.captures, "flaky_tests": ",".join(known or failure.tests)},
    )
