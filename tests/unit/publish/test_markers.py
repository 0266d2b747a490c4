"""Signed markers: the key (configured, derived from the deployment's secret, or none), the
signature, and the configuration keys only the deployment may set."""

from __future__ import annotations

import logging

import pytest

from cicd_orchestrator.airflow import runtime
from cicd_orchestrator.ci.base import signed
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.publish import markers
from cicd_orchestrator.publish.markers import marker, signing_key, verify

KEY = signing_key("a-deployment-marker-key")


def test_a_marker_is_signed_and_verified_with_its_key() -> None:
    mark = marker(KEY, "cicd-github-run7-abc", "pull-request", 2)
    assert mark.startswith("<!-- cicd-orchestrator:pull-request:cicd-github-run7-abc:attempt=2")
    assert mark.endswith(" -->") and signed(mark) and verify(KEY, mark)
    assert mark == marker(KEY, "cicd-github-run7-abc", "pull-request", 2)  # stable
    assert mark != marker(KEY, "cicd-github-run7-abc", "pull-request", 3)
    assert not verify(signing_key("another-deployment-key"), mark)
    assert not verify(None, mark)


def test_unsigned_and_forged_markers_do_not_verify() -> None:
    unsigned = marker(None, "s", "issue")
    assert unsigned == "<!-- cicd-orchestrator:issue:s -->" and not signed(unsigned)
    assert not verify(KEY, unsigned)
    real = marker(KEY, "s", "issue")
    forged = real.replace(real[-10:-4], "000000")
    assert not verify(KEY, forged)
    moved = marker(KEY, "s", "issue").replace(":issue:s", ":issue:t")
    assert not verify(KEY, moved)


def test_the_key_comes_from_the_configuration_else_the_deployment_secret() -> None:
    assert signing_key("configured-key-0123") == b"configured-key-0123"
    derived = signing_key(None, "fernet-secret-of-the-deployment")
    assert derived and len(derived) == 32 and derived != b"fernet-secret-of-the-deployment"
    assert signing_key(None, "fernet-secret-of-the-deployment") == derived
    assert signing_key("configured-key-0123", "fernet-secret") == b"configured-key-0123"
    assert signing_key(None, None) is None and signing_key("", "") is None


def test_the_glue_derives_the_key_from_the_fernet_key() -> None:
    settings = {("core", "fernet_key"): "newest-fernet-key, older-fernet-key"}
    secret = runtime.deployment_secret(lambda section, key: settings.get((section, key)))
    assert secret == "newest-fernet-key"
    assert runtime.deployment_secret(lambda section, key: None) is None


def test_no_key_warns_once(lint_attempt, caplog: pytest.LogCaptureFixture) -> None:
    attempt = lint_attempt.attempt
    attempt.config = load_config({"local_ci_root": str(attempt.config.local_root())})
    markers._warn_unsigned.cache_clear()
    caplog.set_level(logging.WARNING)
    assert markers.key_of(attempt) is None and markers.key_of(attempt) is None
    assert caplog.text.count("no marker key") == 1
    attempt.marker_key = KEY
    assert markers.key_of(attempt) == KEY


@pytest.mark.parametrize(
    "bad",
    [
        {"marker_key": "short"},
        {"marker_key": " " * 20},
        {"airflow_base_url": "javascript:alert(1)"},
        {"airflow_base_url": "ftp://airflow.example.com"},
    ],
)
def test_invalid_publishing_keys_are_clear_errors(bad: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_config(bad)


def test_marker_key_and_base_url_are_the_deployment_s_only() -> None:
    config = load_config(
        {"marker_key": "k" * 20, "airflow_base_url": "https://airflow.example.com/"}
    )
    assert config.with_run_overrides({"max_attempts": 2}).marker_key == "k" * 20
    for key, value in (("marker_key", "x" * 20), ("airflow_base_url", "https://evil.example")):
        with pytest.raises(ConfigError, match="may be set only by the deployment"):
            config.with_run_overrides({key: value})
