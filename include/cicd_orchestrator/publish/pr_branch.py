"""A fix committed onto a pull request's own branch (opt-in ``commit_to_pr_branch``), in
place of a fix branch and a second pull request.

Only for a pull request of the repository itself (never a fork's), only while the branch
still points at the failing commit (the fix is a fast-forward of it; a branch that moved is
left alone), and only where the branch-safety rule allows a push (never the default or a
protected branch). The push is never forced. Anything else: the caller publishes the usual
fix branch and pull request, with the reason in the notes.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from cicd_orchestrator import branches
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.constants import CombinedState, RepairKind
from cicd_orchestrator.exceptions import CicdError, SafetyError
from cicd_orchestrator.models import Published, PullHead, Repair
from cicd_orchestrator.publish.markers import key_of, marker
from cicd_orchestrator.publish.text import safe_body

log = logging.getLogger(__name__)


def pull_request_target(
    attempt: Attempt, check_safe: Callable[[Attempt, str], None]
) -> tuple[PullHead | None, str | None]:
    """The pull request whose branch the fix may go onto, or (None, why not).
    ``check_safe``: the branch-safety rule of publishing (SafetyError: no push)."""
    provider, repo, state = attempt.provider, attempt.repository, attempt.state
    number = attempt.failed_run.pull_request_number
    try:
        pull = provider.pull_request_head(repo, number) if number else None
        current = provider.branch_head(repo, state.branch) if pull else None
    except CicdError as exc:
        return None, f"the pull request of the failed run could not be read: {exc}"
    why = branches.pr_branch_refusal(pull, state.branch, state.head_sha, current)
    if why is None:
        try:
            check_safe(attempt, state.branch)
        except SafetyError as exc:
            why = str(exc)
    return (pull, None) if why is None else (None, why)


def publish_on_pr_branch(
    attempt: Attempt, pull: PullHead, repairs: list[Repair], report: str
) -> Published:
    """Push the repairs onto the pull request's branch (a fast-forward, never forced), set
    a pending status on the fix and put the report on the pull request."""
    state, provider, repo = attempt.state, attempt.provider, attempt.repository
    revert = any(r.kind is RepairKind.REVERT for r in repairs)
    with attempt.fixed_workspace(repairs) as ws:
        sha = provider.push_branch(repo, str(ws.path), pull.branch)
    provider.set_commit_status(
        repo,
        sha,
        CombinedState.PENDING,
        f"attempt {attempt.number}: waiting for CI on the fix",
    )
    key = key_of(attempt)
    report_marker = marker(key, state.session_id, "report", attempt.number)
    provider.comment(
        repo, pull.number, report_marker + "\n" + safe_body(attempt, report), report_marker
    )
    expected = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
        seconds=attempt.config.ci_no_run_grace
    )
    return Published(
        kind=RepairKind.REVERT if revert else RepairKind.CHANGE,
        branch=pull.branch,
        sha=sha,
        notes=[
            f"committed onto the branch of pull request #{pull.number} "
            "(commit_to_pr_branch; a fast-forward of the failing commit)"
        ],
        ci_expected_by=expected.isoformat(timespec="seconds"),
    )
