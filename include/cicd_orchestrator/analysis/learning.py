"""The per-repository learned store: failure signatures, their category, which repair worked.

No I/O: the store is a JSON-able dict (the orchestrator keeps one per repository in an
Airflow Variable), signature -> entry::

    {"3f0c...": {"category": "quality", "pattern": "ruff-check", "repair": "ruff-fix",
                 "worked": true, "seen": 3, "last_seen": 7}}

``record`` updates the store in place (and returns it); ``last_seen`` is a logical clock
(one more than the largest in the store), and when the store holds more than
``max_entries`` signatures the least recently seen ones are evicted. ``lookup`` reads only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.models import LearnedPattern

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 500


def _clock(store: Mapping[str, Any]) -> int:
    return max(
        (int(e.get("last_seen", 0) or 0) for e in store.values() if isinstance(e, Mapping)),
        default=0,
    )


def record(
    store: MutableMapping[str, Any] | None,
    signature: str,
    category: FailureCategory | str,
    pattern: str | None = None,
    repair: str | None = None,
    worked: bool | None = None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> MutableMapping[str, Any]:
    """Record ``signature`` in ``store`` (a new dict when None); returns the store."""
    store = {} if store is None else store
    prev = store.get(signature)
    prev = dict(prev) if isinstance(prev, Mapping) else {}
    store[signature] = {
        "category": FailureCategory(category).value,
        "pattern": pattern if pattern is not None else prev.get("pattern"),
        "repair": repair if repair is not None else prev.get("repair"),
        "worked": worked if worked is not None else prev.get("worked"),
        "seen": int(prev.get("seen", 0) or 0) + 1,
        "last_seen": _clock(store) + 1,
    }
    evict(store, max_entries)
    return store


def evict(store: MutableMapping[str, Any], max_entries: int = DEFAULT_MAX_ENTRIES) -> list[str]:
    """Drop the least recently seen signatures beyond ``max_entries``; returns them."""
    limit = max(1, max_entries)
    dropped: list[str] = []
    if len(store) <= limit:
        return dropped
    order = sorted(store, key=lambda s: (int(store[s].get("last_seen", 0) or 0), s))
    for sig in order[: len(store) - limit]:
        del store[sig]
        dropped.append(sig)
    log.debug("learned store full: evicted %d signature(s)", len(dropped))
    return dropped


def lookup(store: Mapping[str, Any] | None, signature: str) -> LearnedPattern | None:
    """What was learned about ``signature``, or None (the store is not changed)."""
    if not store or not signature:
        return None
    entry = store.get(signature)
    if not isinstance(entry, Mapping) or "category" not in entry:
        return None
    try:
        category = FailureCategory(entry["category"])
    except ValueError:
        return None
    return LearnedPattern(
        signature=signature,
        category=category,
        pattern=entry.get("pattern"),
        repair=entry.get("repair"),
        worked=entry.get("worked"),
        seen=int(entry.get("seen", 1) or 1),
    )


def learned_patterns(store: Mapping[str, Any] | None) -> list[LearnedPattern]:
    """Every entry, most recently seen first (for the session state and the report)."""
    if not store:
        return []
    order = sorted(store, key=lambda s: -int((store[s] or {}).get("last_seen", 0) or 0))
    return [p for p in (lookup(store, s) for s in order) if p is not None]
