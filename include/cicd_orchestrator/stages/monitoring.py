"""Monitoring: CI's state of what an attempt published (the fix branch, the re-run, or the
failing head when nothing was published)."""

from __future__ import annotations

import datetime

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.constants import CombinedState, Conclusion, RepairKind, RunStatus
from cicd_orchestrator.exceptions import NotFoundError
from cicd_orchestrator.models import CIState, Published
from cicd_orchestrator.session import not_found_reason

_WAITING = frozenset({CombinedState.PENDING, CombinedState.NONE})


def ci_state(provider: CIProvider, repo: str, head_sha: str, published: Published) -> CIState:
    """The CI state of what an attempt published."""
    if published.kind is RepairKind.RERUN and published.rerun_run_id:
        return _rerun_state(provider, repo, published)
    if published.kind not in (RepairKind.CHANGE, RepairKind.REVERT) or not published.sha:
        status = provider.ref_status(repo, head_sha)
        return CIState(
            True,
            status.state is CombinedState.SUCCESS,
            f"nothing was published to watch; the failing head is {status.state.value}",
        )
    sha = published.sha
    status = provider.ref_status(repo, sha)
    if status.state in _WAITING:
        quiet = status.state is CombinedState.NONE and not status.runs
        why = no_ci_reason(provider, repo, published) if quiet else None
        if why is not None:
            return CIState(True, False, why, no_ci=True)
        return CIState(False, False, f"CI on {sha[:12]} is {status.state.value}")
    return CIState(
        True,
        status.state is CombinedState.SUCCESS,
        f"CI on {sha[:12]}: {status.state.value}",
        [j.name for r in status.runs for j in r.failed_jobs],
    )


def no_ci_reason(
    provider: CIProvider,
    repo: str,
    published: Published,
    now: datetime.datetime | None = None,
) -> str | None:
    """Why the fix gets no CI at all, or None while a run may still come: no workflow
    starts on a push of its branch (when the provider can tell), or no run appeared by
    ``published.ci_expected_by`` (``ci_no_run_grace`` after publishing)."""
    sha, branch = published.sha or "", published.branch or ""
    pr = published.pull_request
    if branch and pr is not None:
        push = provider.workflows_for(repo, sha, "push", branch)
        pull = provider.workflows_for(repo, sha, "pull_request", branch, pr.base)
        if push == [] and pull == []:
            return (
                f"no workflow runs on a push of `{branch}` or on its pull request into "
                f"`{pr.base}`: the triggers and branch filters of the repository's workflows "
                "leave the fix without CI"
            )
    if not published.ci_expected_by:
        return None
    try:
        deadline = datetime.datetime.fromisoformat(published.ci_expected_by)
    except ValueError:
        return None
    current = now or datetime.datetime.now(datetime.UTC)
    if current < deadline:
        return None
    return (
        f"no CI run appeared for {sha[:12]} on `{branch}` by {published.ci_expected_by} "
        "(ci_no_run_grace after publishing): the fix branch gets no CI"
    )


def _rerun_state(provider: CIProvider, repo: str, published: Published) -> CIState:
    assert published.rerun_run_id is not None
    run = provider.get_run(repo, published.rerun_run_id, attempt=published.rerun_attempt)
    if run.status is not RunStatus.COMPLETED:
        return CIState(False, False, f"re-run attempt {run.run_attempt} is {run.status.value}")
    return CIState(
        True,
        run.conclusion is Conclusion.SUCCESS,
        f"re-run attempt {run.run_attempt}: {run.conclusion}",
        [j.name for j in run.failed_jobs],
    )


def watch_state(provider: CIProvider, repo: str, head_sha: str, published: Published) -> CIState:
    """:func:`ci_state`, with a repository or run the provider no longer knows said as
    ``gone`` (red, with the reason) instead of raised."""
    try:
        return ci_state(provider, repo, head_sha, published)
    except NotFoundError as exc:
        return CIState(False, False, not_found_reason(repo, str(exc)), gone=True)


def lost_watch_state(
    provider: CIProvider, repo: str, head_sha: str, published: Published
) -> CIState:
    """CI's state asked directly when the deferred watch was lost (it failed): finished or
    not, the monitor decides now (red while CI still runs)."""
    state = watch_state(provider, repo, head_sha, published)
    if state.gone:
        state.done = True
    elif not state.done:
        state.detail = f"the CI watch failed and CI is not finished: {state.detail}"
    return state
