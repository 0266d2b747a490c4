"""strategies.yaml: the seed's strategy_config timeouts and parallelism, checked on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cicd_orchestrator import strategies
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.strategies import load_strategies

SOURCE = Path(strategies.__file__).with_name("strategies.yaml")


def test_the_timeouts_and_parallelism_are_the_seeds():
    specs = load_strategies()
    assert {s: (specs[s].timeout_seconds, specs[s].parallelism) for s in Strategy} == {
        Strategy.STANDARD_PARALLEL_FIXING: (300, None),
        Strategy.EXTENDED_ANALYSIS: (600, 3),
        Strategy.SEQUENTIAL_FIXING: (900, 1),
        Strategy.MANUAL_INTERVENTION: (300, None),
        Strategy.EMERGENCY_ROLLBACK: (180, None),
    }


def _write(tmp_path: Path, change: dict) -> str:
    data = yaml.safe_load(SOURCE.read_text())
    data["strategies"][0].update(change)
    data["strategies"][0] = {k: v for k, v in data["strategies"][0].items() if v is not None}
    path = tmp_path / "strategies.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"validation": "basic"}, "'validation' is not a strategy setting: every strategy"),
        ({"agents": ["x"]}, "'agents' is not a strategy setting: known keys"),
        ({"parallelism": 0}, "parallelism must be 'full' or a whole number of at least 1"),
        ({"parallelism": "staged"}, "parallelism must be 'full' or a whole number"),
        ({"timeout_seconds": "300s"}, "timeout_seconds must be a whole number of at least 1"),
        ({"timeout_seconds": None}, "invalid strategy entry"),
    ],
)
def test_a_bad_strategy_entry_is_a_clear_error(tmp_path, change, says):
    with pytest.raises(ConfigError, match=says):
        load_strategies(_write(tmp_path, change))
