"""A repair published as a change: the fix branch (never the default or a protected branch),
its pull request into the failing branch, a commit status and the report comment (their text
made safe: ``publish.text``); the fix
pull requests of the session's earlier attempts that are still open are closed, each with a
comment naming the one that supersedes it."""

from __future__ import annotations

import datetime
import logging

from cicd_orchestrator import branches
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.constants import CombinedState, Conclusion, RepairKind
from cicd_orchestrator.exceptions import CicdError, SafetyError
from cicd_orchestrator.models import AttemptRecord, Published, PullRequest, Repair
from cicd_orchestrator.publish.markers import key_of, marker
from cicd_orchestrator.publish.owners import assign_owners
from cicd_orchestrator.publish.pr_branch import publish_on_pr_branch, pull_request_target
from cicd_orchestrator.publish.text import safe_body, safe_title
from cicd_orchestrator.session import session_runs

log = logging.getLogger(__name__)


def fix_branch_name(attempt: Attempt) -> str:
    """``cicd-fix/<failing branch>-run<id>-attempt<n>``: one branch per attempt."""
    state = attempt.state
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in state.branch)
    return (
        f"{attempt.config.fix_branch_prefix}{base}-run{state.pipeline_id}-attempt{attempt.number}"
    )


def check_branch_safe(attempt: Attempt, branch: str) -> None:
    """The branch-safety rule for a fix branch, and committing to the failing branch only
    when the configuration allows it."""
    provider, repo = attempt.provider, attempt.repository
    branches.check_push_allowed(
        repo,
        branch,
        provider.default_branch(repo),
        [*provider.protected_branches(repo), *attempt.config.protected_branch_patterns],
    )
    if branch == attempt.branch and not attempt.config.commit_to_pr_branch:
        raise SafetyError("committing to the failing branch needs commit_to_pr_branch")


def publish_change(attempt: Attempt, repairs: list[Repair], report: str) -> Published:
    """Push the repairs to the fix branch, open (or update) its pull request (a draft when a
    repair asks for one), set a pending status on the fix and put the report on the pull
    request."""
    state, provider, repo = attempt.state, attempt.provider, attempt.repository
    verified_by_ci = ci_verified(attempt)
    draft = verified_by_ci or any(r.draft for r in repairs)
    refused = None
    if attempt.config.commit_to_pr_branch and not draft:
        pull, refused = pull_request_target(attempt, check_branch_safe)
        if pull is not None:
            return publish_on_pr_branch(attempt, pull, repairs, report)
    branch = fix_branch_name(attempt)
    check_branch_safe(attempt, branch)
    revert = any(r.kind is RepairKind.REVERT for r in repairs)
    with attempt.fixed_workspace(repairs) as ws:
        sha = provider.push_branch(repo, str(ws.path), branch)
    title_kind = "Revert the culprit" if revert else "Fix CI"
    title = safe_title(
        f"{title_kind} of {state.branch} run {state.pipeline_id} (attempt {attempt.number})"
    )
    key = key_of(attempt)
    pr_marker = marker(key, state.session_id, "pull-request", attempt.number)
    body = pr_marker + "\n" + safe_body(attempt, pull_request_text(attempt, repairs))
    pr = provider.open_or_update_pull_request(
        repo, branch, state.branch, title, body, pr_marker, draft=draft
    )
    provider.set_commit_status(
        repo,
        sha,
        CombinedState.PENDING,
        f"attempt {attempt.number}: waiting for CI on the fix",
    )
    report_marker = marker(key, state.session_id, "report", attempt.number)
    report_body = report_marker + "\n" + safe_body(attempt, report)
    provider.comment(repo, pr.number, report_body, report_marker)
    notes = close_superseded(attempt, pr, key)
    notes.extend(assign_owners(attempt, pr.number, changed_paths(attempt, repairs), review=True))
    if verified_by_ci:
        notes.insert(0, "published as a draft: the real CI verifies this fix")
    if refused:
        notes.insert(0, f"not committed onto the pull request's branch: {refused}")
    kind = RepairKind.REVERT if revert else RepairKind.CHANGE
    expected = datetime.datetime.now(datetime.UTC) + datetime.timedelta(
        seconds=attempt.config.ci_no_run_grace
    )
    return Published(
        kind=kind,
        branch=branch,
        sha=sha,
        pull_request=pr,
        notes=notes,
        ci_verified=verified_by_ci,
        ci_expected_by=expected.isoformat(timespec="seconds"),
    )


def changed_paths(attempt: Attempt, repairs: list[Repair]) -> list[str]:
    """The files the repairs change (a revert: the files of the commits it reverts)."""
    paths = {f for r in repairs for f in r.files}
    reverted = {sha for r in repairs for sha in r.revert_shas}
    context = attempt.state.context
    if reverted and context:
        paths.update(f for c in context.commits if c.sha in reverted for f in c.files)
    return sorted(paths)


