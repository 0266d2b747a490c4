"""Session state, learned patterns and the configuration, kept in Airflow Variables."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from cicd_orchestrator import sandbox
from cicd_orchestrator.airflow_names import CONFIG_VARIABLE, LEARNED_PREFIX, SESSION_PREFIX
from cicd_orchestrator.config import OrchestratorConfig, load_config
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.redact import redact
from cicd_orchestrator.serde import from_json_obj, to_json_obj

log = logging.getLogger(__name__)


def _variable() -> Any:
    from airflow.sdk import Variable

    return Variable


def session_key(session_id: str) -> str:
    return SESSION_PREFIX + session_id


def learned_key(repository: str) -> str:
    """Keyed by a digest: a repository name may contain a word Airflow masks ("token"...)."""
    return LEARNED_PREFIX + hashlib.sha1(repository.encode()).hexdigest()[:16]


def load_orchestrator_config(overrides: dict[str, Any] | None = None) -> OrchestratorConfig:
    """The configuration in force for a task; it also sets the repository commands' sandbox
    mode of the task's process."""
    raw = _variable().get(CONFIG_VARIABLE, default=None)
    data = json.loads(raw) if raw else {}
    config = load_config(data).with_overrides(overrides)
    sandbox.configure(config.command_sandbox)
    return config


def session_exists(session_id: str) -> bool:
    return _variable().get(session_key(session_id), default=None) is not None


def load_session(session_id: str) -> SessionState:
    raw = _variable().get(session_key(session_id), default=None)
    if raw is None:
        raise KeyError(f"no session {session_id!r}")
    return from_json_obj(SessionState, json.loads(raw))


def save_session(state: SessionState) -> None:
    text = redact(json.dumps(to_json_obj(state), sort_keys=True))
    _variable().set(
        session_key(state.session_id),
        text,
        description=f"CI/CD orchestration session of {state.repository}",
    )


def load_learned(repository: str) -> dict[str, Any]:
    raw = _variable().get(learned_key(repository), default=None)
    return json.loads(raw) if raw else {}


def save_learned(repository: str, store: dict[str, Any]) -> None:
    _variable().set(
        learned_key(repository),
        redact(json.dumps(store, sort_keys=True)),
        description=f"failure signatures learned for {repository}",
    )
