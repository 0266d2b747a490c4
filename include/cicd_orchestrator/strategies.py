"""The strategy specifications, loaded from ``strategies.yaml`` and checked."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from cicd_orchestrator.constants import FixingShape, Strategy
from cicd_orchestrator.exceptions import ConfigError

DISCOVERY_EXTRAS = ("bisect_culprit", "compare_environment")
MONITOR_DAG_ID = "cicd_monitor"
SWEEP_DAG_ID = "cicd_sweep"


@dataclass(frozen=True)
class StrategySpec:
    strategy: Strategy
    dag_id: str
    title: str
    adds: str
    fixing: FixingShape
    fixers: tuple[str, ...]
    discovery_extras: tuple[str, ...]
    timeout_seconds: int


@functools.cache
def load_strategies(path: str | None = None) -> dict[Strategy, StrategySpec]:
    source = Path(path) if path else Path(__file__).with_name("strategies.yaml")
    data = yaml.safe_load(source.read_text())
    specs: dict[Strategy, StrategySpec] = {}
    for item in data.get("strategies", []):
        try:
            spec = StrategySpec(
                strategy=Strategy(item["id"]),
                dag_id=str(item["dag_id"]),
                title=str(item["title"]),
                adds=str(item["adds"]),
                fixing=FixingShape(item["fixing"]),
                fixers=tuple(item.get("fixers", [])),
                discovery_extras=tuple(item.get("discovery_extras", [])),
                timeout_seconds=int(item.get("timeout_seconds", 300)),
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


def dag_id_for(strategy: Strategy) -> str:
    return load_strategies()[strategy].dag_id
