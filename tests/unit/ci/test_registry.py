"""Providers by name: the local provider from the configuration alone, the others with the
clients that turn the configured connection ids into API clients (at the provider's first
use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.ci.github.provider import GitHubProvider
from cicd_orchestrator.ci.gitlab.provider import GitLabProvider
from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.ci.registry import PROVIDERS, Clients, make_provider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError


class Recording:
    """Clients that record the connection ids asked for (and make no client)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def _client(self, kind: str, conn_id: str) -> Any:
        self.asked.append((kind, conn_id))
        return object()

    def github(self, conn_id: str) -> Any:
        return self._client("github", conn_id)

    def gitlab(self, conn_id: str) -> Any:
        return self._client("gitlab", conn_id)

    def jenkins(self, conn_id: str) -> Any:
        return self._client("jenkins", conn_id)

    def llm_agent(self, conn_id: str, instructions: str) -> Any:
        return self._client("llm", conn_id)


def test_the_local_provider_needs_no_clients(tmp_path: Path) -> None:
    provider = make_provider("local", load_config({"local_ci_root": str(tmp_path)}))
    assert isinstance(provider, LocalProvider) and provider.root == tmp_path.resolve()


@pytest.mark.parametrize("name", [p for p in PROVIDERS if p != "local"])
def test_the_remote_providers_need_clients(name: str) -> None:
    with pytest.raises(ConfigError, match=f"the {name} provider .* needs the clients"):
        make_provider(name, load_config({}))


def test_an_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown CI provider 'travis'"):
        make_provider("travis", load_config({}), Recording())


def test_connections_are_read_at_the_first_use(tmp_path: Path) -> None:
    clients = Recording()
    typed: Clients = clients  # the protocol, structurally
    config = load_config(
        {
            "github_conn_id": "gh_conn",
            "gitlab_conn_id": "gl_conn",
            "jenkins_conn_id": "jk_conn",
            "jenkins_hosting": "github",
            "local_ci_root": str(tmp_path),
        }
    )
    github = make_provider("github", config, typed)
    gitlab = make_provider("gitlab", config, typed)
    jenkins = make_provider("jenkins", config, typed)
    assert isinstance(github, GitHubProvider) and isinstance(gitlab, GitLabProvider)
    assert isinstance(jenkins, JenkinsProvider) and isinstance(jenkins.hosting, GitHubProvider)
    assert clients.asked == []
    github.client, gitlab.client, jenkins.client, jenkins.hosting.client  # noqa: B018
    assert clients.asked == [
        ("github", "gh_conn"),
        ("gitlab", "gl_conn"),
        ("jenkins", "jk_conn"),
        ("github", "gh_conn"),
    ]


def test_the_jenkins_hosting_is_checked() -> None:
    config = load_config({"jenkins_hosting": "bitbucket"})
    with pytest.raises(ConfigError, match="jenkins_hosting"):
        make_provider("jenkins", config, Recording())
