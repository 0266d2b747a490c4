"""The provider built from an Airflow connection: host = GitLab URL, password = token."""

from __future__ import annotations

import json

import pytest
from gl_helpers import REPO, TOKEN, World

from cicd_orchestrator.ci.gitlab.provider import GitLabProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError


def test_the_provider_reads_the_gitlab_default_connection(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "http", "password": TOKEN, "host": world.server.url}
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_DEFAULT", json.dumps(conn))
    provider = make_provider("gitlab", load_config({}))
    assert isinstance(provider, GitLabProvider)
    assert provider.conn_id == "gitlab_default" and provider.name == "gitlab"
    assert provider.default_branch(REPO) == "main"
    assert provider.url == world.server.url
    remote = provider.git_remote(REPO)
    assert remote.env["CICD_GIT_TOKEN"] == TOKEN and TOKEN not in remote.url


def test_a_host_without_scheme_and_an_injected_token(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {
        "conn_type": "http",
        "password": TOKEN,
        "host": "127.0.0.1",
        "port": world.server.port,
        "schema": "http",
    }
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_LOCAL", json.dumps(conn))
    assert GitLabProvider("gitlab_local").default_branch(REPO) == "main"
    injected = GitLabProvider(url=world.server.url, token=TOKEN)
    assert injected.default_branch(REPO) == "main"


def test_a_bad_connection_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITLAB_BROKEN", json.dumps({"conn_type": "http"}))
    with pytest.raises(ConfigError, match="gitlab_broken"):
        GitLabProvider("gitlab_broken").default_branch(REPO)
    with pytest.raises(ConfigError, match="gitlab_missing"):
        GitLabProvider("gitlab_missing").default_branch(REPO)
