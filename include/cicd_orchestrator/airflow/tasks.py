"""Task bodies of the attempt DAGs: each loads what it needs, calls one function of the
domain and hands its result on.

Parallel tasks only read the session and return their result (XCom); the gate of each
TaskGroup folds the results into the session with one pure function of ``session`` and saves
it (one writer per stage).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from cicd_orchestrator import session
from cicd_orchestrator.airflow import feedback, runtime, state_store
from cicd_orchestrator.airflow.handoff import StageOutput, Ticket, from_xcom, stage_data, xcom_of
from cicd_orchestrator.airflow.handoff import stage_seconds as seconds_since
from cicd_orchestrator.airflow.names import OPEN_TASK, attempt_run_id
from cicd_orchestrator.airflow.operators import trigger_dag_run
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import RepairKind, SessionStatus, Strategy
from cicd_orchestrator.exceptions import (
    CicdError,
    ConfError,
    ConfigError,
    NotAFailedRunError,
    NotFoundError,
    OwnRunError,
    ProviderError,
)
from cicd_orchestrator.models import (
    Context,
    Culprit,
    DependencyMap,
    Failure,
    FixerResult,
    Repair,
    Run,
    SessionState,
    ValidationResult,
)
from cicd_orchestrator.stages import opening
from cicd_orchestrator.strategies import dag_id_for

if TYPE_CHECKING:
    from cicd_orchestrator.stages.fixing import FixingOutcome

log = logging.getLogger(__name__)

#: the repairs validation replays (a hand-over to a person is not replayed)
REPLAYED = frozenset(set(RepairKind) - {RepairKind.ISSUE})


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def ticket_of(raw: Any) -> Ticket:
    """The attempt's ticket from ``open_session``; none when it handed the request to the
    session's own DAG run (this run's task then skips)."""
    ticket = from_xcom(Ticket, raw)
    if ticket is None:
        raise AirflowSkipException("no session in this DAG run (see the open_session task)")
    return ticket


def _session(raw_ticket: Any) -> tuple[SessionState, int]:
    ticket = ticket_of(raw_ticket)
    return state_store.load_session(ticket.session_id), ticket.attempt


def run_stage(ticket: Any, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """A parallel task of a TaskGroup: ``fn(attempt, *args)`` on the attempt of the ticket,
    its result handed to the gate. A repository or run gone from the provider fails the task
    at once (a retry cannot bring it back; the monitor closes the session)."""
    started = time.time()
    try:
        return StageOutput.of(started, fn(runtime.load_attempt(ticket_of(ticket)), *args))
    except NotFoundError as exc:
        raise AirflowFailException(f"{exc} (not retried: gone from the provider)") from exc


# --------------------------------------------------------------------------- open
def open_session(dag_id: str, strategy: str, **context: Any) -> dict[str, Any]:
    """Create the session (attempt 1) or continue it (later attempts); a duplicate request
    is skipped."""
    params = dict(context["params"])
    attempt = int(params.get("attempt") or 1)
    overrides = params.get("config") or {}
    dag_run = (dag_id, context["dag_run"].run_id)
    try:
        config = state_store.load_orchestrator_config(overrides)
    except ConfigError as exc:
        raise AirflowFailException(f"invalid configuration: {exc}") from exc
    if params.get("session_id"):
        sid = str(params["session_id"])
        _continue_session(sid, attempt, Strategy(strategy), dag_run)
        feedback.inform(state_store.load_session(sid), config, notify_people=False)
        return xcom_of(Ticket(sid, attempt, overrides))
    try:
        request = opening.parse_request(params)
        provider = runtime.provider_for(request.provider, config)
        run = opening.failed_run_of(provider, request, config)
    except ConfError as exc:
        raise AirflowFailException(f"malformed conf, no session opened: {exc}") from exc
    except OwnRunError as exc:
        raise AirflowSkipException(f"no session: {exc}") from exc
    except (ProviderError, ConfigError, NotAFailedRunError) as exc:
        raise AirflowFailException(f"cannot open a session: {exc}") from exc
    sid = session.session_id_of_run(request.provider, run)
    if state_store.session_exists(sid):
        _existing(sid, dag_run, run)
    else:
        _unless_superseded(provider, run)
        if dag_run != (home := session_home(sid, config)):
            _hand_over(home, params, run)
        state = opening.open_session(
            provider, request, run, config, Strategy(strategy), now_iso(), dag_run
        )
        state_store.save_session(state)
        feedback.inform(state, config, notify_people=False)
        log.info("opened session %s for %s run %s", sid, run.repository, run.id)
    return xcom_of(Ticket(sid, 1, overrides))


def session_home(session_id: str, config: OrchestratorConfig) -> tuple[str, str]:
    """The one DAG run where a session is created: the first attempt's run named after the
    session, of the DAG ``retry_strategy.attempt_1`` names. Airflow refuses a second DAG run
    of one id (a database constraint), so requests for one push that arrive at once, by any
    way, create one session and their ``open_session`` tasks need not wait for each other."""
    return dag_id_for(config.strategy_for_attempt(1)), attempt_run_id(session_id, 1)


def _hand_over(home: tuple[str, str], params: dict[str, Any], run: Run) -> NoReturn:
    """Trigger the session's own DAG run for this request (for the failed run it found, as
    the request's other params say); when that run exists already, this task skips. The
    tasks after this one then skip: the session goes on in its own run."""
    dag_id, run_id = home
    log.info(
        "the session of %s run %s opens in DAG run %s of %s", run.repository, run.id, run_id, dag_id
    )
    trigger_dag_run(
        dag_id,
        run_id,
        {**params, "run_id": run.id, "head_sha": None, "session_id": None, "attempt": 1},
    )


def _unless_superseded(provider: CIProvider, run: Run) -> None:
    """No session for a failure that is superseded already (a newer run of its workflow on
    its branch, or the run green again); a provider that cannot tell opens it."""
    try:
        why = opening.superseded_at_opening(provider, run)
    except (ProviderError, ConfigError) as exc:
        log.warning("run %s: supersession not checked: %s", run.id, exc)
        return
    if why:
        raise AirflowSkipException(f"no session: {why}")


def _existing(session_id: str, dag_run: tuple[str, str], run: Run) -> None:
    """A session for the run's push exists: this task's earlier try made it (go on), or
    another request did (the run joins that session, which answers: skip)."""
    existing = state_store.load_session(session_id)
    if "/".join(dag_run) in existing.links.dag_runs:
        log.info("session %s was opened by an earlier try of this task", session_id)
        return
    state_store.update_session(session_id, lambda state: opening.join_existing(state, run))
    log.warning(
        "duplicate request: session %s already exists (%s, attempt %s, %s)",
        session_id,
        existing.status.value,
        existing.current_attempt,
        existing.outcome.value,
    )
    raise AirflowSkipException(f"duplicate: answered by the existing session {session_id}")


def _continue_session(
    session_id: str, attempt: int, strategy: Strategy, dag_run: tuple[str, str]
) -> None:
    try:
        state = state_store.load_session(session_id)
    except KeyError as exc:
        raise AirflowFailException(f"unknown session {session_id!r}") from exc
    if state.status is SessionStatus.CLOSED:
        raise AirflowSkipException(f"session {session_id} is closed ({state.outcome.value})")
    session.start_attempt(state, attempt, strategy, now_iso(), *dag_run)
    session.link_dag_run(state, "/".join(dag_run))
    state_store.save_session(state)


# --------------------------------------------------------------------------- discovery
def _learned(attempt: Attempt) -> dict[str, object]:
    return state_store.load_learned(attempt.repository)


def detect_failures(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import discovery

    return run_stage(ticket, lambda a: discovery.detect_failures(a, _learned(a)))


def analyse_context(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import discovery

    return run_stage(ticket, discovery.analyse_context)


def bisect_culprit(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import discovery

    return run_stage(ticket, discovery.bisect_culprit)


def compare_environment(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import discovery

    return run_stage(ticket, discovery.compare_environment)


def discovery_gate(
    ticket: Any,
    detect: Any,
    context: Any = None,
    bisect: Any = None,
    environment: Any = None,
) -> dict[str, Any]:
    state, number = _session(ticket)
    failures = stage_data(detect, list[Failure])
    if failures is None:
        raise AirflowFailException("failure detection produced nothing (see its task log)")
    session.fold_discovery(
        state,
        number,
        seconds_since(detect, context, bisect, environment),
        failures,
        stage_data(context, Context),
        stage_data(bisect, Culprit),
        stage_data(environment, list[str]),
    )
    state_store.save_session(state)
    return {"failures": len(failures)}


# --------------------------------------------------------------------------- classification
def classify_patterns(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import classification

    return run_stage(ticket, lambda a: classification.classify_failures(a, _learned(a)))


def map_dependencies(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import classification

    return run_stage(ticket, classification.map_dependencies)


def classification_gate(ticket: Any, classified: Any, mapping: Any) -> dict[str, Any]:
    state, number = _session(ticket)
    categories = session.fold_classification(
        state,
        number,
        seconds_since(classified, mapping),
        stage_data(classified, list[Failure]),
        stage_data(mapping, DependencyMap),
    )
    state_store.save_session(state)
    return {"categories": categories}


# --------------------------------------------------------------------------- fixing
def fix_group(ticket: Any, group: str) -> dict[str, Any]:
    """The fixers of one group of categories (one task each in the parallel strategies)."""
    from cicd_orchestrator.stages import fixing

    return run_stage(ticket, fixing.fix_group, group)


def prepare_issue(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import fixing

    return run_stage(ticket, fixing.prepare_issue)


def package_context(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import fixing

    return run_stage(ticket, fixing.context_package)


def prepare_rollback(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import fixing

    return run_stage(ticket, fixing.prepare_rollback)


def preserve_state(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.stages import fixing

    return run_stage(ticket, fixing.rollback_plan)


def _fixer_results(outputs: list[Any]) -> list[FixerResult]:
    return [r for raw in outputs for r in stage_data(raw, list[FixerResult]) or []]


def _keep_repairs(
    keep: Callable[[Attempt, list[FixerResult]], FixingOutcome],
    ticket: Any,
    outputs: list[Any],
) -> dict[str, Any]:
    attempt = runtime.load_attempt(ticket_of(ticket))
    results = _fixer_results(outputs)
    try:
        outcome = keep(attempt, results)
    except NotFoundError as exc:
        raise AirflowFailException(f"{exc} (not retried: gone from the provider)") from exc
    session.fold_fixing(
        attempt.state,
        attempt.number,
        seconds_since(*outputs),
        outcome.repairs,
        results,
        outcome.notes,
    )
    state_store.save_session(attempt.state)
    return {"repairs": len(outcome.repairs)}


def merge_fixes(ticket: Any, fixes: list[Any]) -> dict[str, Any]:
    """Gate of the parallel fixing: merge the changes, report the conflicts."""
    from cicd_orchestrator.stages import fixing

    return _keep_repairs(fixing.merge_repairs, ticket, fixes)


def sequential_fixes(ticket: Any, fixes: list[Any]) -> dict[str, Any]:
    """Gate of the sequential strategy: one validated fix per commit, in dependency order."""
    from cicd_orchestrator.stages import fixing

    return _keep_repairs(fixing.sequential_repairs, ticket, fixes)


def issue_gate(ticket: Any, issue: Any, package: Any) -> dict[str, Any]:
    """Gate of the manual-intervention strategy."""
    state, number = _session(ticket)
    repair = stage_data(issue, Repair)
    session.fold_issue_handover(
        state, number, seconds_since(issue, package), repair, stage_data(package, list[str]) or []
    )
    state_store.save_session(state)
    return {"repairs": int(repair is not None)}


def rollback_gate(ticket: Any, rollback: Any, plan: Any) -> dict[str, Any]:
    """Gate of the rollback strategy."""
    state, number = _session(ticket)
    results = _fixer_results([rollback])
    plan_data = from_xcom(StageOutput, plan)
    session.fold_rollback_handover(
        state,
        number,
        seconds_since(rollback, plan),
        results,
        plan_data.data if plan_data else None,
    )
    state_store.save_session(state)
    return {"repairs": sum(len(r.repairs) for r in results)}


# --------------------------------------------------------------------------- validation
def validate_fixes(ticket: Any) -> dict[str, Any]:
    """Validation, with further repair rounds for the new failures the repairs reveal."""
    from cicd_orchestrator.stages import fixing

    return run_stage(ticket, lambda a: fixing.validate_in_rounds(a, a.repairs(REPLAYED)))


def regression_run(ticket: Any) -> dict[str, Any]:
    from cicd_orchestrator.validation import replay

    return run_stage(ticket, lambda a: replay.regression_run(a, a.repairs(REPLAYED)))


def validation_gate(ticket: Any, validation: Any, regression: Any) -> dict[str, Any]:
    state, number = _session(ticket)
    config = state_store.load_orchestrator_config(ticket_of(ticket).config)
    ok = session.fold_validation(
        state,
        number,
        seconds_since(validation, regression),
        stage_data(validation, ValidationResult),
        stage_data(regression, ValidationResult),
        config.ci_verified_fixes,
    )
    state_store.save_session(state)
    record = state.attempt_record(number)
    verified = bool(record and record.validation and record.validation.ci_verified)
    return {"ok": ok, "ci_verified": verified}


# --------------------------------------------------------------------------- publish
def publish(ticket: Any) -> dict[str, Any]:
    """Publish what the attempt validated; always leaves a record for the monitor."""
    from cicd_orchestrator.publish.attempt import publish_attempt

    started = time.time()
    attempt = runtime.load_attempt(ticket_of(ticket))
    try:
        published = publish_attempt(attempt)
    except NotFoundError as exc:
        raise AirflowFailException(f"{exc} (not retried: gone from the provider)") from exc
    seconds = round(time.time() - started, 3)
    session.fold_publish(attempt.state, attempt.number, seconds, published, now_iso())
    feedback.inform(attempt.state, attempt.config)
    state_store.save_session(attempt.state)
    return {"kind": published.kind.value}


def attempt_watcher() -> None:
    """Runs only when a task of the attempt failed: fails the DAG run, as the task did."""
    raise AirflowFailException(
        "a task of this attempt failed (see its log and the errors of the session report); "
        "the monitor has taken the session over"
    )


def record_stage_errors(context: Any) -> None:
    """Callback (Airflow passes the context as the one argument): a failed stage task leaves
    its error in the session report."""
    ti = context.get("ti")
    exc = context.get("exception")
    ticket = from_xcom(Ticket, ti.xcom_pull(task_ids=OPEN_TASK)) if ti else None
    if ticket is None or exc is None:
        return
    message = f"attempt {ticket.attempt}, task {ti.task_id}: {_describe(exc)}"[:2000]

    def add_error(state: SessionState) -> bool:
        if message in state.errors:
            return False
        state.errors.append(message)
        return True

    with contextlib.suppress(KeyError):
        state_store.update_session(ticket.session_id, add_error)


def _describe(exc: BaseException) -> str:
    """The orchestrator's errors and deliberate task failures say what happened already."""
    if isinstance(exc, (CicdError, AirflowFailException)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
