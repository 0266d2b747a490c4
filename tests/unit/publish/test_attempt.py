"""A whole attempt on the local provider without Airflow: the stages in order, one validated
fix published once, the branch-safety rule of publishing."""

from __future__ import annotations

import pytest

from cicd_orchestrator import session
from cicd_orchestrator.constants import CombinedState, RepairKind
from cicd_orchestrator.exceptions import SafetyError
from cicd_orchestrator.publish.attempt import publish_attempt
from cicd_orchestrator.publish.change import check_branch_safe
from cicd_orchestrator.stages import classification, discovery, fixing, monitoring
from cicd_orchestrator.validation import replay


def test_a_whole_attempt_publishes_a_validated_fix_once(lint_attempt):
    attempt, provider, made = lint_attempt.attempt, lint_attempt.provider, lint_attempt.made
    state = attempt.state
    session.fold_discovery(
        state, 1, 0.0, discovery.detect_failures(attempt, {}), discovery.analyse_context(attempt)
    )
    assert state.context.culprit_sha == made.head_sha
    session.fold_classification(
        state,
        1,
        0.0,
        classification.classify_failures(attempt, {}),
        classification.map_dependencies(attempt),
    )
    outcome = fixing.merge_repairs(attempt, fixing.fix_group(attempt, "quality"))
    assert [r.fixer for r in outcome.repairs] == ["ruff-fix"] and not outcome.notes
    session.fold_fixing(state, 1, 0.0, outcome.repairs, [], outcome.notes)
    validation = replay.validate_fixes(attempt, outcome.repairs)
    assert validation.reproduced and validation.passed
    regression = replay.regression_run(attempt, outcome.repairs)
    assert regression.regression_passed
    assert session.fold_validation(state, 1, 0.0, validation, regression)
    first = publish_attempt(attempt)
    again = publish_attempt(attempt)  # a retried task
    assert first.kind is RepairKind.CHANGE and first.sha == again.sha
    assert first.pull_request.number == again.pull_request.number
    assert len(provider.list_pull_requests(state.repository)) == 1
    assert len(provider.list_comments(state.repository, first.pull_request.number)) == 1
    assert provider.branch_sha(state.repository, "main") == made.head_sha
    status = provider.wait_for_ref(state.repository, first.sha, timeout=120)
    assert status.state is CombinedState.SUCCESS
    ci = monitoring.ci_state(provider, state.repository, state.head_sha, first)
    assert ci.done and ci.green


def test_publishing_refuses_protected_branches(lint_attempt):
    attempt = lint_attempt.attempt
    for branch in ("main", "release/1.0", "production", attempt.branch):
        with pytest.raises(SafetyError):
            check_branch_safe(attempt, branch)
    attempt.state.branch = "feature"
    with pytest.raises(SafetyError, match="commit_to_pr_branch"):
        check_branch_safe(attempt, "feature")
    check_branch_safe(attempt, "cicd-fix/x")


def test_nothing_to_publish_is_said_plainly(lint_attempt):
    attempt, provider = lint_attempt.attempt, lint_attempt.provider
    published = publish_attempt(attempt)
    assert published.kind is RepairKind.NONE and "no repair applies" in published.notes[0]
    ci = monitoring.ci_state(provider, attempt.repository, attempt.head_sha, published)
    assert ci.done and not ci.green
