"""Session state, learned patterns and the configuration, kept in Airflow Variables."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from cicd_orchestrator.airflow import observability
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE, LEARNED_PREFIX, SESSION_PREFIX
from cicd_orchestrator.config import OrchestratorConfig, load_config
from cicd_orchestrator.exceptions import StaleStateError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.redact import redact
from cicd_orchestrator.report import render_report
from cicd_orchestrator.serde import from_json_obj, to_json_obj

log = logging.getLogger(__name__)

#: how many times a change of a shared state is applied anew after another writer's save
_TRIES = 8
_VERSION = "_version"

#: the session this process read or saved last: in a task, the task's own session
_latest: SessionState | None = None


def _variable() -> Any:
    """Airflow's Variables: the Task SDK's in a task (and wherever it runs with a supervisor);
    the metadata database's elsewhere (the webhook in the API server), where the Task SDK
    can read but not write."""
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        from airflow.sdk import Variable

        return Variable
    return _MetadataVariables


class _MetadataVariables:
    """Variables in the metadata database, with the Task SDK's ``get``/``set`` signatures."""

    @staticmethod
    def get(key: str, default: Any = None) -> Any:
        from airflow.models.variable import Variable

        return Variable.get(key, default_var=default)

    @staticmethod
    def set(key: str, value: str, description: str | None = None) -> None:
        from airflow.models.variable import Variable

        Variable.set(key, value, description=description)


def session_key(session_id: str) -> str:
    return SESSION_PREFIX + session_id


def learned_key(repository: str) -> str:
    """Keyed by a digest: a repository name may contain a word Airflow masks ("token"...)."""
    return LEARNED_PREFIX + hashlib.sha1(repository.encode()).hexdigest()[:16]


def load_orchestrator_config(overrides: dict[str, Any] | None = None) -> OrchestratorConfig:
    """The configuration in force: the deployment's Variable, then what the run's conf may
    override (ConfigError for a key only the deployment sets)."""
    raw = _variable().get(CONFIG_VARIABLE, default=None)
    data = json.loads(raw) if raw else {}
    return load_config(data).with_run_overrides(overrides)


def session_exists(session_id: str) -> bool:
    return _variable().get(session_key(session_id), default=None) is not None


def load_session(session_id: str) -> SessionState:
    """The session's state (KeyError when there is no such session)."""
    raw = _variable().get(session_key(session_id), default=None)
    if raw is None:
        raise KeyError(f"no session {session_id!r}")
    return _remember(from_json_obj(SessionState, json.loads(raw)))


def seen_session() -> SessionState | None:
    """The session this process read or saved last, as it was then. A task process runs one
    task of one session: its links, computed when it ends, show what it saw without asking
    Airflow again."""
    return _latest


def _remember(state: SessionState) -> SessionState:
    global _latest
    _latest = state
    return state


def save_session(state: SessionState) -> None:
    """Render the session's report and save the state, scrubbed of secrets. StaleStateError
    when another writer saved the session since ``state`` was read (a version check)."""
    key = session_key(state.session_id)
    read = state.version
    # the text is made before the version check, so that the check and the write follow each
    # other at once: Variables have no compare-and-set, and a writer that comes between the
    # two would lose its change
    state.version = read + 1
    state.report = render_report(state)
    text = redact(json.dumps(to_json_obj(state), sort_keys=True))
    try:
        saved = _check_version(key, read)
    except StaleStateError:
        state.version = read
        raise
    _variable().set(key, text, description=f"CI/CD orchestration session of {state.repository}")
    _remember(state)
    observability.session_saved(saved, state)


def update_session(session_id: str, change: Callable[[SessionState], bool]) -> None:
    """Apply ``change`` to the newest state of the session and save it (again on a fresh read
    when another writer got there first); ``change`` returns False when there is nothing to
    save."""
    for _ in range(_TRIES):
        state = load_session(session_id)
        if not change(state):
            return
        try:
            save_session(state)
            return
        except StaleStateError:
            continue
    raise StaleStateError(f"session {session_id} kept changing: the change was not saved")


def _check_version(key: str, version: int) -> str | None:
    """The saved text of the session (None: none yet), when its version is ``version``."""
    raw = _variable().get(key, default=None)
    saved = int(json.loads(raw).get("version", 0)) if raw else 0
    if saved != version:
        raise StaleStateError(f"{key} was saved by another writer (version {saved}, not {version})")
    return None if raw is None else str(raw)


def _learned(repository: str) -> tuple[dict[str, Any], int]:
    raw = _variable().get(learned_key(repository), default=None)
    store = json.loads(raw) if raw else {}
    return store, int(store.pop(_VERSION, 0))


def load_learned(repository: str) -> dict[str, Any]:
    """The failure signatures learned for the repository."""
    return _learned(repository)[0]


def update_learned(repository: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the newest learned signatures of the repository and save them
    (concurrent sessions of one repository each add what they learned)."""
    key = learned_key(repository)
    for _ in range(_TRIES):
        store, version = _learned(repository)
        change(store)
        if _learned(repository)[1] != version:
            continue
        store[_VERSION] = version + 1
        _variable().set(
            key,
            redact(json.dumps(store, sort_keys=True)),
            description=f"failure signatures learned for {repository}",
        )
        return
    raise StaleStateError(f"the learned signatures of {repository} kept changing")
