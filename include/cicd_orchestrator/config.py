"""Configuration: the seed's defaults, overridden per deployment by a JSON Airflow Variable.

``load_config`` is pure: the Airflow glue reads the Variable ``cicd_orchestrator_config`` and
passes its JSON here; DAG params override per run through ``OrchestratorConfig.with_overrides``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.exceptions import ConfigError

CONFIG_VARIABLE = "cicd_orchestrator_config"

DEFAULT_RETRY_STRATEGY = {
    "attempt_1": Strategy.STANDARD_PARALLEL_FIXING.value,
    "attempt_2": Strategy.EXTENDED_ANALYSIS.value,
    "attempt_3": Strategy.SEQUENTIAL_FIXING.value,
    "attempt_4": Strategy.MANUAL_INTERVENTION.value,
    "attempt_5": Strategy.EMERGENCY_ROLLBACK.value,
}

ALL_FIXERS = (
    "rerun",
    "flaky-test",
    "quarantine",
    "ruff-fix",
    "ruff-format",
    "pre-commit",
    "black",
    "isort",
    "prettier",
    "eslint",
    "add-requirement",
    "pin-dependency",
    "manifest",
    "k8s-schema",
    "upgrade-action",
    "invalid-workflow",
    "missing-access",
    "workflow-path",
    "revert",
    "llm-patch",
)


@dataclass(frozen=True)
class WatchedRepository:
    """A repository (and branches) the sweep looks at."""

    repository: str
    branches: tuple[str, ...] = ("main",)
    provider: str = "local"


@dataclass(frozen=True)
class OrchestratorConfig:
    """Every setting of the orchestrator, with the seed's defaults."""

    # orchestration_config (seed)
    persistence_mode: str = "continuous"
    max_attempts: int = 5
    sleep_intervals: tuple[float, ...] = (30, 45, 60, 90, 120)
    strategy_escalation: bool = True
    state_tracking: bool = True
    monitor_until_green: bool = True
    failure_threshold: int = 3
    # retry_strategy (seed)
    retry_strategy: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RETRY_STRATEGY))
    # scaling of every delay (tests and benchmarks scale down through configuration only)
    delay_scale: float = 1.0
    ci_poll_interval: float = 10.0
    ci_timeout: float = 3600.0
    # providers
    default_provider: str = "local"
    local_ci_root: str | None = None
    local_ci_secrets: Mapping[str, str] = field(default_factory=dict)
    # sweep
    watched_repositories: tuple[WatchedRepository, ...] = ()
    # publishing and safety
    protected_branch_patterns: tuple[str, ...] = ("main", "master", "release/*", "production")
    fix_branch_prefix: str = "cicd-fix/"
    commit_to_pr_branch: bool = False
    rollback_policy: str = "execute"  # execute | plan
    enabled_fixers: tuple[str, ...] = ALL_FIXERS
    cancelled_is_failure: bool = False
    # repository commands
    job_timeout_minutes: float = 20.0
    output_cap_bytes: int = 20_000_000
    # namespaces around repository commands: auto | required | off (cicd_orchestrator.sandbox;
    # the environment variable CICD_COMMAND_SANDBOX overrides it)
    command_sandbox: str = "auto"
    flaky_local_reruns: int = 5
    max_ci_reruns: int = 4
    flaky_reruns_per_attempt: int = 2
    # quarantining flaky tests (a skip marker or the repository's skip list) as a proposal
    quarantine_flaky: bool = False
    # connections of the other CI providers
    github_conn_id: str = "github_default"
    gitlab_conn_id: str = "gitlab_default"
    jenkins_conn_id: str = "jenkins_default"
    jenkins_hosting: str = "github"  # where the repositories Jenkins builds live
    jenkins_jobs: Mapping[str, str] = field(default_factory=dict)  # repository -> job name
    jenkins_script_path: str | None = None
    # optional LLM connection (apache-airflow-providers-common-ai), used by strategy 2
    llm_conn_id: str | None = None

    # ------------------------------------------------------------------ derived values
    def strategy_for_attempt(self, attempt: int) -> Strategy:
        key = f"attempt_{attempt}"
        if key in self.retry_strategy:
            return Strategy(self.retry_strategy[key])
        return Strategy.EMERGENCY_ROLLBACK

    def delay_after_attempt(self, attempt: int) -> float:
        """Seconds to wait after attempt ``attempt`` failed, before the next one."""
        intervals = self.sleep_intervals or (0,)
        base = intervals[min(attempt, len(intervals)) - 1] if attempt >= 1 else intervals[0]
        return float(base) * self.delay_scale

    def is_protected(self, branch: str, extra: list[str] | tuple[str, ...] = ()) -> bool:
        patterns = tuple(self.protected_branch_patterns) + tuple(extra)
        return any(fnmatch.fnmatchcase(branch, p) for p in patterns)

    def local_root(self) -> Path:
        root = self.local_ci_root or os.environ.get("CICD_LOCAL_ROOT")
        if root:
            return Path(root)
        home = os.environ.get("AIRFLOW_HOME")
        base = Path(home) if home else Path.cwd()
        return base / "local-ci"

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> OrchestratorConfig:
        if not overrides:
            return self
        merged = to_mapping(self)
        merged.update(overrides)
        return load_config(merged)


