"""What the monitor decides once CI has spoken on an attempt: close the session, escalate to
the next strategy after the escalation delay, or re-run CI again for a flaky test (pure).

The session's ``persistence_mode`` bounds the escalation: ``oneshot`` closes after the first
verdict, ``continuous`` escalates until green or the last attempt, ``adaptive`` hands over to
a person once an attempt fails CI as the one before it did (no progress)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import (
    Conclusion,
    DecisionAction,
    FailureCategory,
    Outcome,
    PersistenceMode,
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


def persistence_mode(state: SessionState) -> PersistenceMode:
    """The session's mode, fixed when it opened (a later change of the deployment's
    configuration does not change how a running session ends)."""
    try:
        return PersistenceMode(state.persistence_mode)
    except ValueError:
        return PersistenceMode.CONTINUOUS


def close_unwatched(
    state: SessionState, attempt: int, config: OrchestratorConfig, now: str
) -> Decision | None:
    """With ``monitor_until_green`` false, the session ends once the attempt published its
    repair (CI is not watched); None when CI is to be watched (the setting is true, or the
    attempt published nothing, whose verdict on the failing head is immediate)."""
    record = require_attempt(state, attempt)
    published = record.published or Published()
    if config.monitor_until_green or published.kind is RepairKind.NONE:
        return None
    reason = "monitor_until_green is false: the session ends with the published repair"
    outcome = Outcome.ESCALATED if published.kind is RepairKind.ISSUE else Outcome.PUBLISHED
    decision = Decision(DecisionAction.CLOSE, outcome, reasons=[reason])
    apply_decision(state, decision, now)
    return decision


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
    stop = _why_stop(state, attempt, published, config)
    if stop:
        outcome = Outcome.ESCALATED if issue_opened(state) else Outcome.FAILED
        return Decision(DecisionAction.CLOSE, outcome, reasons=[*reasons, stop])
    next_attempt = attempt + 1
    strategy: Strategy | None = _handover(state, attempt, reasons) or config.strategy_for_attempt(
        next_attempt if config.strategy_escalation else 1
    )
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


def _why_stop(
    state: SessionState, attempt: int, published: Published, config: OrchestratorConfig
) -> str | None:
    """Why the session ends after this red verdict (None: it goes on)."""
    mode = persistence_mode(state)
    if mode is PersistenceMode.ONESHOT:
        return "persistence_mode is oneshot: one attempt"
    if published.kind is RepairKind.ISSUE:
        why = _no_rollback_reason(state, config)
        if why:
            return f"escalated: {why}"
    if attempt >= state.max_attempts:
        return "no attempts left"
    if mode is PersistenceMode.ADAPTIVE and issue_opened(state):
        why = no_progress(state, attempt)
        if why:
            return f"escalated: {why}"
    return None


def _handover(state: SessionState, attempt: int, reasons: list[str]) -> Strategy | None:
    """Manual intervention next, when only a person can fix the cause or (adaptive) the
    attempts stopped making progress, and the escalation issue is not open yet."""
    if issue_opened(state):
        return None
    if needs_person(state):
        reasons.append("only a person can fix the cause: going straight to manual intervention")
        return Strategy.MANUAL_INTERVENTION
    why = no_progress(state, attempt)
    if persistence_mode(state) is PersistenceMode.ADAPTIVE and why:
        reasons.append(f"{why}: handing over to a person (persistence_mode is adaptive)")
        return Strategy.MANUAL_INTERVENTION
    return None


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


def no_progress(state: SessionState, attempt: int) -> str | None:
    """Why attempt ``attempt`` made no progress over the one before it (None: it did, or it
    is the first): CI failed on it in the same jobs as on the attempt before (two attempts
    that published nothing fail the same way too)."""
    record, before = state.attempt_record(attempt), state.attempt_record(attempt - 1)
    if record is None or before is None or before.ci_conclusion is not Conclusion.FAILURE:
        return None
    if set(record.ci_failure_signatures) != set(before.ci_failure_signatures):
        return None
    failed = ", ".join(sorted(record.ci_failure_signatures)) or "the failing head"
    return f"attempt {attempt} failed as attempt {attempt - 1} did ({failed}): no progress"


def _several_changes(state: SessionState) -> bool:
    return any(
        sum(1 for r in rec.repairs if r.kind is RepairKind.CHANGE) > 1
        for rec in state.attempt_history
    )


def _rolled_back(state: SessionState) -> bool:
    return any(r.published and r.published.kind is RepairKind.REVERT for r in state.attempt_history)


def _rewatch(state: SessionState, published: Published, config: OrchestratorConfig) -> bool:
    """An attempt whose repair is a CI re-run of a flaky test escalates after
    ``failure_threshold`` red verdicts in a row; before that, each red verdict re-runs the
    failed jobs again (``max_ci_reruns`` bounds the session's re-runs). Each re-run of the
    attempt had one verdict, all red but this one's: ``reruns`` counts them. A oneshot
    session takes one verdict; a transient infrastructure failure was re-run by its fixer
    already (repair/rerun.py) and escalates at once."""
    roots = [f for f in state.failures if f.root_cause] or state.failures
    return (
        published.kind is RepairKind.RERUN
        and bool(roots)
        and all(f.category is FailureCategory.FLAKY for f in roots)
        and persistence_mode(state) is not PersistenceMode.ONESHOT
        and published.reruns < config.failure_threshold
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
