"""The session state model's transitions (pure: no I/O, no clock of its own)."""

from __future__ import annotations

import hashlib

from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import (
    AttemptStatus,
    Conclusion,
    FailureCategory,
    Outcome,
    Priority,
    RepairKind,
    SessionStatus,
    Strategy,
)
from cicd_orchestrator.models import (
    AttemptRecord,
    Failure,
    LearnedPattern,
    Published,
    Run,
    SessionState,
)

STAGES = ("discovery", "classification", "fixing", "validation", "publish")
CLOSED_BECAUSE = "closed_because"  # key of SessionState.extra: why a session ended early
NOT_FOUND = "not_found"


def session_id_for(provider: str, repository: str, head_sha: str, branch: str = "") -> str:
    """One session per push: (provider, repository, branch, head commit). The failed
    workflows of one push share it, so they are repaired together with one fix.

    The repository's name is not part of the id: Airflow masks every Variable whose key
    contains a word such as "secret" or "token", and a repository may be named so. Only the
    hexadecimal digits of the sha are shown (a sha is what the hosting says it is).
    """
    sha = "".join(c for c in head_sha.lower() if c in "0123456789abcdef")[:12]
    if not sha:
        raise ValueError(f"a session needs the head commit of the failure, got {head_sha!r}")
    key = f"{provider}:{repository}:{branch}:{head_sha.lower()}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return f"cicd-{provider}-{sha}-{digest}"


def session_id_of_run(provider: str, run: Run) -> str:
    """The session of a failed run: that of its push."""
    return session_id_for(provider, run.repository, run.head_sha, run.head_branch)


def same_push(state: SessionState, run: Run) -> bool:
    """Whether ``run`` is a run of the session's push (repository, branch, head commit)."""
    return _of_push(state, run.repository, run.head_branch, run.head_sha)


def _of_push(state: SessionState, repository: str, branch: str, head_sha: str) -> bool:
    return (repository, branch, head_sha) == (state.repository, state.branch, state.head_sha)


def session_runs(state: SessionState) -> list[int]:
    """The failed runs of the session, the first one first (an older state has only it)."""
    return list(dict.fromkeys([state.pipeline_id, *state.failed_runs]))


def join_run(state: SessionState, run: Run) -> bool:
    """Add the failed run of another workflow of the same push to the session, so that the
    next discovery and fixing see it; False when there is nothing to add (it is there
    already). ValueError when the run is not of the session's push."""
    return join_run_id(state, run.id, run.repository, run.head_branch, run.head_sha)


def join_run_id(
    state: SessionState, run_id: int, repository: str, branch: str, head_sha: str
) -> bool:
    """:func:`join_run` for a run known by its id and push (a webhook's delivery)."""
    if not _of_push(state, repository, branch, head_sha):
        raise ValueError(
            f"run {run_id} ({branch}@{head_sha[:12]}) is not of the push of session "
            f"{state.session_id} ({state.branch}@{state.head_sha[:12]})"
        )
    runs = session_runs(state)
    if run_id in runs:
        return False
    state.failed_runs = [*runs, int(run_id)]
    return True


def branch_priority(branch: str, default_branch: str) -> Priority:
    """The seed's priority mapping: default critical, release high, hotfix urgent, else medium."""
    lowered = branch.lower()
    if lowered.startswith(("hotfix/", "hotfix-")) or lowered == "hotfix":
        return Priority.URGENT
    if branch == default_branch:
        return Priority.CRITICAL
    if lowered.startswith(("release/", "release-", "releases/")) or lowered == "release":
        return Priority.HIGH
    return Priority.MEDIUM


def new_session(
    provider: str,
    run: Run,
    config: OrchestratorConfig,
    now: str,
    priority: Priority = Priority.MEDIUM,
) -> SessionState:
    state = SessionState(
        session_id=session_id_of_run(provider, run),
        provider=provider,
        repository=run.repository,
        pipeline_id=run.id,
        failed_runs=[run.id],
        branch=run.head_branch,
        head_sha=run.head_sha,
        workflow=run.workflow,
        event=run.event,
        pull_request_number=run.pull_request_number,
        priority=priority,
        persistence_mode=config.persistence_mode.value,
        max_attempts=config.attempts_allowed,
        start_time=now,
    )
    state.links.failed_run = run.html_url
    return state


def start_attempt(
    state: SessionState,
    attempt: int,
    strategy: Strategy,
    now: str,
    dag_id: str = "",
    dag_run_id: str = "",
) -> SessionState:
    """Mark attempt ``attempt`` as running (idempotent: a retried task finds its record)."""
    record = state.attempt_record(attempt)
    if record is None:
        record = AttemptRecord(attempt=attempt, strategy=strategy, started_at=now)
        state.attempt_history.append(record)
    record.dag_id = dag_id or record.dag_id
    record.dag_run_id = dag_run_id or record.dag_run_id
    record.status = AttemptStatus.RUNNING
    state.current_attempt = attempt
    state.current_strategy = strategy
    state.escalation_level = attempt - 1
    state.status = SessionStatus.RUNNING_ATTEMPT
    state.next_retry_time = None
    return state


