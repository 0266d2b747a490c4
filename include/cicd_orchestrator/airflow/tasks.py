"""Task bodies of the attempt, monitor and sweep DAGs: each a few lines around ``pipeline``.

Parallel tasks only read the session state and return their result as XCom; the gate task of
each TaskGroup folds the results into the session Variable (one writer per stage).
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from cicd_orchestrator import pipeline, session
from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import OrchestratorConfig, to_mapping
from cicd_orchestrator.constants import (
    PRIORITY_WEIGHT,
    CombinedState,
    Conclusion,
    Priority,
    RepairKind,
    RunStatus,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.exceptions import (
    CicdError,
    ConfError,
    ConfigError,
    NotFoundError,
    ProviderError,
)
from cicd_orchestrator.models import (
    Context,
    DependencyMap,
    Failure,
    FixerResult,
    Published,
    Repair,
    SessionState,
    ValidationResult,
)
from cicd_orchestrator.report import render_report
from cicd_orchestrator.serde import from_json_obj, to_json_obj
from cicd_orchestrator.strategies import MONITOR_DAG_ID, dag_id_for

log = logging.getLogger(__name__)

OPEN_TASK = "open_session"
F = TypeVar("F", bound=Callable[..., Any])


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- plumbing
class Ref:
    """The session an attempt DAG run works on, from the open_session XCom."""

    def __init__(self, context: Any) -> None:
        ref = context["ti"].xcom_pull(task_ids=OPEN_TASK)
        if not ref:
            raise AirflowFailException("no session was opened (see the open_session task)")
        self.session_id: str = ref["session_id"]
        self.attempt: int = int(ref["attempt"])
        self.overrides: dict[str, Any] = ref.get("config") or {}
        self.state = state_store.load_session(self.session_id)
        self.config = state_store.load_orchestrator_config(self.overrides)
        self.provider: CIProvider = make_provider(self.state.provider, self.config)


def _wrap(started: float, data: Any) -> dict[str, Any]:
    return {
        "started": started,
        "seconds": round(time.time() - started, 3),
        "data": to_json_obj(data),
    }


def _pull(context: Any, task_id: str) -> dict[str, Any] | None:
    value = context["ti"].xcom_pull(task_ids=task_id)
    return value if isinstance(value, dict) else None


def _stage_seconds(results: list[dict[str, Any] | None]) -> float:
    starts = [r["started"] for r in results if r]
    return round(time.time() - min(starts), 3) if starts else 0.0


def not_retried_when_gone(fn: F) -> F:
    """A stage task whose repository or run is gone from the provider fails at once (a retry
    cannot bring it back); the monitor then closes the session with the reason."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotFoundError as exc:
            raise AirflowFailException(f"{exc} (not retried: gone from the provider)") from exc

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- open
def open_session(dag_id: str, strategy: str, **context: Any) -> dict[str, Any]:
    """Create the session (attempt 1) or load it (later attempts); a duplicate is skipped."""
    params = dict(context["params"])
    attempt = int(params.get("attempt") or 1)
    overrides = params.get("config") or {}
    try:
        config = state_store.load_orchestrator_config(overrides)
    except ConfigError as exc:
        raise AirflowFailException(f"invalid configuration: {exc}") from exc
    run_id = context["dag_run"].run_id
    if params.get("session_id"):
        return _continue_session(params["session_id"], attempt, strategy, dag_id, run_id, overrides)
    try:
        request = pipeline.parse_request(params)
    except ConfError as exc:
        raise AirflowFailException(f"malformed conf, no session opened: {exc}") from exc
    try:
        provider = make_provider(request.provider, config)
        run = pipeline.resolve_failed_run(provider, request, _FAILED(config))
    except (ProviderError, ConfigError) as exc:
        raise AirflowFailException(f"cannot open a session: {exc}") from exc
    if run.status is not RunStatus.COMPLETED or run.conclusion not in _FAILED(config):
        raise AirflowFailException(
            f"run {run.id} of {run.repository} is {run.status.value}/"
            f"{run.conclusion.value if run.conclusion else '-'}: not a failed run"
        )
    session_id = session.session_id_for(request.provider, request.repository, run.id)
    if state_store.session_exists(session_id):
        existing = state_store.load_session(session_id)
        if f"{dag_id}/{run_id}" in existing.links.dag_runs:  # this task's earlier try made it
            log.info("session %s was opened by an earlier try of this task", session_id)
            return {"session_id": session_id, "attempt": 1, "config": overrides}
        log.warning(
            "duplicate request: session %s already exists (%s, attempt %s, %s)",
            session_id,
            existing.status.value,
            existing.current_attempt,
            existing.outcome.value,
        )
        raise AirflowSkipException(f"duplicate: answered by the existing session {session_id}")
    priority = (
        Priority(request.priority)
        if request.priority
        else session.branch_priority(run.head_branch, provider.default_branch(run.repository))
    )
    state = session.new_session(request.provider, run, config, now_iso(), priority)
    session.start_attempt(state, 1, Strategy(strategy), now_iso(), dag_id, run_id)
    state.links.dag_runs.append(f"{dag_id}/{run_id}")
    state.report = render_report(state)
    state_store.save_session(state)
    log.info("opened session %s for %s run %s", session_id, run.repository, run.id)
    return {"session_id": session_id, "attempt": 1, "config": overrides}


