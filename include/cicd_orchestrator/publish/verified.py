"""Acting on CI's verdict on a published fix's pull request (``session.follow_up`` decides):
a CI-verified draft is marked ready for review when CI is green, or closed with a comment
saying the real CI rejected it; a fix whose branch gets no CI at all says so in a comment.
Each write carries its marker (a retried task does nothing twice); a hosting that refuses is
noted and the session goes on."""

from __future__ import annotations

import logging

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.models import AttemptRecord, CIState
from cicd_orchestrator.publish.markers import marker
from cicd_orchestrator.publish.text import BODY_RESERVE, report_link, safe_markdown
from cicd_orchestrator.session.verify import DraftFollowUp

log = logging.getLogger(__name__)


def follow_up_text(action: DraftFollowUp, ci: CIState, attempt: int) -> str:
    """What the comment on the pull request says (made safe by the caller)."""
    if action is DraftFollowUp.READY:
        return (
            f"The real CI is green on this fix (attempt {attempt}): it could not be validated "
            "on the orchestrator's machine, and CI has now verified it. Marked ready for review."
        )
    if action is DraftFollowUp.CLOSE:
        failed = ", ".join(ci.signatures) or "see the CI run"
        return (
            f"The real CI rejected this fix (attempt {attempt}): {ci.detail}. Failed: {failed}. "
            "The orchestrator closes this draft and escalates to its next attempt."
        )
    return (
        f"No CI ran on this fix (attempt {attempt}): {ci.detail}. The fix could not be verified, "
        "so the orchestrator escalates at once instead of waiting for CI."
    )


def act_on_verdict(
    provider: CIProvider,
    record: AttemptRecord,
    action: DraftFollowUp,
    ci: CIState,
    where: tuple[str, str, str | None],
    key: bytes | None,
) -> list[str]:
    """Do ``action`` to the pull request of ``record`` (``where``: the repository, the
    session id and Airflow's base URL for the report link); what was done, as notes."""
    repo, session_id, base_url = where
    published = record.published
    pr = published.pull_request if published else None
    if pr is None:
        return []
    mark = marker(key, session_id, f"ci-{action.value}", record.attempt)
    text = safe_markdown(
        follow_up_text(action, ci, record.attempt),
        limit=provider.body_limit - BODY_RESERVE,
        full_report=report_link(base_url, session_id),
    )
    body = mark + "\n" + text
    try:
        if action is DraftFollowUp.CLOSE:
            provider.close_pull_request(repo, pr.number, body, mark)
            pr.state = "closed"
            return [f"the real CI rejected the draft pull request {pr.url}: closed"]
        provider.comment(repo, pr.number, body, mark)
        if action is DraftFollowUp.READY:
            pr.draft = provider.mark_ready_for_review(repo, pr.number).draft
            return [f"the real CI verified the fix: {pr.url} is ready for review"]
    except CicdError as exc:
        log.warning("could not act on pull request %s: %s", pr.number, exc)
        return [f"could not update the pull request {pr.url} after CI: {exc}"]
    return [f"no CI ran on the fix: said so on {pr.url}"]
