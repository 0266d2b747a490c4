"""What a task needs from the deployment: the attempt it works on (the session, the
configuration in force, the CI provider with its connection), and, before it runs repository
code, the command sandbox's mode; what it takes from Airflow's configuration (the base URL of
the UI, the secret the markers' key derives from)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cicd_orchestrator import sandbox
from cicd_orchestrator.airflow.connections import AirflowClients
from cicd_orchestrator.airflow.handoff import Ticket
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.publish.markers import signing_key

log = logging.getLogger(__name__)

#: an Airflow setting by (section, key), or None when it is not set
Setting = Callable[[str, str], str | None]


def _airflow_setting(section: str, key: str) -> str | None:
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=None)
    return str(value) if value else None


def prepare_process(config: OrchestratorConfig) -> None:
    """Set the command sandbox of this task's process from the configuration in force. The
    sandbox shows a command only its own folders (nothing of Airflow's: its configuration,
    database, logs), so there is nothing to hide here; a fallback of ``auto`` warns loudly
    in the task's log."""
    sandbox.configure(config.command_sandbox.value)
    if sandbox.mode() == "auto":
        reason = sandbox.unavailable_reason()
        if reason is not None:
            log.warning(
                "command_sandbox=auto and the sandbox is unavailable (%s): this task runs "
                "repository commands UNISOLATED; only the demo may run this way",
                reason,
            )


def provider_for(name: str, config: OrchestratorConfig) -> CIProvider:
    """The CI provider ``name``, its connection looked up in Airflow (at its first use)."""
    return make_provider(name, config, AirflowClients())


def deployment_secret(setting: Setting | None = None) -> str | None:
    """The deployment's secret the markers' key is derived from when the configuration sets
    no ``marker_key``: Airflow's Fernet key (the first of a rotation list), or None."""
    value = (setting or _airflow_setting)("core", "fernet_key")
    first = (value or "").split(",")[0].strip()
    return first or None


def airflow_base_url() -> str | None:
    """Airflow's own URL (``[api] base_url``), or None."""
    return _airflow_setting("api", "base_url")


def load_attempt(ticket: Ticket) -> Attempt:
    """The attempt a task works on: one read of the session, the configuration in force, the
    provider, and the command sandbox set up for this process."""
    from cicd_orchestrator.airflow import state_store

    state = state_store.load_session(ticket.session_id)
    config = state_store.load_orchestrator_config(ticket.config)
    prepare_process(config)
    provider = provider_for(state.provider, config)
    return Attempt(
        state,
        ticket.attempt,
        config,
        provider,
        agent_factory=AirflowClients().llm_agent,
        marker_key=signing_key(config.marker_key, deployment_secret()),
        airflow_base_url=airflow_base_url(),
    )
