"""Task bodies of the monitor and sweep DAGs: what to watch, the decision once CI has spoken,
and the failed runs that need a session."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from cicd_orchestrator import session
from cicd_orchestrator.airflow import feedback, runtime, state_store
from cicd_orchestrator.airflow.handoff import NextStep, WatchTarget, from_xcom, xcom_of
from cicd_orchestrator.airflow.names import attempt_run_id, monitor_run_id
from cicd_orchestrator.analysis.learning import record as learn_record
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig, to_mapping
from cicd_orchestrator.constants import DecisionAction, Outcome, RepairKind, SessionStatus
from cicd_orchestrator.exceptions import CicdError, NotFoundError
from cicd_orchestrator.models import AttemptRecord, CIState, Published, SessionState
from cicd_orchestrator.publish.change import set_final_status, set_unwatched_status
from cicd_orchestrator.publish.markers import signing_key
from cicd_orchestrator.publish.rerun import rerun_again
from cicd_orchestrator.publish.superseded import close_fix_pull_requests
from cicd_orchestrator.publish.verified import act_on_verdict
from cicd_orchestrator.stages import monitoring
from cicd_orchestrator.stages.opening import failed_runs_of_push
from cicd_orchestrator.stages.sweep import sweep as find_new_failures
from cicd_orchestrator.strategies import MONITOR_DAG_ID, dag_id_for

log = logging.getLogger(__name__)

#: configuration keys that never travel in a hand-off (XCom, a trigger's arguments)
_PRIVATE_KEYS = frozenset({"local_ci_secrets", "marker_key"})


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _stamp() -> str:
    return _now().isoformat(timespec="seconds")


def _close_not_found(state: SessionState, error: NotFoundError) -> None:
    reason = session.not_found_reason(state.repository, str(error))
    session.close_not_found(state, reason, _stamp())
    state_store.save_session(state)
    log.warning("closed session %s: %s", state.session_id, error)


# --------------------------------------------------------------------------- what to watch
def load_target(**context: Any) -> dict[str, Any]:
    """What the monitor watches: the published fix, the re-run, or nothing (immediate red)."""
    params = context["params"]
    session_id, attempt = params.get("session_id"), int(params.get("attempt") or 0)
    if not session_id or attempt < 1:
        raise AirflowFailException("the monitor needs conf.session_id and conf.attempt")
    try:
        state = state_store.load_session(session_id)
    except KeyError as exc:
        raise AirflowFailException(f"unknown session {session_id!r}") from exc
    if state.status is SessionStatus.CLOSED:
        raise AirflowSkipException(f"session {session_id} is already closed")
    config = state_store.load_orchestrator_config(params.get("config") or {})
    record = state.attempt_record(attempt)
    if record is not None and session.close_unwatched(state, attempt, config, _stamp()):
        state_store.save_session(state)
        provider = runtime.provider_for(state.provider, config)
        set_unwatched_status(provider, state.repository, record)
        raise AirflowSkipException(f"session {session_id} closed: {state.outcome.value}")
    try:
        if _close_if_superseded(state, config) is not None:
            raise AirflowSkipException(f"session {session_id} closed: its failure is superseded")
        target = _watch_target(state, attempt, config, record, _wants_rerun(params))
    except NotFoundError as exc:
        _close_not_found(state, exc)
        raise AirflowSkipException(f"session {session_id} closed: {exc}") from exc
    return xcom_of(target)


def _wants_rerun(params: Any) -> bool:
    return params.get("rerun") in (True, "True", "true")


def _watch_target(
    state: SessionState,
    attempt: int,
    config: OrchestratorConfig,
    record: AttemptRecord | None,
    rerun: bool,
) -> WatchTarget:
    published = (record.published if record else None) or Published(
        notes=["the attempt published nothing"]
    )
    if rerun and record is not None:
        provider = runtime.provider_for(state.provider, config)
        published = record.published = rerun_again(provider, state, published)
        state.status = SessionStatus.WAITING_FOR_CI
        state_store.save_session(state)
    target = WatchTarget(
        session_id=state.session_id,
        attempt=attempt,
        provider=state.provider,
        config={k: v for k, v in to_mapping(config).items() if k not in _PRIVATE_KEYS},
        repository=state.repository,
        head_sha=state.head_sha,
        published=published,
        poll_interval=max(0.5, config.ci_poll_interval * config.delay_scale),
        timeout=config.ci_timeout,
        supersession=session.SupersessionCheck.of(state),
    )
    if published.kind in (RepairKind.NONE, RepairKind.ISSUE):
        provider = runtime.provider_for(state.provider, config)
        target.immediate = monitoring.ci_state(
            provider, state.repository, state.head_sha, published
        )
    return target


# --------------------------------------------------------------------------- the decision
def decide(target: Any, event: Any, **context: Any) -> dict[str, Any]:
    """Record the CI result, learn, and close the session or schedule what comes next."""
    watch = from_xcom(WatchTarget, target)
    if watch is None:
        raise AirflowSkipException("no session to decide on (see load_target)")
    state = state_store.load_session(watch.session_id)
    if state.status is SessionStatus.CLOSED:
        return xcom_of(NextStep(DecisionAction.CLOSE, state.outcome, [], state.session_id))
    config = state_store.load_orchestrator_config(context["params"].get("config") or {})
    ci = from_xcom(CIState, event) or _lost_watch(watch, config)
    if ci.superseded:
        # the watch ended early: CI has not judged the fix, nothing is learned from it
        reason = _close_if_superseded(state, config)
        if reason is not None:
            return xcom_of(
                NextStep(DecisionAction.CLOSE, Outcome.SUPERSEDED, [reason], state.session_id)
            )
        ci = _lost_watch(watch, config)
    decision = session.conclude(state, watch.attempt, ci, config, _now())
    if decision.action is not DecisionAction.CLOSE and not ci.gone:
        decision = _unless_superseded(state, config, decision)
    if not ci.gone:
        _learn(state, watch.attempt, ci.green)
        record = state.attempt_record(watch.attempt)
        if record is not None:
            provider = runtime.provider_for(state.provider, config)
            set_final_status(provider, state.repository, record)
            _follow_up(provider, state, record, ci, config)
        feedback.inform(state, config)
    state_store.save_session(state)
    return xcom_of(_next_step(state, watch.attempt, decision))


def _unless_superseded(
    state: SessionState, config: OrchestratorConfig, decision: session.Decision
) -> session.Decision:
    """``decision`` (the next attempt, a re-watch), unless the session's failure is
    superseded by now: then the session is closed as such. Before the next attempt, the
    failed runs of the other workflows of the push that are not in the session yet join
    it, so that the next attempt sees them."""
    reason = _close_if_superseded(state, config, save=False)
    if reason is not None:
        return session.Decision(DecisionAction.CLOSE, Outcome.SUPERSEDED, reasons=[reason])
    try:
        provider = runtime.provider_for(state.provider, config)
        run = provider.get_run(state.repository, state.pipeline_id)
        for other in failed_runs_of_push(provider, run, config):
            if session.join_run(state, other):
                log.info("run %s joins session %s", other.id, state.session_id)
    except CicdError as exc:  # best effort: the next attempt works on what it has
        log.warning("session %s: the push's failed runs not read: %s", state.session_id, exc)
    return decision


def _close_if_superseded(
    state: SessionState, config: OrchestratorConfig, save: bool = True
) -> str | None:
    """Close the session as superseded (its open fix pull requests closed with a comment)
    when a newer commit on its branch, or the failed runs green by themselves, made its
    failure moot; why, or None. A provider that cannot answer leaves the session as it is
    (its repository gone: NotFoundError, for the caller)."""
    provider = runtime.provider_for(state.provider, config)
    try:
        runs = provider.list_runs(state.repository, branch=state.branch)
    except NotFoundError:
        raise
    except CicdError as exc:
        log.warning("session %s: supersession not checked: %s", state.session_id, exc)
        return None
    reason = session.superseded_session(state, runs)
    if reason is None:
        return None
    key = signing_key(config.marker_key, runtime.deployment_secret())
    notes = close_fix_pull_requests(provider, state, reason, config.airflow_base_url, key)
    session.close_superseded_session(state, reason, _now().isoformat(timespec="seconds"))
    record = state.attempt_record(state.current_attempt)
    if record is not None:
        record.notes.extend(n for n in notes if n not in record.notes)
    if save:
        state_store.save_session(state)
    log.info("session %s superseded: %s", state.session_id, reason)
    return reason


def _follow_up(
    provider: CIProvider,
    state: SessionState,
    record: AttemptRecord,
    ci: CIState,
    config: OrchestratorConfig,
) -> None:
    """What CI's verdict does to the fix's pull request (a CI-verified draft made ready or
    closed, a branch without CI said so); what was done goes to the attempt's notes."""
    action = session.follow_up(record.published, ci)
    if action is None:
        return
    key = signing_key(config.marker_key, runtime.deployment_secret())
    where = (state.repository, state.session_id, config.airflow_base_url)
    notes = act_on_verdict(provider, record, action, ci, where, key)
    record.notes.extend(n for n in notes if n not in record.notes)


