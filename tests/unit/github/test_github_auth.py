"""The provider built from an Airflow connection (GithubHook): a token, or a GitHub App."""

from __future__ import annotations

import json
import subprocess

import pytest
from gh_helpers import REPO, TOKEN, World

from cicd_orchestrator.ci.github.auth import ASKPASS_SCRIPT, askpass_path
from cicd_orchestrator.ci.github.provider import GitHubProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.repair.workspace import MirrorCache


def test_the_provider_reads_the_github_default_connection(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "github", "password": TOKEN, "host": world.server.api_url}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    provider = make_provider("github", load_config({}))
    assert isinstance(provider, GitHubProvider) and provider.conn_id == "github_default"
    assert provider.default_branch(REPO) == "main"
    assert provider.base_url == world.server.api_url
    remote = provider.git_remote(REPO)
    assert remote.env["CICD_GIT_TOKEN"] == TOKEN and TOKEN not in remote.url


def test_a_bad_connection_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_BROKEN", json.dumps({"conn_type": "github"}))
    with pytest.raises(ConfigError, match="github_broken"):
        GitHubProvider("github_broken").default_branch(REPO)


def test_github_app_installation_auth(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: object
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
    world.server.register_app(4242, public_pem, 77)
    conn = {
        "conn_type": "github",
        "host": world.server.api_url,
        "extra": {"app_id": 4242, "installation_id": 77, "private_key": private_pem},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_APP", json.dumps(conn))
    provider = GitHubProvider("github_app", timeout=5)
    assert provider.default_branch(REPO) == "main"
    remote = provider.git_remote(REPO)
    token = remote.env["CICD_GIT_TOKEN"]
    assert token.startswith("ghs_") and token != TOKEN
    mirror = MirrorCache(world.tmp / "app-mirrors").mirror(REPO, remote, [world.made.head_sha])
    assert (mirror / "HEAD").exists()


def test_askpass_script_holds_no_secret_and_answers_git() -> None:
    path = askpass_path()
    assert path.read_text() == ASKPASS_SCRIPT and TOKEN not in ASKPASS_SCRIPT
    env = {"CICD_GIT_TOKEN": "s3cret-value", "PATH": "/usr/bin:/bin"}
    user = subprocess.run([str(path), "Username for 'http://x':"], env=env, capture_output=True)
    password = subprocess.run([str(path), "Password for 'http://x':"], env=env, capture_output=True)
    assert user.stdout == b"x-access-token\n" and password.stdout == b"s3cret-value\n"
