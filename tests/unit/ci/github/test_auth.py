"""The provider's client made from an Airflow connection (``AirflowClients.github``, through
GithubHook): a token, or a GitHub App; the client is made at the provider's first use. And
git's askpass script."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from cicd_devkit.worlds import GITHUB_TOKEN as TOKEN
from cicd_devkit.worlds import REPO, GitHubWorld

from cicd_orchestrator.airflow.connections import AirflowClients
from cicd_orchestrator.ci.credentials import ASKPASS_SCRIPT, askpass_path
from cicd_orchestrator.ci.github.provider import GitHubProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.git import MirrorCache


def test_the_provider_reads_the_github_default_connection(
    github_world: GitHubWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "github", "password": TOKEN, "host": github_world.github.api_url}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    asked: list[str] = []

    class Recording(AirflowClients):
        def github(self, conn_id: str) -> Any:
            asked.append(conn_id)
            return super().github(conn_id)

    provider = make_provider("github", load_config({}), Recording())
    assert isinstance(provider, GitHubProvider) and asked == []  # read at the first use
    assert provider.default_branch(REPO) == "main" and asked == ["github_default"]
    assert provider.base_url == github_world.github.api_url
    remote = provider.git_remote(REPO)
    assert remote.env["CICD_GIT_TOKEN"] == TOKEN and TOKEN not in remote.url


def test_a_bad_connection_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_BROKEN", json.dumps({"conn_type": "github"}))
    with pytest.raises(ConfigError, match="github_broken"):
        make_provider(
            "github", load_config({"github_conn_id": "github_broken"}), AirflowClients()
        ).default_branch(REPO)


def test_github_app_installation_auth(
    github_world: GitHubWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    github_world.github.register_app(4242, public_pem, 77)
    conn = {
        "conn_type": "github",
        "host": github_world.github.api_url,
        "extra": {"app_id": 4242, "installation_id": 77, "private_key": private_pem},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_APP", json.dumps(conn))
    provider = GitHubProvider(connect=lambda: AirflowClients().github("github_app"))
    assert provider.default_branch(REPO) == "main"
    remote = provider.git_remote(REPO)
    token = remote.env["CICD_GIT_TOKEN"]
    assert token.startswith("ghs_") and token != TOKEN
    mirror = MirrorCache(github_world.tmp / "app-mirrors").mirror(
        REPO, remote, [github_world.head_sha]
    )
    assert (mirror / "HEAD").exists()


def test_askpass_script_holds_no_secret_and_answers_git() -> None:
    path = askpass_path()
    assert path.read_text() == ASKPASS_SCRIPT and TOKEN not in ASKPASS_SCRIPT
    env = {"CICD_GIT_TOKEN": "s3cret-value", "PATH": "/usr/bin:/bin"}
    user = subprocess.run([str(path), "Username for 'http://x':"], env=env, capture_output=True)
    password = subprocess.run([str(path), "Password for 'http://x':"], env=env, capture_output=True)
    assert user.stdout == b"x-access-token\n" and password.stdout == b"s3cret-value\n"
