"""The task's process sets the command sandbox from the configuration in force (the sandbox
shows a command only its own folders: no Airflow file needs naming)."""

from __future__ import annotations

import logging

import pytest

from cicd_orchestrator import sandbox
from cicd_orchestrator.airflow import runtime
from cicd_orchestrator.config import load_config


@pytest.fixture(autouse=True)
def fresh_sandbox(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(sandbox.ENV_VAR, raising=False)
    sandbox.reset()
    yield
    sandbox.configure(None)
    sandbox.reset()


def test_a_task_process_takes_the_configured_mode() -> None:
    runtime.prepare_process(load_config({"command_sandbox": "off"}))
    assert sandbox.mode() == "off"
    runtime.prepare_process(load_config({}))
    assert sandbox.mode() == "required"  # the default of a deployment


def test_a_fallback_of_auto_is_loud_in_the_task_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sandbox, "_probe", lambda: "forced failure of the probe")
    with caplog.at_level(logging.WARNING):
        runtime.prepare_process(load_config({"command_sandbox": "auto"}))
    text = caplog.text
    assert "UNISOLATED" in text and "forced failure of the probe" in text
