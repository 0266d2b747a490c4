"""What the monitor decides once CI has spoken on an attempt: close the session, escalate to
the next strategy after the escalation delay, or re-run CI again for a flaky test (pure)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import (
    DecisionAction,
    FailureCategory,
    Outcome,
    RepairKind,
    RollbackPolicy,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import CIState, Published, SessionState
from cicd_orchestrator.session.state import (
    close,
    close_not_found,
    learn,
    primary_category,
    record_ci_result,
    require_attempt,
    session_reruns,
)


@dataclass
class Decision:
    """What the monitor does after the CI result of an attempt."""

    action: DecisionAction
    outcome: Outcome = Outcome.PENDING
    next_attempt: int | None = None
    next_strategy: Strategy | None = None
    delay_seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)
    retry_at: str | None = None  # when the next attempt or re-run starts (ISO, UTC)


_GREEN_OUTCOME = {
    RepairKind.CHANGE: Outcome.FIXED,
    RepairKind.RERUN: Outcome.RERUN_GREEN,
    RepairKind.REVERT: Outcome.ROLLED_BACK,
}


def needs_person(state: SessionState) -> bool:
    """True when every root failure is one only a person can fix (a secret, a permission)."""
    roots = [f for f in state.failures if f.root_cause] or state.failures
    return bool(roots) and all(f.recipe and f.recipe.startswith("escalate") for f in roots)


def issue_opened(state: SessionState) -> bool:
    return any(r.published and r.published.issue for r in state.attempt_history)


def decide(
    state: SessionState, attempt: int, ci_green: bool, config: OrchestratorConfig
) -> Decision:
    """Green closes the session; red escalates to the next attempt or closes it."""
    record = require_attempt(state, attempt)
    published = record.published or Published()
    if ci_green:
        if published.kind in _GREEN_OUTCOME:
            return Decision(
                DecisionAction.CLOSE, _GREEN_OUTCOME[published.kind], reasons=["CI is green"]
            )
        return Decision(
            DecisionAction.CLOSE,
            Outcome.ALREADY_GREEN,
            reasons=["CI turned green without a repair"],
        )
    if _rewatch(state, published, config):
        return Decision(
            DecisionAction.REWATCH,
            next_attempt=attempt,
            next_strategy=record.strategy,
            delay_seconds=config.delay_after_attempt(published.reruns),
            reasons=[
                f"a flaky test failed again: CI re-run {published.reruns + 1} of this attempt"
            ],
        )
    return _after_red(state, attempt, published, config)


def _after_red(
    state: SessionState, attempt: int, published: Published, config: OrchestratorConfig
) -> Decision:
    record = require_attempt(state, attempt)
    reasons = [f"attempt {attempt} ({record.strategy.value}) did not turn CI green"]
    if published.kind is RepairKind.ISSUE:
        why = _no_rollback_reason(state, config)
        if why:
            return Decision(
                DecisionAction.CLOSE, Outcome.ESCALATED, reasons=[*reasons, f"escalated: {why}"]
            )
    if attempt >= state.max_attempts:
        outcome = Outcome.ESCALATED if issue_opened(state) else Outcome.FAILED
        return Decision(DecisionAction.CLOSE, outcome, reasons=[*reasons, "no attempts left"])
    next_attempt = attempt + 1
    strategy: Strategy | None = config.strategy_for_attempt(
        next_attempt if config.strategy_escalation else 1
    )
    if needs_person(state) and not issue_opened(state):
        strategy = Strategy.MANUAL_INTERVENTION
        reasons.append("only a person can fix the cause: going straight to manual intervention")
    if config.strategy_escalation:
        strategy = _something_new(state, strategy, reasons)
    if strategy is Strategy.EMERGENCY_ROLLBACK and not issue_opened(state):
        strategy = Strategy.MANUAL_INTERVENTION
        reasons.append("a rollback is preceded by the escalation issue")
    if strategy is None:
        outcome = Outcome.ESCALATED if issue_opened(state) else Outcome.FAILED
        return Decision(DecisionAction.CLOSE, outcome, reasons=reasons)
    return Decision(
        DecisionAction.ESCALATE,
        next_attempt=next_attempt,
        next_strategy=strategy,
        delay_seconds=config.delay_after_attempt(attempt),
        reasons=reasons,
    )


#: the strategy after each, for one that would only repeat what earlier attempts did
_AFTER = {
    Strategy.STANDARD_PARALLEL_FIXING: Strategy.EXTENDED_ANALYSIS,
    Strategy.EXTENDED_ANALYSIS: Strategy.SEQUENTIAL_FIXING,
    Strategy.SEQUENTIAL_FIXING: Strategy.MANUAL_INTERVENTION,
    Strategy.MANUAL_INTERVENTION: Strategy.EMERGENCY_ROLLBACK,
}


_FIXING = (
    Strategy.STANDARD_PARALLEL_FIXING,
    Strategy.EXTENDED_ANALYSIS,
    Strategy.SEQUENTIAL_FIXING,
)


def _something_new(
    state: SessionState, strategy: Strategy | None, reasons: list[str]
) -> Strategy | None:
    """The first strategy from ``strategy`` on that adds something to what the earlier
    attempts did (each skipped one is a reason), or None when none is left."""
    while strategy is not None:
        why = repeats(state, strategy)
        if why is None:
            return strategy
        following = _AFTER.get(strategy)
        reasons.append(
            f"{strategy.value} skipped: {why}"
            + (f"; going on with {following.value}" if following else "; nothing is left to try")
        )
        strategy = following
    return None


def repeats(state: SessionState, strategy: Strategy) -> str | None:
    """Why ``strategy`` would only repeat what the session's attempts did (None: it adds
    something). Each strategy adds one thing (``strategies.yaml``: ``adds``): extended
    analysis new evidence (a bisect, the environment, the LLM fixer), sequential fixing the
    validation of each change alone, which is new only when an attempt proposed several
    changes; the issue and the rollback are done once."""
    tried = [r.attempt for r in state.attempt_history if r.strategy is strategy]
    if tried and strategy in _FIXING:
        return f"it ran in attempt {tried[0]} on the same failure"
    if strategy is Strategy.SEQUENTIAL_FIXING and not _several_changes(state):
        return (
            "no attempt proposed more than one change, so validating each change alone "
            "would repeat the earlier attempts' fixers on the same evidence"
        )
    if strategy is Strategy.MANUAL_INTERVENTION and issue_opened(state):
        return "the escalation issue is open already"
    if strategy is Strategy.EMERGENCY_ROLLBACK and _rolled_back(state):
        return "the culprit's revert was published already"
    return None


def _several_changes(state: SessionState) -> bool:
    return any(
        sum(1 for r in rec.repairs if r.kind is RepairKind.CHANGE) > 1
        for rec in state.attempt_history
    )


def _rolled_back(state: SessionState) -> bool:
    return any(r.published and r.published.kind is RepairKind.REVERT for r in state.attempt_history)


def _rewatch(state: SessionState, published: Published, config: OrchestratorConfig) -> bool:
    """A flaky failure gets more CI re-runs within the attempt, up to the configured limits."""
    roots = [f for f in state.failures if f.root_cause] or state.failures
    return (
        published.kind is RepairKind.RERUN
        and bool(roots)
        and all(f.category is FailureCategory.FLAKY for f in roots)
        and published.reruns < config.flaky_reruns_per_attempt
        and session_reruns(state) < config.max_ci_reruns
    )


def _no_rollback_reason(state: SessionState, config: OrchestratorConfig) -> str | None:
    """Why the session ends with the escalation issue instead of a rollback, if it does."""
    if needs_person(state):
        return "only a person can fix the cause"
    if primary_category(state) is FailureCategory.FLAKY:
        return "a flaky test is quarantined or fixed by a person; reverting would not help"
    if not (state.context and state.context.culprit_sha):
        return "no culprit commit to roll back"
    if config.rollback_policy is RollbackPolicy.PLAN:
        return "rollbacks are prepared as a plan only (rollback_policy=plan)"
    return None


def apply_decision(state: SessionState, decision: Decision, now: str) -> None:
    """The session after the decision: closed, waiting to escalate, or watching CI again."""
    if decision.action is DecisionAction.CLOSE:
        close(state, decision.outcome, now, decision.reasons)
        return
    record = state.attempt_record(state.current_attempt)
    if record is not None:
        record.notes.extend(decision.reasons)
    if decision.action is DecisionAction.REWATCH:
        state.status = SessionStatus.WAITING_FOR_CI
    else:
        state.status = SessionStatus.WAITING_TO_ESCALATE
        state.next_retry_time = decision.retry_at


def conclude(
    state: SessionState,
    attempt: int,
    ci: CIState,
    config: OrchestratorConfig,
    now: datetime.datetime,
) -> Decision:
    """Fold CI's verdict on the attempt into the session: record it, learn from it, decide,
    and apply the decision. A repository or run that is gone closes the session."""
    stamp = now.isoformat(timespec="seconds")
    if ci.gone:
        reason = ci.detail or f"{state.repository} is not found any more"
        close_not_found(state, reason, stamp)
        return Decision(DecisionAction.CLOSE, state.outcome, reasons=[reason])
    record_ci_result(state, attempt, ci.green, ci.signatures, stamp)
    record = require_attempt(state, attempt)
    if ci.detail:
        record.notes.append(ci.detail)
    learn(state, state.failures, attempt_fixers(state, attempt), ci.green)
    decision = decide(state, attempt, ci.green, config)
    if decision.action is not DecisionAction.CLOSE:
        decision.retry_at = (now + datetime.timedelta(seconds=decision.delay_seconds)).isoformat()
    apply_decision(state, decision, stamp)
    return decision


def attempt_fixers(state: SessionState, attempt: int) -> str | None:
    """The fixers whose repairs the attempt published, as learned patterns name them."""
    record = state.attempt_record(attempt)
    if record is None or not record.repairs:
        return None
    return ",".join(sorted({r.fixer for r in record.repairs}))
