"""Publishing what an attempt validated: a change or a revert (fix branch and pull request),
a CI re-run, or the escalation issue; nothing unvalidated is ever published."""

from __future__ import annotations

from cicd_orchestrator.attempt import CODE_CHANGES, Attempt
from cicd_orchestrator.constants import RepairKind, RollbackPolicy
from cicd_orchestrator.models import Published
from cicd_orchestrator.publish.change import publish_change
from cicd_orchestrator.publish.issue import publish_issue
from cicd_orchestrator.publish.rerun import publish_rerun
from cicd_orchestrator.report import render_report


def publish_attempt(attempt: Attempt) -> Published:
    """Publish the attempt's validated repairs (change, revert, re-run or issue)."""
    record = attempt.record
    if attempt.repairs(frozenset({RepairKind.ISSUE})):
        return publish_issue(attempt)
    changes = attempt.repairs(CODE_CHANGES)
    if changes:
        if not (record.validation and record.validation.publishable):
            return Published(notes=["the repair failed validation and was not published"])
        reverting = any(r.kind is RepairKind.REVERT for r in changes)
        if reverting and attempt.config.rollback_policy is RollbackPolicy.PLAN:
            return Published(notes=["rollback prepared as a plan only (rollback_policy=plan)"])
        return publish_change(attempt, changes, render_report(attempt.state))
    if attempt.repairs(frozenset({RepairKind.RERUN})):
        return publish_rerun(attempt.provider, attempt.state)
    return Published(notes=["no repair applies: escalating"])
