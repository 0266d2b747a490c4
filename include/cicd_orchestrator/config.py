"""Configuration: the seed's defaults, overridden per deployment by a JSON Airflow Variable.

``load_config`` is pure: the Airflow glue reads the Variable ``cicd_orchestrator_config`` and
passes its JSON here; a DAG run's conf overrides the keys of :data:`RUN_KEYS` for its session
through ``OrchestratorConfig.with_run_overrides``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cicd_orchestrator import branches, egress, people
from cicd_orchestrator.constants import PersistenceMode, RollbackPolicy, SandboxMode, Strategy
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.people import NotificationTarget, Owners

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


#: what a DAG run's conf may set for its own session: pacing, attempts and limits. Everything
#: else (the command sandbox, protected branches, where fixes are published, connection ids,
#: secrets, the watched repositories, which fixers may run) only the deployment sets, in the
#: ``cicd_orchestrator_config`` Variable.
RUN_KEYS = frozenset(
    {
        "persistence_mode",
        "monitor_until_green",
        "failure_threshold",
        "max_attempts",
        "sleep_intervals",
        "strategy_escalation",
        "retry_strategy",
        "delay_scale",
        "ci_poll_interval",
        "ci_timeout",
        "job_timeout_minutes",
        "output_cap_bytes",
        "flaky_local_reruns",
        "max_ci_reruns",
        "quarantine_flaky",
    }
)


class CiVerifiedPolicy(enum.StrEnum):
    """When a fix goes out as a draft pull request for the real CI to verify."""

    #: when a failing job cannot be replayed on this machine (and nothing replayable failed)
    WHEN_NOT_REPLAYABLE = "when-not-replayable"
    #: every fix, even one that passed local validation (a policy of the deployment)
    ALWAYS = "always"
    #: never: a fix that could not be validated here is not published
    NEVER = "never"


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
    persistence_mode: PersistenceMode = PersistenceMode.CONTINUOUS
    max_attempts: int = 5
    sleep_intervals: tuple[float, ...] = (30, 45, 60, 90, 120)
    strategy_escalation: bool = True
    # false: the session ends once an attempt has published its repair (CI is not watched)
    monitor_until_green: bool = True
    # red CI verdicts in a row on an attempt's CI re-run of a flaky test before the monitor
    # escalates; each red verdict before that re-runs the failed jobs again
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
    protected_branch_patterns: tuple[str, ...] = branches.DEFAULT_PROTECTED_PATTERNS
    fix_branch_prefix: str = "cicd-fix/"
    commit_to_pr_branch: bool = False
    rollback_policy: RollbackPolicy = RollbackPolicy.EXECUTE
    enabled_fixers: tuple[str, ...] = ALL_FIXERS
    # a cancelled run opens a session, as the seed's failure triggers say
    cancelled_is_failure: bool = True
    # repository commands
    job_timeout_minutes: float = 20.0
    output_cap_bytes: int = 20_000_000
    # the sandbox around repository commands: required | auto | off (cicd_orchestrator.sandbox;
    # the environment variable CICD_COMMAND_SANDBOX overrides it); auto is for the demo only
    command_sandbox: SandboxMode = SandboxMode.REQUIRED
    # the package registries (host names) replayed CI steps may reach through the egress
    # proxy (cicd_orchestrator.egress); empty: no network. Repair tools never have any.
    job_network_allowlist: tuple[str, ...] = ()
    flaky_local_reruns: int = 5
    max_ci_reruns: int = 4
    # quarantining flaky tests (a skip marker or the repository's skip list) as a proposal
    quarantine_flaky: bool = False
    # fixes the real CI verifies (a draft pull request, ready for review once CI is green):
    # when-not-replayable | always | never (the deployment's policy, not a run's)
    ci_verified_fixes: CiVerifiedPolicy = CiVerifiedPolicy.WHEN_NOT_REPLAYABLE
    # seconds CI has to start a run on a published fix before the branch is said to get no
    # CI at all (the attempt then escalates instead of waiting out ci_timeout)
    ci_no_run_grace: float = 300.0
    # repair rounds of an attempt, the first included: a new failure that validation finds
    # behind a repaired one (the next tool of the same step) is repaired on top, this often
    repair_rounds: int = 3
    # connections of the other CI providers
    github_conn_id: str = "github_default"
    gitlab_conn_id: str = "gitlab_default"
    jenkins_conn_id: str = "jenkins_default"
    jenkins_hosting: str = "github"  # where the repositories Jenkins builds live
    jenkins_jobs: Mapping[str, str] = field(default_factory=dict)  # repository -> job name
    jenkins_script_path: str | None = None
    # optional LLM connection (apache-airflow-providers-common-ai), used by strategy 2
    llm_conn_id: str | None = None
    # the largest LLM patch accepted: changed lines and bytes of the diff (repair.llm_rules)
    llm_patch_max_lines: int = 300
    llm_patch_max_bytes: int = 30_000
    # a failure whose category the rules give with a confidence below this is read again by
    # the model of llm_conn_id, which picks its category and excerpt (analysis.llm_classify;
    # 0: never asked)
    llm_classify_below: float = 0.0
    # the key the markers of what the orchestrator writes are signed with (the deployment's
    # only; without it the glue derives one from Airflow's Fernet key, see publish.markers)
    marker_key: str | None = None
    # where Airflow's UI is (the link to a session's full report in a truncated body; the
    # glue uses Airflow's [api] base_url when it is not set)
    airflow_base_url: str | None = None
    # people: where escalations and rollbacks are announced, and who owns the fixes and
    # issues, per repository ("owner/name" or "*"; see cicd_orchestrator.people)
    notifications: Mapping[str, tuple[NotificationTarget, ...]] = field(default_factory=dict)
    owners: Mapping[str, Owners] = field(default_factory=dict)
    max_owners: int = 3  # the most assignees (and reviewers) of one pull request or issue
    # retention: the maintenance DAG archives closed sessions that ended more than this many
    # days ago into gzipped JSON lines under session_archive_dir (default: beside the local
    # CI provider's root, in cicd-archive) and deletes their Variables
    session_retention_days: int = 90
    session_archive_dir: str | None = None

    # ------------------------------------------------------------------ derived values
    @property
    def attempts_allowed(self) -> int:
        """The attempts a session may make: one in ``oneshot`` mode, else ``max_attempts``."""
        return 1 if self.persistence_mode is PersistenceMode.ONESHOT else self.max_attempts

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
        return branches.matches(branch, (*self.protected_branch_patterns, *extra))

    def local_root(self) -> Path:
        root = self.local_ci_root or os.environ.get("CICD_LOCAL_ROOT")
        if root:
            return Path(root)
        home = os.environ.get("AIRFLOW_HOME")
        base = Path(home) if home else Path.cwd()
        return base / "local-ci"

    def archive_root(self) -> Path:
        """Where the maintenance DAG archives old sessions."""
        if self.session_archive_dir:
            return Path(self.session_archive_dir)
        return self.local_root().parent / "cicd-archive"

    def cache_root(self) -> Path:
        """Where the mirrors of the repositories are kept (``CICD_CACHE_DIR``, else beside
        the local CI provider's root)."""
        root = os.environ.get("CICD_CACHE_DIR")
        return Path(root) if root else self.local_root().parent / "cicd-cache"

    def with_run_overrides(self, overrides: Mapping[str, Any] | None) -> OrchestratorConfig:
        """The configuration of one session: ``overrides`` from its DAG run's conf, which may
        only set :data:`RUN_KEYS` (ConfigError names a key only the deployment may set)."""
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ConfigError("conf.config must be a JSON object")
        reserved = sorted(set(overrides) - RUN_KEYS - set(REMOVED_KEYS))
        if reserved:
            raise ConfigError(
                f"{', '.join(reserved)} may be set only by the deployment (the "
                "cicd_orchestrator_config Variable), not by a DAG run's conf; a run may set "
                + ", ".join(sorted(RUN_KEYS))
            )
        return self.with_overrides(overrides)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> OrchestratorConfig:
        """This configuration with ``overrides`` (any key: the deployment's own settings)."""
        if not overrides:
            return self
        merged = to_mapping(self)
        merged.update(overrides)
        retry = overrides.get("retry_strategy")
        if isinstance(retry, Mapping):  # a partial mapping changes only the attempts it names
            merged["retry_strategy"] = {**self.retry_strategy, **retry}
        return load_config(merged)


_FIELDS = {f.name: f for f in dataclasses.fields(OrchestratorConfig)}
#: settings that were removed, and what to do instead (a deployment that still sets one is
#: told so, rather than believing the setting does something)
REMOVED_KEYS = {
    "state_tracking": (
        "the session state is always kept, in its Variable cicd_session__<session id>: it is "
        "what hands a session from one attempt to the monitor and to the next attempt, so "
        "there is nothing to switch off; remove the key"
    ),
    "flaky_reruns_per_attempt": (
        "use failure_threshold, the red CI verdicts in a row an attempt's CI re-run of a "
        "flaky test gets before the monitor escalates (flaky_reruns_per_attempt N is "
        "failure_threshold N)"
    ),
}
#: the shortest marker key accepted
MIN_MARKER_KEY = 16


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


#: the attempts ``retry_strategy`` may name (``max_attempts`` is at most 10)
_ATTEMPT_KEYS = {f"attempt_{n}": n for n in range(1, 11)}


def _coerce_retry(name: str, value: Any) -> dict[str, str]:
    """The strategy of each attempt; the attempts it does not name keep the seed's."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of attempt_N to a strategy")
    valid = {s.value for s in Strategy}
    for key, strategy in value.items():
        if key not in _ATTEMPT_KEYS:
            raise ConfigError(f"{name}: {key!r} is not one of attempt_1 ... attempt_10")
        if strategy not in valid:
            raise ConfigError(
                f"{name}.{key}: unknown strategy {strategy!r} (one of {', '.join(sorted(valid))})"
            )
    return {**DEFAULT_RETRY_STRATEGY, **value}


def _coerce_mapping(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _coerce_hosts(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(h, str) for h in value):
        raise ConfigError(f"{name} must be a list of host names")
    bad = [h for h in value if not egress.valid_host_name(h)]
    if bad:
        raise ConfigError(
            f"{name} takes host names only (no address, port, scheme or wildcard): {bad}"
        )
    return tuple(dict.fromkeys(egress.normalize_host(h) for h in value))


def _coerce_enum(name: str, value: Any, default: enum.Enum) -> enum.Enum:
    try:
        return type(default)(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in type(default))
        raise ConfigError(f"{name} must be one of {allowed}, not {value!r}") from None


def _coerce_bool(name: str, value: Any, default: bool) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return value


def _coerce_number(name: str, value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, not {value!r}")
    return type(default)(value)


def _coerce_list(name: str, value: Any, default: tuple[Any, ...]) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list")
    return tuple(value)


def _coerce_count(name: str, value: Any) -> int:
    """A whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value


def _coerce_text(name: str, value: Any, default: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


#: fields with a shape of their own
_BY_NAME: dict[str, Callable[[str, Any], Any]] = {
    "watched_repositories": lambda _name, value: _coerce_watched(value),
    "retry_strategy": _coerce_retry,
    "local_ci_secrets": _coerce_mapping,
    "jenkins_jobs": _coerce_mapping,
    "llm_patch_max_lines": _coerce_count,
    "llm_patch_max_bytes": _coerce_count,
    "repair_rounds": _coerce_count,
    "failure_threshold": _coerce_count,
    "job_network_allowlist": _coerce_hosts,
    "notifications": people.parse_notifications,
    "owners": people.parse_owners,
    "max_owners": _coerce_count,
}
#: the other fields by the type of their default, first match wins (bool before int)
_BY_TYPE: tuple[tuple[type | tuple[type, ...], Callable[[str, Any, Any], Any]], ...] = (
    (enum.Enum, _coerce_enum),
    (bool, _coerce_bool),
    ((int, float), _coerce_number),
    (tuple, _coerce_list),
)


def _coerce(name: str, value: Any) -> Any:
    if name in _BY_NAME:
        return _BY_NAME[name](name, value)
    default = getattr(OrchestratorConfig(), name)
    for kind, coerce in _BY_TYPE:
        if isinstance(default, kind):
            return coerce(name, value, default)
    return _coerce_text(name, value, default)


def load_config(overrides: Mapping[str, Any] | None = None) -> OrchestratorConfig:
    """Defaults updated by ``overrides``; unknown keys and wrong types are clear errors."""
    if overrides is None:
        return OrchestratorConfig()
    if not isinstance(overrides, Mapping):
        raise ConfigError("the configuration must be a JSON object")
    kwargs: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in REMOVED_KEYS:
            raise ConfigError(f"{key} is no longer a setting: {REMOVED_KEYS[key]}")
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
    if config.ci_no_run_grace < 0:
        raise ConfigError("ci_no_run_grace must not be negative")
    if not config.fix_branch_prefix or config.is_protected(config.fix_branch_prefix + "x"):
        raise ConfigError("fix_branch_prefix must not fall under a protected branch pattern")
    if not 0 <= config.llm_classify_below <= 1:
        raise ConfigError("llm_classify_below must be between 0 and 1")
    if config.session_retention_days < 1:
        raise ConfigError("session_retention_days must be at least 1")
    if config.llm_patch_max_lines < 1 or config.llm_patch_max_bytes < 1:
        raise ConfigError("llm_patch_max_lines and llm_patch_max_bytes must be at least 1")
    unknown = set(config.enabled_fixers) - set(ALL_FIXERS)
    if unknown:
        raise ConfigError(f"unknown fixers: {sorted(unknown)}")
    _validate_publishing(config)


def _validate_publishing(config: OrchestratorConfig) -> None:
    key = config.marker_key
    if key is not None and (len(key) < MIN_MARKER_KEY or not key.strip()):
        raise ConfigError(f"marker_key must be a secret of at least {MIN_MARKER_KEY} characters")
    url = config.airflow_base_url
    if url is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url):
        raise ConfigError(f"airflow_base_url must be an http(s) URL, not {url!r}")