def ci_verified(attempt: Attempt) -> bool:
    """Whether the attempt's fix is one the real CI verifies (a draft until CI is green)."""
    validation = attempt.record.validation
    return bool(validation and validation.ci_verified)


def pull_request_text(attempt: Attempt, repairs: list[Repair]) -> str:
    """What the pull request says (made safe by the caller): the run it repairs, the
    repairs, one line each, and for a fix the real CI verifies, why and what happens next."""
    state = attempt.state
    runs = session_runs(state)
    which = f"run {runs[0]}" if len(runs) == 1 else f"runs {', '.join(map(str, runs))}"
    lines = [
        f"The orchestrator repaired the failing CI {which} of "
        f"`{state.branch}` ({state.head_sha[:12]}).",
        "",
        *[
            f"- {' '.join(r.description.split())} ({r.fixer}, confidence {r.confidence:.2f})"
            for r in repairs
        ],
    ]
    validation = attempt.record.validation
    if validation and validation.ci_verified:
        lines.extend(["", *ci_verified_text(validation.not_replayable)])
    return "\n".join(lines)


def ci_verified_text(not_replayable: list[str]) -> list[str]:
    """Why a fix is a draft the real CI verifies: the jobs that could not be replayed."""
    if not not_replayable:
        return [
            "**Verified by the real CI.** The deployment's policy has every fix verified by "
            "the real CI (`ci_verified_fixes: always`), besides its local validation.",
            "",
            "This pull request stays a draft until CI is green on it; then it is marked ready "
            "for review. If CI fails on it, the orchestrator closes it and escalates.",
        ]
    return [
        "**Verified by the real CI.** These jobs could not be replayed on the orchestrator's "
        "machine, so local validation could not check the fix against them:",
        "",
        *[f"- {' '.join(item.split())}" for item in not_replayable],
        "",
        "The real CI decides: this pull request stays a draft until CI is green on it; then "
        "it is marked ready for review. If CI fails on it, the orchestrator closes it and "
        "escalates.",
    ]


def close_superseded(attempt: Attempt, pr: PullRequest, key: bytes | None) -> list[str]:
    """Close the fix pull requests of the session's earlier attempts (those still open), each
    with a comment naming ``pr``, which supersedes them; what was done, as notes. A pull
    request that cannot be closed is noted; publishing goes on."""
    state, provider, repo = attempt.state, attempt.provider, attempt.repository
    notes = []
    for record in state.attempt_history:
        old = record.published.pull_request if record.published else None
        if record.attempt >= attempt.number or old is None or old.number == pr.number:
            continue
        why = (
            f"Superseded by the pull request of attempt {attempt.number} of this session: "
            f"{pr.url} (number {pr.number}). The orchestrator closes this one."
        )
        mark = marker(key, state.session_id, "superseded", record.attempt)
        try:
            provider.close_pull_request(repo, old.number, mark + "\n" + why, mark)
        except CicdError as exc:
            log.warning("could not close the pull request of attempt %s: %s", record.attempt, exc)
            notes.append(f"the pull request of attempt {record.attempt} stays open: {exc}")
        else:
            notes.append(f"closed the pull request of attempt {record.attempt}: superseded")
    return notes


def set_unwatched_status(provider: CIProvider, repo: str, record: AttemptRecord) -> None:
    """The orchestrator's commit status on the fix when the session ends without watching CI
    (``monitor_until_green`` false): its own part is done, CI's verdict is CI's own checks
    (best effort, as :func:`set_final_status`)."""
    published = record.published
    if published is None or not published.sha:
        return
    try:
        provider.set_commit_status(
            repo,
            published.sha,
            CombinedState.SUCCESS,
            f"attempt {record.attempt}: fix published; CI not watched (monitor_until_green)",
        )
    except CicdError as exc:
        log.warning("could not set the commit status: %s", exc)


def set_final_status(provider: CIProvider, repo: str, record: AttemptRecord) -> None:
    """The orchestrator's commit status on the fix once CI has spoken (best effort: a
    failure is logged, the session goes on)."""
    published = record.published
    if published is None or not published.sha:
        return
    green = record.ci_conclusion is Conclusion.SUCCESS
    try:
        provider.set_commit_status(
            repo,
            published.sha,
            CombinedState.SUCCESS if green else CombinedState.FAILURE,
            f"attempt {record.attempt}: CI {'green' if green else 'red'} on the fix",
        )
    except CicdError as exc:
        log.warning("could not set the commit status: %s", exc)
