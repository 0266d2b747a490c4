"""Opening a session: a request (DAG run conf, webhook, sweep) checked, the failed run it
names resolved, and the new session's state. A run of the orchestrator's own (its fix
branch, a commit it authored) opens none."""

from __future__ import annotations

from dataclasses import dataclass, field

from cicd_orchestrator import branches
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import (
    Conclusion,
    Priority,
    RunStatus,
    SessionStatus,
    Strategy,
    failed_run_conclusions,
)
from cicd_orchestrator.exceptions import (
    ConfError,
    NotAFailedRunError,
    OwnRunError,
    UnknownRunError,
)
from cicd_orchestrator.models import Run, SessionState
from cicd_orchestrator.session import (
    branch_priority,
    join_run,
    link_dag_run,
    new_session,
    same_push,
    start_attempt,
    superseded_failure,
)


@dataclass(frozen=True)
class SessionRequest:
    """A validated request to open a session (DAG run conf, webhook, sweep)."""

    repository: str
    run_id: int | None
    provider: str = "local"
    head_sha: str | None = None
    priority: str | None = None
    config_overrides: dict[str, object] = field(default_factory=dict)


def _run_id(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfError(f"conf.run_id must be a positive integer, got {value!r}")
    return value


def parse_request(conf: object) -> SessionRequest:
    """Validate a DAG run conf; a clear ConfError names what is wrong."""
    if not isinstance(conf, dict):
        raise ConfError("the DAG run conf must be a JSON object")
    repo = conf.get("repository")
    if not isinstance(repo, str) or repo.count("/") != 1 or not all(repo.split("/")):
        raise ConfError(f"conf.repository must look like 'owner/name', got {repo!r}")
    run_id = _run_id(conf.get("run_id"))
    head_sha = conf.get("head_sha")
    if head_sha is not None and (not isinstance(head_sha, str) or len(head_sha) < 7):
        raise ConfError(f"conf.head_sha must be a commit sha, got {head_sha!r}")
    if run_id is None and head_sha is None:
        raise ConfError("conf needs run_id (the failed run) or head_sha (its commit)")
    provider = conf.get("provider") or "local"
    if not isinstance(provider, str):
        raise ConfError("conf.provider must be a string")
    priority = conf.get("priority")
    if priority is not None and priority not in {p.value for p in Priority}:
        raise ConfError(f"conf.priority must be one of {[p.value for p in Priority]}")
    overrides = conf.get("config")
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, dict):
        raise ConfError("conf.config must be a JSON object")
    return SessionRequest(repo, run_id, provider, head_sha, priority, overrides)


def resolve_failed_run(
    provider: CIProvider, request: SessionRequest, failed: frozenset[Conclusion]
) -> Run:
    """The run a request names: by id, or the newest failed run of its commit."""
    if request.run_id is not None:
        return provider.get_run(request.repository, request.run_id)
    runs = provider.list_runs(request.repository, head_sha=request.head_sha)
    for run in runs:
        if run.status is RunStatus.COMPLETED and run.conclusion in failed:
            return provider.get_run(request.repository, run.id)
    raise UnknownRunError(
        f"no failed run of {request.repository} for commit {str(request.head_sha)[:12]}"
    )


def failed_run_of(provider: CIProvider, request: SessionRequest, config: OrchestratorConfig) -> Run:
    """The failed run a request names; NotAFailedRunError when it is not (yet) a failure,
    OwnRunError when it is the orchestrator's own."""
    failed = failed_run_conclusions(config.cancelled_is_failure)
    run = resolve_failed_run(provider, request, failed)
    if run.status is not RunStatus.COMPLETED or run.conclusion not in failed:
        raise NotAFailedRunError(
            f"run {run.id} of {run.repository} is {run.status.value}/"
            f"{run.conclusion.value if run.conclusion else '-'}: not a failed run"
        )
    why = own_run(provider, run, config)
    if why:
        raise OwnRunError(f"run {run.id} of {run.repository} is ignored: {why}")
    return run


def own_run(provider: CIProvider, run: Run, config: OrchestratorConfig) -> str | None:
    """Why ``run`` is the orchestrator's own (a run of its fix branch, of a commit it
    authored), or None; the commit's author is asked only for another branch."""
    why = branches.own_run(run.head_branch, "", config.fix_branch_prefix)
    if why is None:
        author = provider.commit_author(run.repository, run.head_sha)
        why = branches.own_run(run.head_branch, author, config.fix_branch_prefix)
    return why


def open_session(
    provider: CIProvider,
    request: SessionRequest,
    run: Run,
    config: OrchestratorConfig,
    strategy: Strategy,
    now: str,
    dag_run: tuple[str, str],
) -> SessionState:
    """The new session of ``run``, its first attempt started by the DAG run ``dag_run``
    (dag id, run id); the priority is the request's or the failing branch's."""
    priority = (
        Priority(request.priority)
        if request.priority
        else branch_priority(run.head_branch, provider.default_branch(run.repository))
    )
    state = new_session(request.provider, run, config, now, priority)
    for other in failed_runs_of_push(provider, run, config):
        join_run(state, other)
    start_attempt(state, 1, strategy, now, *dag_run)
    link_dag_run(state, "/".join(dag_run))
    return state


def failed_runs_of_push(provider: CIProvider, run: Run, config: OrchestratorConfig) -> list[Run]:
    """The other failed runs of ``run``'s push (same repository, branch and head commit:
    the other workflows that failed on it), oldest first; they join one session."""
    failed = failed_run_conclusions(config.cancelled_is_failure)
    runs = provider.list_runs(run.repository, branch=run.head_branch, head_sha=run.head_sha)
    others = [
        r
        for r in runs
        if r.id != run.id
        and same_push_run(run, r)
        and r.status is RunStatus.COMPLETED
        and r.conclusion in failed
    ]
    return sorted(others, key=lambda r: r.id)


def same_push_run(a: Run, b: Run) -> bool:
    """Whether two runs are of one push (repository, branch, head commit)."""
    return (a.repository, a.head_branch, a.head_sha) == (b.repository, b.head_branch, b.head_sha)


def join_existing(state: SessionState, run: Run) -> bool:
    """Add the failed ``run`` to the open session of its push; False when there is nothing
    to change (closed, or the run is there already)."""
    if state.status is SessionStatus.CLOSED or not same_push(state, run):
        return False
    return join_run(state, run)


def superseded_at_opening(provider: CIProvider, run: Run) -> str | None:
    """Why the failed ``run`` needs no session any more (a newer run of its workflow on its
    branch, or the run green again), or None: the sweep's rule, for every request."""
    runs = provider.list_runs(run.repository, branch=run.head_branch)
    return superseded_failure(run, [*runs, run] if run.id not in {r.id for r in runs} else runs)
