"""A job whose test reads a secret that is not configured, run for real on the local CI:
the log says a test failed, the workflow and the log together say the secret is missing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from cicd_devkit.scenarios import materialize

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import FailureCategory, Strategy
from cicd_orchestrator.stages import classification, discovery

NOW = "2026-01-01T00:00:00+00:00"

WORKFLOW = """\
name: CI
on: [push]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Client check
        run: python check_client.py
        env:
          SERVICE_API_KEY: ${{ secrets.SERVICE_API_KEY }}
"""

CHECK = """\
import os

key = os.environ["SERVICE_API_KEY"]
assert key.startswith("sk-"), f"unexpected key format: {key!r}"
print("client configured")
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _attempt(tmp_path: Path, secrets: dict[str, str]) -> Attempt:
    scenario = tmp_path / "scenario"
    _write(
        scenario,
        {
            "scenario.yaml": textwrap.dedent(
                """\
                category: configuration
                failing_jobs: [check]
                expect: {outcome: escalated}
                """
            ),
            "commits/01-initial/README.md": "client\n",
            "commits/02-client/.github/workflows/ci.yml": WORKFLOW,
            "commits/02-client/check_client.py": CHECK,
        },
    )
    provider = LocalProvider(tmp_path / "ci")
    for name, value in secrets.items():
        provider.set_secret(name, value)
    made = materialize(scenario, provider, "acme/client")
    assert made.head_run is not None
    config = load_config({"local_ci_root": str(tmp_path / "ci")})
    state = session.new_session("local", made.head_run, config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return Attempt(state, 1, config, provider, cache_dir=tmp_path / "cache")


def test_a_test_failing_on_an_unset_secret_is_escalated_naming_it(tmp_path: Path) -> None:
    attempt = _attempt(tmp_path, {})
    attempt.state.failures = discovery.detect_failures(attempt, {})
    (found,) = attempt.state.failures
    assert found.category is FailureCategory.TEST  # what the log alone says
    (failure,) = classification.classify_failures(attempt, {})
    assert failure.category is FailureCategory.CONFIGURATION
    assert failure.recipe == "escalate-secret" and failure.confidence >= 0.9
    assert failure.captures["secret"] == "SERVICE_API_KEY"
    assert failure.captures["secret_line"] == ".github/workflows/ci.yml:11"
    assert "SERVICE_API_KEY" in failure.message
    assert any(n.startswith("classified from the log as test") for n in failure.notes)


@pytest.mark.parametrize("value", ["wrong-format"])
def test_a_set_secret_leaves_the_test_failure_alone(tmp_path: Path, value: str) -> None:
    attempt = _attempt(tmp_path, {"SERVICE_API_KEY": value})
    attempt.state.failures = discovery.detect_failures(attempt, {})
    (failure,) = classification.classify_failures(attempt, {})
    assert failure.category is FailureCategory.TEST
    assert failure.recipe != "escalate-secret"
