"""The provider's client made from an Airflow connection (``AirflowClients.gitlab``): host =
the GitLab URL, password = an access token; the client is made at the provider's first use.
And a client made from a token and a URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cicd_devkit.worlds import GITLAB_TOKEN as TOKEN
from cicd_devkit.worlds import REPO, GitLabWorld

from cicd_orchestrator.airflow.connections import AirflowClients
from cicd_orchestrator.ci.gitlab.provider import GitLabProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError


def test_the_provider_reads_the_gitlab_default_connection(
    gitlab_world: GitLabWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "http", "password": TOKEN, "host": gitlab_world.gitlab.url}
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_DEFAULT", json.dumps(conn))
    asked: list[str] = []

    class Recording(AirflowClients):
        def gitlab(self, conn_id: str) -> Any:
            asked.append(conn_id)
            return super().gitlab(conn_id)

    provider = make_provider("gitlab", load_config({}), Recording())
    assert isinstance(provider, GitLabProvider) and asked == []  # read at the first use
    assert provider.name == "gitlab"
    assert provider.default_branch(REPO) == "main" and asked == ["gitlab_default"]
    assert provider.url == gitlab_world.gitlab.url
    remote = provider.git_remote(REPO)
    assert remote.env["CICD_GIT_TOKEN"] == TOKEN and TOKEN not in remote.url


def test_a_host_without_scheme_and_an_injected_token(
    gitlab_world: GitLabWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {
        "conn_type": "http",
        "password": TOKEN,
        "host": "127.0.0.1",
        "port": gitlab_world.gitlab.port,
        "schema": "http",
    }
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_LOCAL", json.dumps(conn))
    local = GitLabProvider(connect=lambda: AirflowClients().gitlab("gitlab_local"))
    assert local.default_branch(REPO) == "main"
    injected = GitLabProvider(url=gitlab_world.gitlab.url, token=TOKEN)
    assert injected.default_branch(REPO) == "main"


def test_a_bad_connection_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_BROKEN", json.dumps({"conn_type": "http"}))
    for conn_id in ("gitlab_broken", "gitlab_missing"):
        config = load_config({"gitlab_conn_id": conn_id})
        provider = make_provider("gitlab", config, AirflowClients())
        with pytest.raises(ConfigError, match=conn_id):
            provider.default_branch(REPO)
