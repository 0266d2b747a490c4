"""Superseded failures (pure): a session's failure is moot once a newer commit on its branch
is being tested by the same workflow, or once the failed run went green by itself (someone
re-ran it). The monitor asks before it watches, its trigger at each poll of the watch, and
the monitor again before it escalates; opening a session (sweep, webhook, REST API) asks
first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cicd_orchestrator.constants import Conclusion, Outcome, RunStatus
from cicd_orchestrator.models import Published, Run, SessionState
from cicd_orchestrator.session.state import CLOSED_BECAUSE, close, session_runs

SUPERSEDED = "superseded"  # the value of SessionState.extra[CLOSED_BECAUSE]


def newest_per_workflow(runs: Iterable[Run]) -> dict[str, Run]:
    """The newest run of each workflow (by path) among ``runs`` (of one branch)."""
    newest: dict[str, Run] = {}
    for run in runs:
        known = newest.get(run.workflow_path)
        if known is None or run.id > known.id:
            newest[run.workflow_path] = run
    return newest


def superseded_failure(
    failed: Run, branch_runs: Iterable[Run], ignore_shas: Iterable[str] = ()
) -> str | None:
    """Why the failed run ``failed`` is moot, or None: the branch's newest run of the same
    workflow is another, newer run on another commit (whatever its state: the newer commit
    is what matters now), or the failed run itself is green now.

    ``ignore_shas``: commits whose runs never supersede (the orchestrator's own fix commits
    on a pull request's branch)."""
    ignored = set(ignore_shas)
    same_workflow = [
        r
        for r in branch_runs
        if r.workflow_path == failed.workflow_path
        and r.head_branch == failed.head_branch
        and r.head_sha not in ignored
    ]
    newest = newest_per_workflow(same_workflow).get(failed.workflow_path)
    if newest is None:
        return None
    if newest.id > failed.id and newest.head_sha != failed.head_sha:
        return (
            f"a newer commit {newest.head_sha[:12]} on {failed.head_branch} is in CI "
            f"({failed.workflow} run {newest.id}, {_state(newest)}): the failure of run "
            f"{failed.id} at {failed.head_sha[:12]} is superseded"
        )
    if newest.id == failed.id and _green(newest):
        return f"run {failed.id} ({failed.workflow}) went green by itself (re-run)"
    return None


@dataclass
class SupersessionCheck:
    """What decides whether a session's failure is superseded, without the rest of the
    session (the monitor's trigger carries it): the branch, the session's failed runs, and
    what the session did itself (its fix commits, the runs it re-ran)."""

    branch: str
    failed_runs: list[int] = field(default_factory=list)
    own_shas: list[str] = field(default_factory=list)
    own_reruns: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, state: SessionState) -> SupersessionCheck:
        published = _published(state)
        return cls(
            branch=state.branch,
            failed_runs=session_runs(state),
            own_shas=sorted({p.sha for p in published if p.sha}),
            own_reruns=sorted({p.rerun_run_id for p in published if p.rerun_run_id}),
        )

    def reason(self, branch_runs: Iterable[Run]) -> str | None:
        """Why the failure is moot, or None. ``branch_runs``: the runs of the branch as the
        provider lists them now (the session's failed runs among them).

        A run the session re-ran itself (a re-run repair) going green is the session's own
        success, not a supersession; the session's own fix commits never supersede."""
        runs = list(branch_runs)
        by_id = {r.id: r for r in runs}
        for run_id in self.failed_runs:
            run = by_id.get(run_id)
            if run is None:
                continue
            why = superseded_failure(run, runs, self.own_shas)
            if why and not (run.id in self.own_reruns and _green(run)):
                return why
        return None


def superseded_session(state: SessionState, branch_runs: Iterable[Run]) -> str | None:
    """Why the session's failure is moot, or None (see :class:`SupersessionCheck`)."""
    return SupersessionCheck.of(state).reason(branch_runs)


def close_superseded_session(state: SessionState, reason: str, now: str) -> SessionState:
    """Close the session as superseded (its fix pull requests are closed by the caller)."""
    state.extra[CLOSED_BECAUSE] = SUPERSEDED
    return close(state, Outcome.SUPERSEDED, now, [reason])


def _published(state: SessionState) -> list[Published]:
    return [r.published for r in state.attempt_history if r.published is not None]


def _green(run: Run) -> bool:
    return run.status is RunStatus.COMPLETED and run.conclusion is Conclusion.SUCCESS


def _state(run: Run) -> str:
    if run.status is not RunStatus.COMPLETED:
        return run.status.value
    return run.conclusion.value if run.conclusion else "completed"
