"""Providers by name, built from the configuration (the edge where the provider is chosen).

A provider of a remote service gets its API client from ``Clients``: what turns the name of
a configured connection into a client (the Airflow glue's ``AirflowClients`` reads Airflow
connections; a test passes its own). The client is made at the provider's first use, as the
connection is only read then.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from cicd_orchestrator.agents import PatchAgent
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.exceptions import ConfigError

if TYPE_CHECKING:
    from github import Github
    from gitlab import Gitlab
    from jenkins import Jenkins

PROVIDERS = ("local", "github", "gitlab", "jenkins")
HOSTINGS = ("github", "gitlab", "local")


class Clients(Protocol):
    """API clients by connection id."""

    def github(self, conn_id: str) -> Github: ...

    def gitlab(self, conn_id: str) -> Gitlab: ...

    def jenkins(self, conn_id: str) -> Jenkins: ...

    def llm_agent(self, conn_id: str, instructions: str) -> PatchAgent: ...


def make_provider(
    name: str, config: OrchestratorConfig, clients: Clients | None = None
) -> CIProvider:
    """The provider ``name`` (one of ``PROVIDERS``) as ``config`` sets it up; the providers of
    remote services need ``clients``."""
    if name == "local":
        from cicd_orchestrator.ci.local.provider import LocalProvider

        return LocalProvider(
            config.local_root(),
            secrets=dict(config.local_ci_secrets) or None,
            network_allowlist=list(config.job_network_allowlist),
        )
    build = _REMOTE.get(name)
    if build is None:
        raise ConfigError(f"unknown CI provider {name!r}; known: {', '.join(PROVIDERS)}")
    if clients is None:
        raise ConfigError(
            f"the {name} provider reaches {name} with a client made from a connection: "
            "make_provider needs the clients (e.g. the Airflow glue's AirflowClients())"
        )
    return build(config, clients)


def _github(config: OrchestratorConfig, clients: Clients) -> CIProvider:
    from cicd_orchestrator.ci.github.provider import GitHubProvider

    return GitHubProvider(connect=functools.partial(clients.github, config.github_conn_id))


def _gitlab(config: OrchestratorConfig, clients: Clients) -> CIProvider:
    from cicd_orchestrator.ci.gitlab.provider import GitLabProvider

    return GitLabProvider(connect=functools.partial(clients.gitlab, config.gitlab_conn_id))


def _jenkins(config: OrchestratorConfig, clients: Clients) -> CIProvider:
    from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider

    if config.jenkins_hosting not in HOSTINGS:
        raise ConfigError(f"jenkins_hosting must be one of {HOSTINGS}")
    return JenkinsProvider(
        connect=functools.partial(clients.jenkins, config.jenkins_conn_id),
        hosting=make_provider(config.jenkins_hosting, config, clients),
        jobs=dict(config.jenkins_jobs) or None,
        script_path=config.jenkins_script_path,
    )


_REMOTE: dict[str, Callable[[OrchestratorConfig, Clients], CIProvider]] = {
    "github": _github,
    "gitlab": _gitlab,
    "jenkins": _jenkins,
}