def _FAILED(config: OrchestratorConfig) -> set[Conclusion]:
    bad = {Conclusion.FAILURE, Conclusion.TIMED_OUT}
    if config.cancelled_is_failure:
        bad.add(Conclusion.CANCELLED)
    return bad


def _continue_session(
    session_id: str,
    attempt: int,
    strategy: str,
    dag_id: str,
    run_id: str,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    try:
        state = state_store.load_session(session_id)
    except KeyError as exc:
        raise AirflowFailException(f"unknown session {session_id!r}") from exc
    if state.status is SessionStatus.CLOSED:
        raise AirflowSkipException(f"session {session_id} is closed ({state.outcome.value})")
    session.start_attempt(state, attempt, Strategy(strategy), now_iso(), dag_id, run_id)
    link = f"{dag_id}/{run_id}"
    if link not in state.links.dag_runs:
        state.links.dag_runs.append(link)
    state.report = render_report(state)
    state_store.save_session(state)
    return {"session_id": session_id, "attempt": attempt, "config": overrides}


# --------------------------------------------------------------------------- discovery
@not_retried_when_gone
def detect_failures(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    learned = state_store.load_learned(ref.state.repository)
    failures = pipeline.detect_failures(ref.provider, ref.state, learned)
    return _wrap(started, failures)


@not_retried_when_gone
def analyse_context(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    return _wrap(started, pipeline.analyse_context(ref.provider, ref.config, ref.state))


@not_retried_when_gone
def bisect_culprit(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    if ref.state.context and ref.state.context.culprit_sha:
        return _wrap(
            started,
            {
                "culprit": ref.state.context.culprit_sha,
                "reason": ref.state.context.culprit_reason,
                "log": [],
            },
        )
    culprit, reason, lines = pipeline.bisect_culprit(
        ref.provider, ref.config, ref.state, ref.state.failures
    )
    return _wrap(started, {"culprit": culprit, "reason": reason, "log": lines})


@not_retried_when_gone
def compare_environment(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    return _wrap(started, pipeline.compare_environment(ref.provider, ref.state))


def discovery_gate(**context: Any) -> dict[str, Any]:
    ref = Ref(context)
    detect = _pull(context, "discovery.detect_failures")
    ctx = _pull(context, "discovery.analyse_context")
    bis = _pull(context, "discovery.bisect_culprit")
    env = _pull(context, "discovery.compare_environment")
    state = ref.state
    if detect is None:
        raise AirflowFailException("failure detection produced nothing (see its task log)")
    state.failures = [from_json_obj(Failure, f) for f in detect["data"]]
    if ctx is not None:
        new_ctx = from_json_obj(Context, ctx["data"])
        old = state.context
        if old and old.culprit_sha and not new_ctx.culprit_sha:
            new_ctx.culprit_sha, new_ctx.culprit_reason = old.culprit_sha, old.culprit_reason
        state.context = new_ctx
    if bis and bis["data"].get("culprit") and state.context is not None:
        state.context.culprit_sha = bis["data"]["culprit"]
        state.context.culprit_reason = bis["data"]["reason"]
        state.context.bisect_log = list(bis["data"].get("log", []))
    if env and state.context is not None:
        state.context.notes.extend(n for n in env["data"] if n not in state.context.notes)
    seconds = _stage_seconds([detect, ctx, bis, env])
    session.record_stage(state, ref.attempt, "discovery", seconds)
    state.report = render_report(state)
    state_store.save_session(state)
    return {"failures": len(state.failures)}


# --------------------------------------------------------------------------- classification
@not_retried_when_gone
def classify_patterns(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    learned = state_store.load_learned(ref.state.repository)
    return _wrap(
        started,
        pipeline.classify_failures(ref.provider, ref.state, learned, ref.config.max_ci_reruns),
    )


@not_retried_when_gone
def map_dependencies(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    run = pipeline.failed_run(ref.provider, ref.state)
    return _wrap(started, pipeline.map_dependencies(run, ref.state.failures))


def classification_gate(**context: Any) -> dict[str, Any]:
    ref = Ref(context)
    classified = _pull(context, "classification.classify_patterns")
    mapping = _pull(context, "classification.map_dependencies")
    state = ref.state
    if classified is not None:
        state.failures = [from_json_obj(Failure, f) for f in classified["data"]]
    if mapping is not None:
        dep = from_json_obj(DependencyMap, mapping["data"])
        state.dependency_map = dep
        for failure in state.failures:
            if failure.job in dep.symptoms:
                failure.root_cause = False
                failure.symptom_of = dep.symptoms[failure.job]
    record = state.attempt_record(ref.attempt)
    if record is not None:
        record.categories = sorted({f.category.value for f in state.failures})
    session.record_stage(
        state, ref.attempt, "classification", _stage_seconds([classified, mapping])
    )
    state.report = render_report(state)
    state_store.save_session(state)
    return {"categories": record.categories if record else []}


# --------------------------------------------------------------------------- fixing
@not_retried_when_gone
def fix_group(group: str, **context: Any) -> dict[str, Any]:
    """One fixing task of the parallel strategies: the fixers of one category group."""
    from cicd_orchestrator.repair.registry import FIXING_GROUPS, fixers_for_group

    started = time.time()
    ref = Ref(context)
    categories = set(FIXING_GROUPS[group])
    failures = [f for f in ref.state.failures if f.category in categories]
    if not failures:
        return _wrap(started, [])
    results = pipeline.run_fixers(
        fixers_for_group(group), ref.provider, ref.config, ref.state, failures
    )
    return _wrap(started, results)


def _fix_results(context: Any, groups: tuple[str, ...]) -> tuple[list[FixerResult], list[Any]]:
    pulled = [_pull(context, f"fixing.fix_{g}") for g in groups]
    results = [from_json_obj(FixerResult, r) for p in pulled if p for r in p["data"]]
    return results, pulled


@not_retried_when_gone
def merge_fixes(groups: tuple[str, ...], **context: Any) -> dict[str, Any]:
    """Gate of the parallel fixing: merge the changes, detect conflicts."""
    ref = Ref(context)
    results, pulled = _fix_results(context, groups)
    repairs, conflicts = pipeline.merge_repairs(ref.provider, ref.config, ref.state, results)
    return _record_fixing(ref, repairs, results, conflicts, pulled)


@not_retried_when_gone
def sequential_fixes(groups: tuple[str, ...], **context: Any) -> dict[str, Any]:
    """Gate of the sequential strategy: one validated fix per commit, in dependency order."""
    ref = Ref(context)
    results, pulled = _fix_results(context, groups)
    repairs, notes = pipeline.sequential_repairs(ref.provider, ref.config, ref.state, results)
    return _record_fixing(ref, repairs, results, notes, pulled)


def _record_fixing(
    ref: Ref,
    repairs: list[Repair],
    results: list[FixerResult],
    notes: list[str],
    pulled: list[Any],
) -> dict[str, Any]:
    state = ref.state
    record = state.attempt_record(ref.attempt)
    assert record is not None
    record.repairs = repairs
    record.unrepaired = [u for r in results for u in r.unrepaired] + notes
    pipeline.apply_repair_findings(state.failures, repairs)
    if not repairs:
        record.unrepaired.append(
            "no repair applies to "
            + ", ".join(f"{f.job} ({f.category.value})" for f in state.failures if f.root_cause)
        )
    session.record_stage(state, ref.attempt, "fixing", _stage_seconds(pulled))
    state.report = render_report(state)
    state_store.save_session(state)
    return {"repairs": len(repairs)}


def prepare_issue(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    repair = Repair(
        fixer="issue",
        kind=RepairKind.ISSUE,
        category=session.primary_category(ref.state),
        description="hand over to a person with the full context package",
        jobs=sorted({f.job for f in ref.state.failures}),
        confidence=1.0,
    )
    return _wrap(started, repair)


@not_retried_when_gone
def package_context(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    return _wrap(started, pipeline.context_package(ref.provider, ref.config, ref.state))


@not_retried_when_gone
def prepare_rollback(**context: Any) -> dict[str, Any]:
    from cicd_orchestrator.repair.registry import FIXERS

    started = time.time()
    ref = Ref(context)
    results = pipeline.run_fixers([FIXERS["revert"]], ref.provider, ref.config, ref.state)
    return _wrap(started, results)


@not_retried_when_gone
def preserve_state(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    return _wrap(started, pipeline.rollback_plan(ref.provider, ref.state))


def handover_gate(kind: str, **context: Any) -> dict[str, Any]:
    """Gate of the manual-intervention and rollback strategies."""
    ref = Ref(context)
    state = ref.state
    record = state.attempt_record(ref.attempt)
    assert record is not None
    if kind == "issue":
        issue = _pull(context, "fixing.prepare_issue")
        package = _pull(context, "fixing.package_context")
        record.repairs = [from_json_obj(Repair, issue["data"])] if issue else []
        if package:
            record.notes.extend(package["data"].get("notes", []))
        pulled = [issue, package]
    else:
        rollback = _pull(context, "fixing.prepare_rollback")
        plan = _pull(context, "fixing.preserve_state")
        results = [from_json_obj(FixerResult, r) for r in (rollback or {}).get("data", [])]
        record.repairs = [r for res in results for r in res.repairs]
        record.unrepaired = [u for res in results for u in res.unrepaired]
        if plan:
            state.extra["rollback_plan"] = plan["data"]
        pulled = [rollback, plan]
    session.record_stage(state, ref.attempt, "fixing", _stage_seconds(pulled))
    state.report = render_report(state)
    state_store.save_session(state)
    return {"repairs": len(record.repairs)}


# --------------------------------------------------------------------------- validation
def _attempt_repairs(ref: Ref) -> list[Repair]:
    record = ref.state.attempt_record(ref.attempt)
    return list(record.repairs) if record else []


@not_retried_when_gone
def validate_fixes(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    repairs = [r for r in _attempt_repairs(ref) if r.kind is not RepairKind.ISSUE]
    return _wrap(started, pipeline.validate_fixes(ref.provider, ref.config, ref.state, repairs))


@not_retried_when_gone
def regression_run(**context: Any) -> dict[str, Any]:
    started = time.time()
    ref = Ref(context)
    repairs = [r for r in _attempt_repairs(ref) if r.kind is not RepairKind.ISSUE]
    return _wrap(started, pipeline.regression_run(ref.provider, ref.config, ref.state, repairs))


def validation_gate(**context: Any) -> dict[str, Any]:
    ref = Ref(context)
    validate = _pull(context, "validation.validate_fixes")
    regression = _pull(context, "validation.regression_run")
    result = (
        from_json_obj(ValidationResult, validate["data"])
        if validate
        else ValidationResult(notes=["validation did not run (see its task log)"])
    )
    if regression:
        reg = from_json_obj(ValidationResult, regression["data"])
        result.regression = reg.regression
        result.regression_passed = reg.regression_passed
        result.notes.extend(reg.notes)
    state = ref.state
    record = state.attempt_record(ref.attempt)
    assert record is not None
    record.validation = result
    for repair in record.repairs:
        if repair.kind is RepairKind.ISSUE:
            repair.validated = True
        elif repair.validated is None:
            repair.validated = result.ok
    session.record_stage(state, ref.attempt, "validation", _stage_seconds([validate, regression]))
    state.report = render_report(state)
    state_store.save_session(state)
    return {"ok": result.ok}


# --------------------------------------------------------------------------- publish
@not_retried_when_gone
def publish(**context: Any) -> dict[str, Any]:
    """Publish what the attempt validated; always leaves a record for the monitor."""
    started = time.time()
    ref = Ref(context)
    state = ref.state
    published = pipeline.publish_attempt(ref.provider, ref.config, state, ref.attempt)
    session.record_published(state, ref.attempt, published, now_iso())
    session.record_stage(state, ref.attempt, "publish", round(time.time() - started, 3))
    state.report = render_report(state)
    state_store.save_session(state)
    return {"session_id": state.session_id, "attempt": ref.attempt, "kind": published.kind.value}


def attempt_watcher(**context: Any) -> None:
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
    ref = ti.xcom_pull(task_ids=OPEN_TASK) if ti else None
    if not ref or exc is None:
        return
    try:
        state = state_store.load_session(ref["session_id"])
    except KeyError:
        return
    message = f"attempt {ref['attempt']}, task {ti.task_id}: {_describe(exc)}"
    if message not in state.errors:
        state.errors.append(message[:2000])
        state.report = render_report(state)
        state_store.save_session(state)


def _describe(exc: BaseException) -> str:
    """The orchestrator's errors and deliberate task failures say what happened already."""
    if isinstance(exc, (CicdError, AirflowFailException)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- monitor
def _close_not_found(state: SessionState, error: NotFoundError) -> None:
    reason = session.not_found_reason(state.repository, str(error))
    session.close_not_found(state, reason, now_iso())
    state.report = render_report(state)
    state_store.save_session(state)
    log.warning("closed session %s: %s", state.session_id, error)


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
    published = (record.published if record else None) or Published(
        notes=["the attempt published nothing"]
    )
    try:
        target = _watch_target(state, attempt, config, params, record, published)
    except NotFoundError as exc:
        _close_not_found(state, exc)
        raise AirflowSkipException(f"session {session_id} closed: {exc}") from exc
    return target


def _watch_target(
    state: SessionState,
    attempt: int,
    config: OrchestratorConfig,
    params: Any,
    record: Any,
    published: Published,
) -> dict[str, Any]:
    if params.get("rerun") in (True, "True", "true") and record is not None:
        provider = make_provider(state.provider, config)
        published = pipeline.rerun_again(provider, state, published)
        record.published = published
        state.status = SessionStatus.WAITING_FOR_CI
        state.report = render_report(state)
        state_store.save_session(state)
    target: dict[str, Any] = {
        "session_id": state.session_id,
        "attempt": attempt,
        "provider": state.provider,
        "config": {k: v for k, v in to_mapping(config).items() if k != "local_ci_secrets"},
        "repository": state.repository,
        "head_sha": state.head_sha,
        "published": to_json_obj(published),
        "poll_interval": max(0.5, config.ci_poll_interval * config.delay_scale),
        "timeout": config.ci_timeout,
    }
    if published.kind in (RepairKind.NONE, RepairKind.ISSUE):
        provider = make_provider(state.provider, config)
        target["immediate"] = to_json_obj(
            pipeline.ci_state(provider, state.repository, state.head_sha, published)
        )
    return target


def decide(**context: Any) -> dict[str, Any]:
    """Record the CI result, learn, and close the session or schedule the next attempt."""
    target = context["ti"].xcom_pull(task_ids="load_target")
    if not target:
        raise AirflowSkipException("no session to decide on (see load_target)")
    event = context["ti"].xcom_pull(task_ids="watch_ci") or _check_now(target)
    state = state_store.load_session(target["session_id"])
    attempt = int(target["attempt"])
    if state.status is SessionStatus.CLOSED:
        return {"action": "closed"}
    if event.get("gone"):
        reason = str(event.get("detail") or f"{state.repository} is not found any more")
        session.close_not_found(state, reason, now_iso())
        state.report = render_report(state)
        state_store.save_session(state)
        return {"action": "close", "outcome": state.outcome.value, "reasons": [reason]}
    config = state_store.load_orchestrator_config(context["params"].get("config") or {})
    green = bool(event.get("green"))
    now = now_iso()
    session.record_ci_result(
        state, attempt, "success" if green else "failure", list(event.get("signatures") or []), now
    )
    record = state.attempt_record(attempt)
    if record is not None and event.get("detail"):
        record.notes.append(str(event["detail"]))
    _learn(state, record, green)
    decision = session.decide(state, attempt, green, config)
    retry_at = None
    if decision.action in ("escalate", "rewatch"):
        moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
            seconds=decision.delay_seconds
        )
        retry_at = moment.isoformat()
    session.apply_decision(state, decision, now, retry_at)
    _final_status(state, record, config)
    state.report = render_report(state)
    state_store.save_session(state)
    out: dict[str, Any] = {
        "action": decision.action,
        "outcome": decision.outcome.value,
        "reasons": decision.reasons,
    }
    if decision.action == "rewatch":
        record = state.attempt_record(attempt)
        reruns = record.published.reruns if record and record.published else 0
        out.update(
            next_attempt=attempt,
            retry_at=retry_at,
            next_dag_id=MONITOR_DAG_ID,
            session_id=state.session_id,
            rerun=True,
            run_id=f"{state.session_id}__monitor{attempt}-rerun{reruns + 1}",
        )
    elif decision.action == "escalate":
        assert decision.next_strategy is not None
        out.update(
            next_attempt=decision.next_attempt,
            retry_at=retry_at,
            next_dag_id=dag_id_for(decision.next_strategy),
            session_id=state.session_id,
            run_id=f"{state.session_id}__attempt{decision.next_attempt}",
        )
    return out


def _check_now(target: dict[str, Any]) -> dict[str, Any]:
    """The CI state asked directly, when the deferred watch was lost (it failed)."""
    from cicd_orchestrator.airflow.triggers import CIStatusTrigger

    kwargs = {
        k: target[k]
        for k in (
            "provider",
            "config",
            "repository",
            "head_sha",
            "published",
            "poll_interval",
            "timeout",
        )
    }
    result = CIStatusTrigger(**kwargs).poll_once()
    if result.get("gone"):
        return {**result, "done": True}
    if not result.get("done"):
        result = {
            **result,
            "green": False,
            "detail": f"the CI watch failed and CI is not finished: {result.get('detail')}",
        }
    return result


def _learn(state: SessionState, record: Any, green: bool) -> None:
    from cicd_orchestrator.analysis.learning import record as learn_record

    repair = None
    if record is not None and record.repairs:
        repair = ",".join(sorted({r.fixer for r in record.repairs}))
    session.learn(state, state.failures, repair, green)
    store = state_store.load_learned(state.repository)
    for failure in state.failures:
        learn_record(
            store,
            failure.signature,
            failure.category.value,
            failure.pattern,
            repair,
            green if repair else None,
        )
    state_store.save_learned(state.repository, store)


def _final_status(state: SessionState, record: Any, config: OrchestratorConfig) -> None:
    """Set the orchestrator's commit status on the fix (best effort)."""
    if record is None or record.published is None or not record.published.sha:
        return
    try:
        provider = make_provider(state.provider, config)
        green = record.ci_conclusion == "success"
        provider.set_commit_status(
            state.repository,
            record.published.sha,
            CombinedState.SUCCESS if green else CombinedState.FAILURE,
            f"attempt {record.attempt}: CI {'green' if green else 'red'} on the fix",
        )
    except CicdError as exc:
        log.warning("could not set the commit status: %s", exc)


# --------------------------------------------------------------------------- sweep
def sweep(**context: Any) -> list[dict[str, Any]]:
    """Failed runs of the watched branches that have no session yet, most urgent first."""
    config = state_store.load_orchestrator_config()
    found: list[tuple[int, dict[str, Any]]] = []
    for watched in config.watched_repositories:
        try:
            provider = make_provider(watched.provider, config)
            default = provider.default_branch(watched.repository)
        except CicdError as exc:
            log.error("sweep: %s: %s", watched.repository, exc)
            continue
        for branch in watched.branches:
            try:
                runs = provider.list_failed_runs(watched.repository, branch)
            except CicdError as exc:
                log.error("sweep: %s@%s: %s", watched.repository, branch, exc)
                continue
            for run in runs[:1]:  # the newest failure of a branch is the one to repair
                sid = session.session_id_for(watched.provider, run.repository, run.id)
                if state_store.session_exists(sid):
                    continue
                weight = PRIORITY_WEIGHT[session.branch_priority(branch, default)]
                found.append(
                    (
                        weight,
                        {
                            "trigger_run_id": f"{sid}__attempt1",
                            "conf": {
                                "repository": run.repository,
                                "run_id": run.id,
                                "provider": watched.provider,
                            },
                        },
                    )
                )
    found.sort(key=lambda item: -item[0])
    log.info("sweep: %d new failed run(s)", len(found))
    return [item for _, item in found]
