"""Fixtures of the glue's tests: Airflow Variables kept in a dict (the state store's real
code path, without a metadata database)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE, SESSION_PREFIX
from cicd_orchestrator.models import SessionState


class Variables:
    """Airflow's ``Variable.get``/``Variable.set`` over a dict."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: str, description: str | None = None) -> None:
        self.values[key] = value

    def configure(self, config: dict[str, Any]) -> None:
        self.values[CONFIG_VARIABLE] = json.dumps(config)

    def sessions(self) -> list[SessionState]:
        return [
            state_store.load_session(k[len(SESSION_PREFIX) :])
            for k in self.values
            if k.startswith(SESSION_PREFIX)
        ]


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> Variables:
    store = Variables()
    monkeypatch.setattr(state_store, "_variable", lambda: store)
    return store
