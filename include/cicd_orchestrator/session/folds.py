"""What each TaskGroup's gate folds into the session: the results of its parallel tasks
(pure functions; the Airflow gate tasks only load, call one of these and save)."""

from __future__ import annotations

from cicd_orchestrator.config import CiVerifiedPolicy
from cicd_orchestrator.constants import Conclusion, FailureCategory, RepairKind
from cicd_orchestrator.models import (
    Context,
    Culprit,
    DependencyMap,
    Failure,
    FixerResult,
    JobResult,
    Published,
    Repair,
    SessionState,
    ValidationResult,
)
from cicd_orchestrator.session.state import record_published, record_stage, require_attempt


def fold_discovery(
    state: SessionState,
    attempt: int,
    seconds: float,
    failures: list[Failure],
    context: Context | None = None,
    culprit: Culprit | None = None,
    environment: list[str] | None = None,
) -> None:
    """The failures found, the context (keeping a culprit an earlier attempt named), the
    bisection's culprit, the environment differences."""
    state.failures = failures
    if context is not None:
        old = state.context
        if old and old.culprit_sha and not context.culprit_sha:
            context.culprit_sha, context.culprit_reason = old.culprit_sha, old.culprit_reason
        state.context = context
    if culprit is not None and culprit.sha and state.context is not None:
        state.context.culprit_sha = culprit.sha
        state.context.culprit_reason = culprit.reason
        state.context.bisect_log = list(culprit.log)
    if environment and state.context is not None:
        state.context.notes.extend(n for n in environment if n not in state.context.notes)
    record_stage(state, attempt, "discovery", seconds)


def fold_classification(
    state: SessionState,
    attempt: int,
    seconds: float,
    failures: list[Failure] | None = None,
    mapping: DependencyMap | None = None,
) -> list[str]:
    """The final categories and the dependency mapping (symptoms marked); returns the
    categories of the attempt."""
    if failures is not None:
        state.failures = failures
    if mapping is not None:
        state.dependency_map = mapping
        for failure in state.failures:
            if failure.job in mapping.symptoms:
                failure.root_cause = False
                failure.symptom_of = mapping.symptoms[failure.job]
    record = require_attempt(state, attempt)
    record.categories = sorted({f.category.value for f in state.failures})
    record_stage(state, attempt, "classification", seconds)
    return record.categories


def apply_repair_findings(failures: list[Failure], repairs: list[Repair]) -> None:
    """What fixing established about the failures (a test confirmed flaky) goes back to them."""
    for repair in repairs:
        if repair.category is not FailureCategory.FLAKY:
            continue
        for failure in failures:
            if failure.job in repair.jobs and failure.category is not FailureCategory.FLAKY:
                failure.category = FailureCategory.FLAKY
                failure.notes.extend(n for n in repair.evidence[-1:] if n not in failure.notes)


def fold_fixing(
    state: SessionState,
    attempt: int,
    seconds: float,
    repairs: list[Repair],
    results: list[FixerResult],
    notes: list[str],
) -> None:
    """The repairs kept, what the fixers could not repair, and why nothing applies when
    nothing does."""
    record = require_attempt(state, attempt)
    record.repairs = repairs
    record.unrepaired = [u for r in results for u in r.unrepaired] + notes
    apply_repair_findings(state.failures, repairs)
    if not repairs:
        roots = ", ".join(f"{f.job} ({f.category.value})" for f in state.failures if f.root_cause)
        record.unrepaired.append("no repair applies to " + roots)
    record_stage(state, attempt, "fixing", seconds)


def fold_issue_handover(
    state: SessionState, attempt: int, seconds: float, issue: Repair | None, notes: list[str]
) -> None:
    """The manual-intervention strategy: the issue as the repair, the context package."""
    record = require_attempt(state, attempt)
    record.repairs = [issue] if issue else []
    record.notes.extend(notes)
    record_stage(state, attempt, "fixing", seconds)


def fold_rollback_handover(
    state: SessionState,
    attempt: int,
    seconds: float,
    results: list[FixerResult],
    plan: dict[str, object] | None,
) -> None:
    """The rollback strategy: the revert as the repair, the plan of the state to return to."""
    record = require_attempt(state, attempt)
    record.repairs = [r for res in results for r in res.repairs]
    record.unrepaired = [u for res in results for u in res.unrepaired]
    if plan:
        state.extra["rollback_plan"] = plan
    record_stage(state, attempt, "fixing", seconds)


_PASSING = frozenset({Conclusion.SUCCESS, Conclusion.SKIPPED, Conclusion.NEUTRAL})


def _failed_here(result: JobResult) -> bool:
    """A job that failed here, or could not run here (it passed nothing)."""
    return bool(result.not_replayable) or result.conclusion not in _PASSING


def settle_ci_verification(result: ValidationResult, policy: CiVerifiedPolicy) -> None:
    """Whether the real CI verifies the repair (``ci_verified``), by ``policy``: when every
    job that did not pass here is one this machine cannot replay, and no job that could be
    replayed failed (``always``: whenever nothing replayable failed; ``never``: not at all).
    ``not_replayable`` lists the jobs that could not be replayed, with why."""
    ran = [*result.failing_before, *result.after, *result.regression]
    result.not_replayable = sorted(
        {f"{r.job}: {r.not_replayable}" for r in ran if r.not_replayable}
    )
    failing = [r for r in [*result.after, *result.regression] if _failed_here(r)]
    if policy is CiVerifiedPolicy.NEVER or not result.after:
        result.ci_verified = False
    elif any(not r.not_replayable for r in failing):
        result.ci_verified = False  # a job that ran here failed: the repair is wrong
    elif policy is CiVerifiedPolicy.ALWAYS:
        result.ci_verified = True
    else:
        result.ci_verified = bool(failing)


def fold_validation(
    state: SessionState,
    attempt: int,
    seconds: float,
    validation: ValidationResult | None,
    regression: ValidationResult | None,
    policy: CiVerifiedPolicy = CiVerifiedPolicy.WHEN_NOT_REPLAYABLE,
) -> bool:
    """The validation of the attempt's repairs, with the repairs its later rounds added and
    whether the real CI verifies them (``policy``); returns whether it passed here."""
    result = validation or ValidationResult(notes=["validation did not run (see its task log)"])
    if regression is not None and not result.round_repairs:
        # with repairs of later rounds, validation ran the regression with every round's
        result.regression = regression.regression
        result.regression_passed = regression.regression_passed
        result.notes.extend(regression.notes)
    record = require_attempt(state, attempt)
    record.validation = result
    record.rounds = list(result.rounds)
    record.repairs.extend(r for r in result.round_repairs if r not in record.repairs)
    settle_ci_verification(result, policy)
    for repair in record.repairs:
        if repair.kind is RepairKind.ISSUE:
            repair.validated = True
        elif repair.validated is None and (result.ok or not result.ci_verified):
            repair.validated = result.ok
    record_stage(state, attempt, "validation", seconds)
    return result.ok


def fold_publish(
    state: SessionState, attempt: int, seconds: float, published: Published, now: str
) -> None:
    """What the attempt published; the session waits for CI on it."""
    record_published(state, attempt, published, now)
    record_stage(state, attempt, "publish", seconds)
