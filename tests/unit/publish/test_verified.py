"""A fix the real CI verifies, through the local provider: published as a draft pull request
that says why, marked ready for review when CI is green on it, closed with a comment when CI
rejects it; a fix whose branch gets no CI is said to be so at once."""

from __future__ import annotations

import dataclasses
import datetime

from cicd_orchestrator import session
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import CombinedState, Conclusion, RepairKind
from cicd_orchestrator.models import CIState, JobResult, Published, PullRequest, ValidationResult
from cicd_orchestrator.publish.attempt import publish_attempt
from cicd_orchestrator.publish.markers import key_of
from cicd_orchestrator.publish.verified import act_on_verdict
from cicd_orchestrator.stages import classification, discovery, fixing, monitoring

WHY = "container: job without a container engine on this machine"


def _repaired(lint_attempt):
    attempt = lint_attempt.attempt
    state = attempt.state
    session.fold_discovery(state, 1, 0.0, discovery.detect_failures(attempt, {}))
    session.fold_classification(state, 1, 0.0, classification.classify_failures(attempt, {}))
    kept = fixing.merge_repairs(attempt, fixing.fix_group(attempt, "quality"))
    session.fold_fixing(state, 1, 0.0, kept.repairs, [], kept.notes)
    return attempt


def _not_replayable(attempt) -> ValidationResult:
    """What validation says of a job the engines could not replay here."""
    after = [JobResult("lint", Conclusion.FAILURE, "", 0.0, not_replayable=WHY)]
    return ValidationResult(failing_before=list(after), after=after, passed=False)


def test_a_ci_verified_fix_is_a_draft_until_ci_is_green(lint_attempt):
    attempt = _repaired(lint_attempt)
    provider, state = lint_attempt.provider, attempt.state
    regression = ValidationResult(regression_passed=True)
    assert not session.fold_validation(state, 1, 0.0, _not_replayable(attempt), regression)
    assert attempt.record.validation.ci_verified
    published = publish_attempt(attempt)
    assert published.kind is RepairKind.CHANGE and published.ci_verified
    assert published.ci_expected_by is not None
    pr = provider.get_pull_request(state.repository, published.pull_request.number)
    assert pr.draft and "Verified by the real CI" in pr.body
    assert f"lint: {WHY}" in pr.body and "marked ready for review" in pr.body
    session.fold_publish(state, 1, 0.0, published, "2026-01-01T00:00:00+00:00")

    provider.wait_for_ref(state.repository, published.sha, timeout=120)
    ci = monitoring.ci_state(provider, state.repository, state.head_sha, published)
    assert ci.done and ci.green
    action = session.follow_up(published, ci)
    assert action is session.DraftFollowUp.READY
    where = (state.repository, state.session_id, None)
    for _ in range(2):  # a retried task does nothing twice
        notes = act_on_verdict(provider, attempt.record, action, ci, where, key_of(attempt))
        assert "ready for review" in notes[0]
    pr = provider.get_pull_request(state.repository, pr.number)
    assert not pr.draft and pr.state == "open"
    (_report, ready) = provider.list_comments(state.repository, pr.number)
    assert "The real CI is green" in ready.body


def test_a_ci_verified_fix_the_real_ci_rejects_is_closed(lint_attempt):
    attempt = _repaired(lint_attempt)
    provider, state = lint_attempt.provider, attempt.state
    session.fold_validation(state, 1, 0.0, _not_replayable(attempt), None)
    published = publish_attempt(attempt)
    session.fold_publish(state, 1, 0.0, published, "2026-01-01T00:00:00+00:00")
    red = CIState(True, False, "CI on the fix: failure", ["lint"])
    action = session.follow_up(published, red)
    assert action is session.DraftFollowUp.CLOSE
    where = (state.repository, state.session_id, None)
    notes = act_on_verdict(provider, attempt.record, action, red, where, key_of(attempt))
    assert "rejected" in notes[0]
    pr = provider.get_pull_request(state.repository, published.pull_request.number)
    assert pr.state == "closed"
    assert any(
        "The real CI rejected" in c.body
        for c in provider.list_comments(state.repository, pr.number)
    )


def test_a_fix_that_fails_a_replayable_job_is_not_published(lint_attempt):
    attempt = _repaired(lint_attempt)
    failing = ValidationResult(
        passed=False,
        after=[
            JobResult("lint", Conclusion.FAILURE, not_replayable=WHY),
            JobResult("test", Conclusion.FAILURE),
        ],
    )
    session.fold_validation(attempt.state, 1, 0.0, failing, None)
    published = publish_attempt(attempt)
    assert published.kind is RepairKind.NONE and "failed validation" in published.notes[0]


def test_no_ci_on_the_fix_is_said_at_once(lint_attempt):
    attempt, provider = lint_attempt.attempt, lint_attempt.provider
    state = attempt.state
    never_built = "0" * 40
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    base = Published(
        RepairKind.CHANGE, "cicd-fix/x", never_built, None, ci_expected_by=past.isoformat()
    )
    ci = monitoring.ci_state(provider, state.repository, state.head_sha, base)
    assert ci.done and not ci.green and ci.no_ci and "ci_no_run_grace" in ci.detail
    later = (past + datetime.timedelta(hours=1)).isoformat()
    waiting = dataclasses.replace(base, ci_expected_by=later)
    ci = monitoring.ci_state(provider, state.repository, state.head_sha, waiting)
    assert not ci.done and not ci.no_ci
    status = provider.ref_status(state.repository, state.head_sha)
    assert status.state is CombinedState.FAILURE  # a commit with runs is never "no CI"


class _NoWorkflowRuns(LocalProvider):
    """A provider whose workflows start on no event of the fix branch."""

    def workflows_for(self, repo, sha, event="push", branch=None, base_branch=None, **_):
        self.asked = [*getattr(self, "asked", []), (event, branch, base_branch)]
        return []


def test_a_branch_no_workflow_runs_on_gets_no_ci_at_once(lint_attempt, tmp_path):
    state = lint_attempt.attempt.state
    provider = _NoWorkflowRuns(tmp_path / "ci")
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    pr = PullRequest(3, "cicd-fix/x", "main", "Fix", "local://3")
    published = Published(RepairKind.CHANGE, "cicd-fix/x", "0" * 40, pr, ci_expected_by=later)
    ci = monitoring.ci_state(provider, state.repository, state.head_sha, published)
    assert ci.done and ci.no_ci and "branch filters" in ci.detail
    assert provider.asked == [("push", "cicd-fix/x", None), ("pull_request", "cicd-fix/x", "main")]