def record_stage(
    state: SessionState, attempt: int, stage: str, seconds: float, ok: bool = True
) -> SessionState:
    record = require_attempt(state, attempt)
    record.stage_timings[stage] = round(seconds, 3)
    key = f"attempt_{attempt}.{stage}"
    state.stage_timings[key] = round(seconds, 3)
    target = state.completed_stages if ok else state.failed_stages
    if key not in target:
        target.append(key)
    return state


def record_published(
    state: SessionState, attempt: int, published: Published, now: str
) -> SessionState:
    record = require_attempt(state, attempt)
    record.published = published
    record.finished_at = now
    record.status = (
        AttemptStatus.PUBLISHED
        if published.kind is not RepairKind.NONE
        else AttemptStatus.NOTHING_PUBLISHED
    )
    if published.pull_request and published.pull_request.url not in state.links.pull_requests:
        state.links.pull_requests.append(published.pull_request.url)
    if published.issue and published.issue.url not in state.links.issues:
        state.links.issues.append(published.issue.url)
    state.status = SessionStatus.WAITING_FOR_CI
    return state


def learn(state: SessionState, failures: list[Failure], repair: str | None, worked: bool) -> None:
    """Fold what an attempt taught into the session's learned patterns."""
    known = {p.signature: p for p in state.learned_patterns}
    for failure in failures:
        entry = known.get(failure.signature)
        if entry is None:
            entry = LearnedPattern(
                signature=failure.signature, category=failure.category, pattern=failure.pattern
            )
            state.learned_patterns.append(entry)
            known[failure.signature] = entry
        else:
            entry.seen += 1
        if repair:
            entry.repair = repair
            entry.worked = worked


def record_ci_result(
    state: SessionState, attempt: int, green: bool, signatures: list[str], now: str
) -> SessionState:
    """What CI said of what the attempt published (``signatures``: what failed again)."""
    record = require_attempt(state, attempt)
    record.ci_conclusion = Conclusion.SUCCESS if green else Conclusion.FAILURE
    record.ci_failure_signatures = list(signatures)
    if green:
        state.consecutive_failures = 0
        state.green_threshold_met = True
        record.status = AttemptStatus.CI_GREEN
    else:
        state.total_failures += 1
        state.consecutive_failures += 1
        state.last_failure_time = now
        record.status = AttemptStatus.CI_FAILED
    return state


def session_reruns(state: SessionState) -> int:
    """CI re-runs the session has made so far (every attempt, every re-watch)."""
    return sum(r.published.reruns for r in state.attempt_history if r.published)


def link_dag_run(state: SessionState, link: str) -> None:
    """Remember a DAG run of the session (``dag_id/run_id``) once."""
    if link not in state.links.dag_runs:
        state.links.dag_runs.append(link)


def close(state: SessionState, outcome: Outcome, now: str, reasons: list[str]) -> SessionState:
    state.status = SessionStatus.CLOSED
    state.outcome = outcome
    state.end_time = now
    state.monitoring_active = False
    state.next_retry_time = None
    state.green_threshold_met = outcome in (
        Outcome.FIXED,
        Outcome.RERUN_GREEN,
        Outcome.ROLLED_BACK,
        Outcome.ALREADY_GREEN,
    )
    record = state.attempt_record(state.current_attempt)
    if record is not None:
        record.notes.extend(r for r in reasons if r not in record.notes)
    return state


def not_found_reason(repository: str, error: str) -> str:
    """Why a session ends when its repository or run vanished from the CI provider."""
    return (
        f"{repository} is not found at the CI provider any more (deleted, renamed or no "
        f"longer accessible): {error}; nothing is left to repair or to watch"
    )


def close_not_found(state: SessionState, reason: str, now: str) -> SessionState:
    """Close the session (failed) because its repository or run is gone; the reason goes to
    the errors of the report and to the notes of the current attempt."""
    if reason not in state.errors:
        state.errors.append(reason)
    state.extra[CLOSED_BECAUSE] = NOT_FOUND
    return close(state, Outcome.FAILED, now, [reason])


def require_attempt(state: SessionState, attempt: int) -> AttemptRecord:
    record = state.attempt_record(attempt)
    if record is None:
        raise ValueError(f"session {state.session_id} has no attempt {attempt}")
    return record


def primary_category(state: SessionState) -> FailureCategory:
    roots = [f for f in state.failures if f.root_cause] or state.failures
    if not roots:
        return FailureCategory.UNKNOWN
    return max(roots, key=lambda f: f.confidence).category