def _lost_watch(watch: WatchTarget, config: OrchestratorConfig) -> CIState:
    """The CI state asked directly, when the deferred watch was lost (it failed)."""
    provider = runtime.provider_for(watch.provider, config)
    return monitoring.lost_watch_state(provider, watch.repository, watch.head_sha, watch.published)


def _learn(state: SessionState, attempt: int, green: bool) -> None:
    """The repository's learned failure signatures (a Variable across sessions)."""
    repair = session.attempt_fixers(state, attempt)

    def add(store: dict[str, Any]) -> None:
        for failure in state.failures:
            learn_record(
                store,
                failure.signature,
                failure.category.value,
                failure.pattern,
                repair,
                green if repair else None,
            )

    state_store.update_learned(state.repository, add)


def _next_step(state: SessionState, attempt: int, decision: session.Decision) -> NextStep:
    step = NextStep(
        decision.action,
        decision.outcome,
        decision.reasons,
        state.session_id,
        retry_at=decision.retry_at,
    )
    if decision.action is DecisionAction.REWATCH:
        record = state.attempt_record(attempt)
        reruns = record.published.reruns if record and record.published else 0
        step.next_attempt, step.next_dag_id, step.rerun = attempt, MONITOR_DAG_ID, True
        step.run_id = monitor_run_id(state.session_id, attempt, reruns + 1)
    elif decision.action is DecisionAction.ESCALATE:
        assert decision.next_strategy is not None and decision.next_attempt is not None
        step.next_attempt = decision.next_attempt
        step.next_dag_id = dag_id_for(decision.next_strategy)
        step.run_id = attempt_run_id(state.session_id, decision.next_attempt)
    return step


# --------------------------------------------------------------------------- sweep
def sweep() -> list[dict[str, Any]]:
    """Failed runs of the watched branches that have no session yet, most urgent first, as
    the keyword arguments of the triggers of their first attempt (the DAG of the strategy
    ``retry_strategy.attempt_1`` names)."""
    config = state_store.load_orchestrator_config()
    first = dag_id_for(config.strategy_for_attempt(1))
    items = find_new_failures(
        config,
        lambda name: runtime.provider_for(name, config),
        state_store.session_exists,
    )
    return [
        {
            "trigger_dag_id": first,
            "trigger_run_id": attempt_run_id(item.session_id, 1),
            "conf": {
                "repository": item.repository,
                "run_id": item.run_id,
                "provider": item.provider,
            },
        }
        for item in items
    ]
