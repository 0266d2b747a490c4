from __future__ import annotations

import pytest

from cicd_orchestrator.config import OrchestratorConfig, load_config, to_mapping
from cicd_orchestrator.constants import PersistenceMode, Strategy
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


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("persistence_mode", "forever", "persistence_mode must be one of 'oneshot', 'continuous'"),
        ("failure_threshold", 0, "failure_threshold must be a whole number of at least 1"),
        ("failure_threshold", True, "failure_threshold must be a whole number"),
        ("monitor_until_green", "no", "monitor_until_green must be true or false"),
        ("retry_strategy", {"attempt_11": "standard-parallel-fixing"}, "attempt_1 ... attempt_10"),
        ("retry_strategy", {"first": "standard-parallel-fixing"}, "'first' is not one of"),
        ("retry_strategy", {"attempt_1": "pray"}, "unknown strategy 'pray' \\(one of"),
    ],
)
def test_the_seed_settings_are_validated(key, value, says):
    with pytest.raises(ConfigError, match=says):
        load_config({key: value})


def test_persistence_modes_and_the_attempts_they_allow():
    assert load_config().persistence_mode is PersistenceMode.CONTINUOUS
    assert load_config().attempts_allowed == 5
    assert load_config({"persistence_mode": "oneshot"}).attempts_allowed == 1
    adaptive = load_config({"persistence_mode": "adaptive", "max_attempts": 4})
    assert adaptive.persistence_mode is PersistenceMode.ADAPTIVE
    assert adaptive.attempts_allowed == 4


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("state_tracking", "always kept, in its Variable cicd_session__"),
        ("flaky_reruns_per_attempt", "use failure_threshold"),
    ],
)
@pytest.mark.parametrize("value", [True, False, 2])
def test_removed_settings_say_what_replaces_them(key, names, value):
    with pytest.raises(ConfigError, match=f"{key} is no longer a setting: .*{names}"):
        load_config({key: value})
    with pytest.raises(ConfigError, match=f"{key} is no longer a setting"):
        load_config().with_run_overrides({key: value})


def test_cancelled_runs_count_as_failures_by_default_as_in_the_seed():
    assert load_config().cancelled_is_failure is True
    assert load_config({"cancelled_is_failure": False}).cancelled_is_failure is False


def test_a_partial_retry_strategy_changes_only_the_attempts_it_names():
    config = load_config({"retry_strategy": {"attempt_1": "extended-analysis-with-context"}})
    assert config.strategy_for_attempt(1) is Strategy.EXTENDED_ANALYSIS
    assert config.strategy_for_attempt(2) is Strategy.EXTENDED_ANALYSIS
    assert config.strategy_for_attempt(3) is Strategy.SEQUENTIAL_FIXING
    # a run's partial mapping keeps the deployment's other attempts
    deployment = load_config({"retry_strategy": {"attempt_2": "sequential-fixing-with-validation"}})
    run = deployment.with_run_overrides(
        {"retry_strategy": {"attempt_1": "extended-analysis-with-context"}}
    )
    assert run.strategy_for_attempt(1) is Strategy.EXTENDED_ANALYSIS
    assert run.strategy_for_attempt(2) is Strategy.SEQUENTIAL_FIXING
    assert load_config(to_mapping(run)) == run


def test_a_run_may_set_how_its_session_persists():
    deployment = load_config()
    run = deployment.with_run_overrides(
        {"persistence_mode": "oneshot", "monitor_until_green": False, "failure_threshold": 1}
    )
    assert run.persistence_mode is PersistenceMode.ONESHOT
    assert (run.monitor_until_green, run.failure_threshold) == (False, 1)
