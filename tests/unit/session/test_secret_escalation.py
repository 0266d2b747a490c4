"""A failure that only a person can fix (a secret the failing step did not get) ends with the
escalation issue and is never rolled back, even with a culprit commit and rollbacks allowed."""

from __future__ import annotations

from cicd_devkit import builders

from cicd_orchestrator import session
from cicd_orchestrator.analysis.classify import classify
from cicd_orchestrator.analysis.secrets import apply_secret_evidence, find_missing_secrets
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Outcome, RepairKind, Strategy
from cicd_orchestrator.logs.analyze import analyze_text
from cicd_orchestrator.models import Context, Failure, Issue, Published, SessionState

NOW = builders.NOW

WORKFLOW = """\
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - name: Unit tests
        run: python -m pytest -q
        env:
          API_KEY: ${{ secrets.API_KEY }}
"""

LOG = "".join(
    f"2024-05-01T10:00:00.1234567Z {line}\n"
    for line in (
        "##[group]Run python -m pytest -q",
        "python -m pytest -q",
        "env:",
        "  API_KEY: ",
        "##[endgroup]",
        "E       KeyError: 'API_KEY'",
        "FAILED tests/test_client.py::test_fetch - KeyError: 'API_KEY'",
        "1 failed, 3 passed in 0.21s",
        "##[error]Process completed with exit code 1.",
    )
)


def _failure(with_evidence: bool) -> Failure:
    failure = classify("test", "Unit tests", analyze_text(LOG))
    if with_evidence:
        evidence = find_missing_secrets(WORKFLOW, "ci.yml", "test", "Unit tests", LOG.splitlines())
        failure = apply_secret_evidence(failure, evidence)
    return failure


def _run_session(failure: Failure) -> tuple[list[Strategy], Outcome, SessionState]:
    """Every attempt publishes what its strategy publishes and CI stays red."""
    config = load_config()  # rollbacks allowed by default
    state = builders.new_state(config)
    state.failures = [failure]
    state.context = Context(failing_sha="a" * 40, culprit_sha="b" * 40)
    strategies, number, strategy = [], 1, Strategy.STANDARD_PARALLEL_FIXING
    while True:
        strategies.append(strategy)
        session.start_attempt(state, number, strategy, NOW)
        published = Published(kind=RepairKind.CHANGE)
        if strategy is Strategy.MANUAL_INTERVENTION:
            published = Published(kind=RepairKind.ISSUE)
            published.issue = Issue(number=1, title="t", url="local://acme/shop/issues/1")
        elif strategy is Strategy.EMERGENCY_ROLLBACK:
            published = Published(kind=RepairKind.REVERT)
        session.record_published(state, number, published, NOW)
        session.record_ci_result(state, number, False, [], NOW)
        decision = session.decide(state, number, False, config)
        session.apply_decision(state, decision, NOW)
        if decision.action == "close":
            return strategies, decision.outcome, state
        number, strategy = decision.next_attempt or number + 1, decision.next_strategy or strategy


def test_without_the_evidence_a_test_failure_goes_on_to_the_rollback() -> None:
    failure = _failure(with_evidence=False)
    assert failure.recipe == "revert-culprit"
    strategies, _, _ = _run_session(failure)
    assert Strategy.EMERGENCY_ROLLBACK in strategies


def test_a_missing_secret_is_escalated_and_never_rolled_back() -> None:
    failure = _failure(with_evidence=True)
    assert failure.recipe == "escalate-secret" and failure.captures["secret"] == "API_KEY"
    strategies, outcome, state = _run_session(failure)
    assert strategies == [Strategy.STANDARD_PARALLEL_FIXING, Strategy.MANUAL_INTERVENTION]
    assert outcome is Outcome.ESCALATED
    assert Strategy.EMERGENCY_ROLLBACK not in strategies
    assert not any(
        r.published and r.published.kind is RepairKind.REVERT for r in state.attempt_history
    )


def test_symptoms_of_a_missing_secret_do_not_bring_the_rollback_back() -> None:
    root = _failure(with_evidence=True)
    symptom = _failure(with_evidence=False)
    symptom.job, symptom.root_cause, symptom.symptom_of = "deploy", False, "test"
    assert session.needs_person(_state_with([root, symptom]))
    assert not session.needs_person(_state_with([symptom]))


def _state_with(failures: list[Failure]) -> SessionState:
    state = builders.new_state(load_config())
    state.failures = failures
    return state
