"""Shared Variables under concurrent writers: a session or the learned signatures saved by
two writers keeps both changes (a version check, the change applied anew)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cicd_devkit.builders import new_state

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.exceptions import StaleStateError
from cicd_orchestrator.models import SessionState


class _RacyVariables:
    """Variables whose reads interleave: each thread reads, then waits for the others
    before it writes (what two failure callbacks of parallel tasks do)."""

    def __init__(self, writers: int) -> None:
        self.values: dict[str, str] = {}
        self.barrier: threading.Barrier | None = None
        self.writers = writers
        self.lock = threading.Lock()
        self.first_reads: set[int] = set()

    def race(self) -> None:
        """From now on, the first read of each writer waits for the others'."""
        self.barrier = threading.Barrier(self.writers, timeout=10)

    def settle(self) -> None:
        self.barrier = None

    def get(self, key: str, default: Any = None) -> Any:
        with self.lock:
            value = self.values.get(key, default)
        me = threading.get_ident()
        if self.barrier is not None and me not in self.first_reads:
            self.first_reads.add(me)
            self.barrier.wait()  # every writer has read the same version
        return value

    def set(self, key: str, value: str, description: str | None = None) -> None:
        with self.lock:
            self.values[key] = value


def _run_concurrently(racy: _RacyVariables, *fns: Any) -> None:
    racy.race()
    threads = [threading.Thread(target=fn) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    racy.settle()


def test_a_stale_save_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    values: dict[str, str] = {}
    store = type(
        "V",
        (),
        {
            "get": lambda self, k, default=None: values.get(k, default),
            "set": lambda self, k, v, description=None: values.__setitem__(k, v),
        },
    )()
    monkeypatch.setattr(state_store, "_variable", lambda: store)
    state = new_state()
    state_store.save_session(state)
    first, second = (state_store.load_session(state.session_id) for _ in range(2))
    first.errors.append("one")
    state_store.save_session(first)
    second.errors.append("two")
    with pytest.raises(StaleStateError):
        state_store.save_session(second)
    assert state_store.load_session(state.session_id).errors == ["one"]


def test_two_failure_callbacks_both_leave_their_error(monkeypatch: pytest.MonkeyPatch) -> None:
    racy = _RacyVariables(writers=2)
    monkeypatch.setattr(state_store, "_variable", lambda: racy)
    state = new_state()
    state_store.save_session(state)

    def add(message: str) -> Any:
        def change(s: SessionState) -> bool:
            s.errors.append(message)
            return True

        return lambda: state_store.update_session(state.session_id, change)

    _run_concurrently(racy, add("task a failed"), add("task b failed"))
    assert sorted(state_store.load_session(state.session_id).errors) == [
        "task a failed",
        "task b failed",
    ]


def test_two_sessions_both_add_what_they_learned(monkeypatch: pytest.MonkeyPatch) -> None:
    racy = _RacyVariables(writers=2)
    monkeypatch.setattr(state_store, "_variable", lambda: racy)

    def learn(signature: str) -> Any:
        return lambda: state_store.update_learned(
            "acme/shop", lambda store: store.__setitem__(signature, {"category": "test"})
        )

    _run_concurrently(racy, learn("sig-a"), learn("sig-b"))
    assert set(state_store.load_learned("acme/shop")) == {"sig-a", "sig-b"}


def test_the_version_check_comes_right_before_the_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing slow (the report's rendering) lies between the version check and the write:
    a second writer whose check fell there would overwrite the first one's change."""
    racy = _RacyVariables(writers=1)
    monkeypatch.setattr(state_store, "_variable", lambda: racy)
    state = new_state()
    state_store.save_session(state)
    calls: list[str] = []
    get, render = racy.get, state_store.render_report
    monkeypatch.setattr(racy, "get", lambda *a, **k: calls.append("check") or get(*a, **k))
    monkeypatch.setattr(racy, "set", lambda *a, **k: calls.append("write"))
    monkeypatch.setattr(state_store, "render_report", lambda s: calls.append("render") or render(s))
    state_store.save_session(state)
    assert calls == ["render", "check", "write"]
