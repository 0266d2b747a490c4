"""Credentials never reach what the orchestrator writes: the recognisable token shapes are
masked in reports, the session Variable and every XCom of the orchestrator's tasks."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from cicd_devkit.builders import failure, new_state

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.airflow.handoff import StageOutput, Ticket, xcom_of
from cicd_orchestrator.models import Excerpt
from cicd_orchestrator.redact import MASK, redact, register_secret

TOKENS = {
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "github fine-grained": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnop",
    "gitlab personal": "glpat-" + "x" * 20,
    "gitlab runner": "glrt-" + "y" * 24,
    "gitlab deploy": "gldt-" + "z" * 24,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ3b3JrZXIifQ.c2lnbmF0dXJlLW9mLXRoZS1qd3Q",
    "aws key id": "AKIA" + "ABCDEFGHIJKLMNOP",
    "aws secret": "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "slack": "xoxb-" + "1234567890-abcdefghijkl",
    "slack webhook": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX",
    "npm": "npm_" + "a1" * 18,
    "pypi": "pypi-AgEIcHlwaS5vcmc" + "q" * 60,
    "basic auth": "Authorization: Basic dXNlcjpwYXNzd29yZC1vZi10aGUtdXNlcg==",
    "bearer": "authorization: Bearer abcdef0123456789.secret-part",
    "url": "https://robot:s3cr3t-pass@git.example.test/acme/shop.git",
}
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
SECRET_PARTS = [v.split()[-1].split("@")[0].split(":")[-1] for v in TOKENS.values()]


@pytest.mark.parametrize("name", sorted(TOKENS))
def test_each_token_shape_is_masked(name: str) -> None:
    text = f"before {TOKENS[name]} after"
    clean = redact(text)
    assert MASK in clean and clean.startswith("before") and clean.endswith("after")
    secret = TOKENS[name].split()[-1].split("@")[0]
    assert secret not in clean


def test_a_private_key_is_masked_whole() -> None:
    clean = redact(f"key:\n{PEM}\nnext")
    assert "b3BlbnNzaC1rZXk" not in clean and "PRIVATE KEY" not in clean


def _log_of_everything() -> str:
    return "\n".join([*TOKENS.values(), PEM, "registered: worker-canary-value-42"])


def test_the_session_variable_and_its_report_carry_no_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values: dict[str, str] = {}

    class Variables:
        def get(self, key: str, default: Any = None) -> Any:
            return values.get(key, default)

        def set(self, key: str, value: str, description: str | None = None) -> None:
            values[key] = value

    monkeypatch.setattr(state_store, "_variable", lambda: Variables())
    register_secret("worker-canary-value-42")
    state = new_state()
    bad = failure()
    bad.message = _log_of_everything()
    bad.excerpts = [Excerpt(1, 20, _log_of_everything())]
    state.failures = [bad]
    state.errors = [_log_of_everything()]
    state_store.save_session(state)
    (saved,) = values.values()
    for secret in [*SECRET_PARTS, "worker-canary-value-42", "b3BlbnNzaC1rZXk"]:
        assert secret not in saved
    assert "worker-canary-value-42" not in json.loads(saved)["report"]


def test_every_xcom_of_the_tasks_is_redacted() -> None:
    register_secret("worker-canary-value-42")
    stage = StageOutput.of(time.time(), [failure(), {"log": _log_of_everything()}])
    ticket = xcom_of(Ticket("s", 1, {"note": _log_of_everything()}))
    for xcom in (stage, ticket):
        text = json.dumps(xcom)
        for secret in [*SECRET_PARTS, "worker-canary-value-42", "b3BlbnNzaC1rZXk"]:
            assert secret not in text
