from __future__ import annotations

import json

from cicd_orchestrator.analysis.learning import learned_patterns, lookup, record
from cicd_orchestrator.constants import FailureCategory


def test_record_and_lookup() -> None:
    store: dict = {}
    out = record(store, "sig1", FailureCategory.QUALITY, "ruff-check", "ruff-fix", True)
    assert out is store  # updated in place
    found = lookup(store, "sig1")
    assert found is not None
    assert (found.category, found.pattern, found.repair, found.worked, found.seen) == (
        FailureCategory.QUALITY,
        "ruff-check",
        "ruff-fix",
        True,
        1,
    )
    record(store, "sig1", "quality", worked=False)
    again = lookup(store, "sig1")
    assert (
        again is not None
        and again.seen == 2
        and again.worked is False
        and again.repair == "ruff-fix"
    )
    assert lookup(store, "nope") is None and lookup(None, "sig1") is None
    assert json.loads(json.dumps(store)) == store


def test_bounded_store_evicts_least_recently_seen() -> None:
    store: dict = {}
    for i in range(5):
        record(store, f"s{i}", "test", max_entries=3)
    assert set(store) == {"s2", "s3", "s4"}
    record(store, "s2", "test", max_entries=3)  # s2 seen again: s3 is now the oldest
    record(store, "s5", "test", max_entries=3)
    assert set(store) == {"s2", "s4", "s5"}
    assert [p.signature for p in learned_patterns(store)] == ["s5", "s2", "s4"]


def test_record_on_none_and_bad_entries() -> None:
    store = record(None, "x", "build")
    assert lookup(store, "x") is not None
    assert lookup({"x": {"category": "weather"}}, "x") is None
    assert lookup({"x": "junk"}, "x") is None
