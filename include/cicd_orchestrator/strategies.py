"""The strategy specifications, loaded from ``strategies.yaml`` and checked."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator.constants import FixingShape, Strategy
from cicd_orchestrator.exceptions import ConfigError

DISCOVERY_EXTRAS = ("bisect_culprit", "compare_environment")
MONITOR_DAG_ID = "cicd_monitor"
SWEEP_DAG_ID = "cicd_sweep"
#: ``parallelism`` of a strategy whose fixing tasks all run at once
FULL = "full"
_KEYS = frozenset(
    {
        "id",
        "dag_id",
        "title",
        "adds",
        "fixing",
        "fixers",
        "discovery_extras",
        "timeout_seconds",
        "parallelism",
    }
)
#: keys of the seed's strategy_config that are no setting here, and why
_NOT_SETTINGS = {
    "validation": (
        "every strategy validates what it publishes the same way (the failing jobs replayed "
        "before and after the repair, the rest of the workflow as a regression run); the "
        "fixing shape adds the rest (sequential: each change alone; issue: nothing to replay)"
    ),
}


@dataclass(frozen=True)
class StrategySpec:
    strategy: Strategy
    dag_id: str
    title: str
    adds: str
    fixing: FixingShape
    fixers: tuple[str, ...]
    discovery_extras: tuple[str, ...]
    #: the execution_timeout of each fixing task (the seed's strategy timeout)
    timeout_seconds: int
    #: how many fixing tasks of an attempt run at once (None: all of them)
    parallelism: int | None = None


@functools.cache
def load_strategies(path: str | None = None) -> dict[Strategy, StrategySpec]:
    source = Path(path) if path else Path(__file__).with_name("strategies.yaml")
    data = yaml.safe_load(source.read_text())
    specs: dict[Strategy, StrategySpec] = {}
    for item in data.get("strategies", []):
        _check_keys(item)
        try:
            spec = StrategySpec(
                strategy=Strategy(item["id"]),
                dag_id=str(item["dag_id"]),
                title=str(item["title"]),
                adds=str(item["adds"]),
                fixing=FixingShape(item["fixing"]),
                fixers=tuple(item.get("fixers", [])),
                discovery_extras=tuple(item.get("discovery_extras", [])),
                timeout_seconds=_positive(item, "timeout_seconds", item["timeout_seconds"]),
                parallelism=_parallelism(item),
            )
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"invalid strategy entry {item!r}: {exc}") from exc
        if set(spec.discovery_extras) - set(DISCOVERY_EXTRAS):
            raise ConfigError(f"{spec.dag_id}: unknown discovery extras")
        specs[spec.strategy] = spec
    missing = set(Strategy) - set(specs)
    if missing:
        raise ConfigError(f"strategies without a specification: {sorted(m.value for m in missing)}")
    return specs


def _check_keys(item: Any) -> None:
    if not isinstance(item, dict):
        raise ConfigError(f"a strategy entry must be a mapping, not {item!r}")
    for key in sorted(set(item) - _KEYS):
        why = _NOT_SETTINGS.get(key, f"known keys: {', '.join(sorted(_KEYS))}")
        raise ConfigError(f"{item.get('dag_id', item)}: {key!r} is not a strategy setting: {why}")


def _positive(item: dict[str, Any], key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{item.get('dag_id')}: {key} must be a whole number of at least 1")
    return value


def _parallelism(item: dict[str, Any]) -> int | None:
    value = item.get("parallelism", FULL)
    if value == FULL:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{item.get('dag_id')}: parallelism must be {FULL!r} or a whole number of at "
            f"least 1, not {value!r}"
        )
    return value


def dag_id_for(strategy: Strategy) -> str:
    return load_strategies()[strategy].dag_id
