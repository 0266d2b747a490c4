"""The fix pull request of a push names every failed run it repairs."""

from __future__ import annotations

from cicd_devkit import builders

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.publish.change import pull_request_text


def _attempt(*joined: int) -> Attempt:
    state = builders.new_state()
    for run_id in joined:
        session.join_run(state, builders.failed_run(run_id))
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, builders.NOW)
    return Attempt(state, 1, load_config(), provider=None)  # type: ignore[arg-type]


def test_one_failed_run():
    assert "failing CI run 7 of `main`" in pull_request_text(_attempt(), [])


def test_every_failed_workflow_of_the_push():
    assert "failing CI runs 7, 8, 9 of `main`" in pull_request_text(_attempt(8, 9), [])