_FIELDS = {f.name: f for f in dataclasses.fields(OrchestratorConfig)}


def to_mapping(config: OrchestratorConfig) -> dict[str, Any]:
    """The configuration as a JSON-able mapping (the shape of the Variable)."""
    from cicd_orchestrator.serde import to_json_obj

    data: dict[str, Any] = to_json_obj(config)
    return data


def _coerce_watched(value: Any) -> tuple[WatchedRepository, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError("watched_repositories must be a list")
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(WatchedRepository(repository=item))
            continue
        if not isinstance(item, Mapping) or "repository" not in item:
            raise ConfigError(f"watched repository entry needs a 'repository': {item!r}")
        branches = item.get("branches", ["main"])
        if isinstance(branches, str):
            branches = [branches]
        out.append(
            WatchedRepository(
                repository=str(item["repository"]),
                branches=tuple(str(b) for b in branches),
                provider=str(item.get("provider", "local")),
            )
        )
    return tuple(out)


def _coerce(name: str, value: Any) -> Any:  # noqa: C901 - one branch per field kind
    default = getattr(OrchestratorConfig(), name)
    if name == "watched_repositories":
        return _coerce_watched(value)
    if name == "retry_strategy":
        if not isinstance(value, Mapping):
            raise ConfigError("retry_strategy must be a mapping of attempt_N to a strategy")
        valid = {s.value for s in Strategy}
        for key, strategy in value.items():
            if strategy not in valid:
                raise ConfigError(f"retry_strategy.{key}: unknown strategy {strategy!r}")
        return dict(value)
    if name in ("local_ci_secrets", "jenkins_jobs"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a mapping")
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, not {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, not {value!r}")
        return type(default)(value)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list")
        return tuple(value)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def load_config(overrides: Mapping[str, Any] | None = None) -> OrchestratorConfig:
    """Defaults updated by ``overrides``; unknown keys and wrong types are clear errors."""
    if overrides is None:
        return OrchestratorConfig()
    if not isinstance(overrides, Mapping):
        raise ConfigError("the configuration must be a JSON object")
    kwargs: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown configuration key {key!r}")
        kwargs[key] = _coerce(key, value)
    config = OrchestratorConfig(**kwargs)
    _validate(config)
    return config


def _validate(config: OrchestratorConfig) -> None:
    if not 1 <= config.max_attempts <= 10:
        raise ConfigError("max_attempts must be between 1 and 10")
    if any(s < 0 for s in config.sleep_intervals):
        raise ConfigError("sleep_intervals must not be negative")
    if config.delay_scale < 0:
        raise ConfigError("delay_scale must not be negative")
    if config.rollback_policy not in ("execute", "plan"):
        raise ConfigError("rollback_policy must be 'execute' or 'plan'")
    if config.command_sandbox not in ("auto", "required", "off"):
        raise ConfigError("command_sandbox must be 'auto', 'required' or 'off'")
    if not config.fix_branch_prefix or config.is_protected(config.fix_branch_prefix + "x"):
        raise ConfigError("fix_branch_prefix must not fall under a protected branch pattern")
    unknown = set(config.enabled_fixers) - set(ALL_FIXERS)
    if unknown:
        raise ConfigError(f"unknown fixers: {sorted(unknown)}")
