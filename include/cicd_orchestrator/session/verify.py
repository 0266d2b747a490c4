"""What becomes of a published fix's pull request once CI has spoken (pure): a fix the real
CI verifies is a draft until then: ready for review when CI is green, closed when CI is red;
a fix whose branch gets no CI at all is said to be so on its pull request."""

from __future__ import annotations

import enum

from cicd_orchestrator.models import CIState, Published


class DraftFollowUp(enum.StrEnum):
    """What the monitor does to the pull request of the published fix."""

    READY = "ready"  # the real CI is green on a CI-verified draft: ready for review
    CLOSE = "close"  # the real CI rejected a CI-verified draft: closed, with why
    NO_CI = "no_ci"  # no CI ran on the fix: said on the pull request


def follow_up(published: Published | None, ci: CIState) -> DraftFollowUp | None:
    """What to do to the fix's pull request after CI's verdict ``ci`` (None: nothing)."""
    if published is None or published.pull_request is None or ci.gone:
        return None
    if ci.no_ci:
        return DraftFollowUp.NO_CI
    if not published.ci_verified or not ci.done:
        return None
    return DraftFollowUp.READY if ci.green else DraftFollowUp.CLOSE
