"""Fixtures of the unit tests: an attempt of a session on the lint-failure example in the
local CI provider (no Airflow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cicd_devkit.scenarios import MaterializedScenario
from cicd_devkit.worlds import MARKER_KEY, start_world

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Strategy

NOW = "2026-01-01T00:00:00+00:00"


@dataclass
class LintAttempt:
    attempt: Attempt
    provider: LocalProvider
    made: MaterializedScenario

    def on(self, provider: LocalProvider) -> Attempt:
        """The same attempt through another provider (a broken one, say)."""
        a = self.attempt
        return Attempt(a.state, a.number, a.config, provider, cache_dir=a.cache_dir)


@pytest.fixture
def lint_attempt(tmp_path: Path) -> LintAttempt:
    """Attempt 1 of a session on the lint-failure example (as ``acme/shipping``), whose head
    run failed."""
    world = start_world("local", tmp_path)
    provider, made = world.local, world.made
    config = load_config({"local_ci_root": str(provider.root), "marker_key": MARKER_KEY})
    state = session.new_session("local", made.head_run, config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    attempt = Attempt(state, 1, config, provider, cache_dir=tmp_path / "cache")
    return LintAttempt(attempt, provider, made)
