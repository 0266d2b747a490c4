from __future__ import annotations

import pytest

from cicd_orchestrator.config import OrchestratorConfig, load_config, to_mapping
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.exceptions import ConfigError


def test_defaults_are_the_seed():
    config = load_config()
    assert config.max_attempts == 5
    assert config.sleep_intervals == (30, 45, 60, 90, 120)
    assert [config.strategy_for_attempt(n) for n in range(1, 6)] == list(Strategy)
    assert config.failure_threshold == 3


def test_variable_overrides_and_delay_scale():
    config = load_config({"max_attempts": 3, "delay_scale": 0.1, "sleep_intervals": [10, 20]})
    assert config.max_attempts == 3
    assert config.delay_after_attempt(1) == pytest.approx(1.0)
    assert config.delay_after_attempt(2) == pytest.approx(2.0)
    assert config.delay_after_attempt(7) == pytest.approx(2.0)  # the last interval repeats


@pytest.mark.parametrize(
    "bad",
    [
        {"nope": 1},
        {"max_attempts": "five"},
        {"max_attempts": 0},
        {"monitor_until_green": "yes"},
        {"retry_strategy": {"attempt_1": "pray"}},
        {"rollback_policy": "always"},
        {"fix_branch_prefix": "release/"},
        {"watched_repositories": [{"branches": ["main"]}]},
        {"enabled_fixers": ["magic"]},
    ],
)
def test_invalid_overrides_are_clear_errors(bad):
    with pytest.raises(ConfigError):
        load_config(bad)


def test_round_trip_through_the_variable_shape():
    config = load_config(
        {"watched_repositories": ["acme/shop", {"repository": "acme/api", "branches": "dev"}]}
    )
    again = load_config(to_mapping(config))
    assert again == config
    assert again.watched_repositories[1].branches == ("dev",)


def test_protected_patterns():
    config = OrchestratorConfig()
    for branch in ("main", "master", "release/1.2", "production"):
        assert config.is_protected(branch)
    assert not config.is_protected("cicd-fix/main-run1-attempt1")
    assert config.is_protected("develop", extra=["develop"])


def test_a_run_may_set_only_its_pacing_and_limits():
    deployment = load_config({"command_sandbox": "required", "protected_branch_patterns": ["main"]})
    session = deployment.with_run_overrides({"max_attempts": 2, "delay_scale": 0.1})
    assert (session.max_attempts, session.delay_scale) == (2, 0.1)
    assert session.command_sandbox is deployment.command_sandbox
    for key, value in [
        ("command_sandbox", "off"),
        ("protected_branch_patterns", []),
        ("github_conn_id", "someone_elses"),
        ("local_ci_secrets", {"TOKEN": "x"}),
        ("jenkins_hosting", "gitlab"),
        ("enabled_fixers", ["llm-patch"]),
        ("watched_repositories", ["evil/repo"]),
    ]:
        with pytest.raises(ConfigError, match=f"{key} may be set only by the deployment"):
            deployment.with_run_overrides({key: value})
