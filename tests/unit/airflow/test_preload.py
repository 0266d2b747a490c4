"""The package imported once in the components that fork task processes (the scheduler, the
Celery worker), through Airflow's local settings, as the deployments start Airflow."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cicd_orchestrator.airflow.bodies import Body
from cicd_orchestrator.airflow.factory import build_attempt_dags, build_monitor_dag
from cicd_orchestrator.airflow.preload import forks_tasks, package_modules, preload

INCLUDE = Path(__file__).resolve().parents[3] / "include"

#: what a task of each stage runs, and the clients it builds
TASK_MODULES = [
    "cicd_orchestrator.airflow.factory",
    "cicd_orchestrator.stages.discovery",
    "cicd_orchestrator.stages.fixing",
    "cicd_orchestrator.publish.attempt",
    "cicd_orchestrator.logs.categorize",
    "github",
]

_PROBE = """
import json, sys
sys.argv = ["airflow", *sys.argv[1:]]
import airflow  # Airflow's start-up in every component: its settings import the local settings
found = {m: m in sys.modules for m in %r}
reader = sys.modules.get("cicd_orchestrator.logs.analyze")
found["log reader ready"] = bool(reader and reader._searcher.cache_info().currsize)
print(json.dumps(found))
"""
#: what the probe says besides the modules
READY = "log reader ready"
#: a test that probes a component: a whole Airflow start-up in a new interpreter (make test-slow)
starts_airflow = pytest.mark.slow


def _component(tmp_path: Path, *command: str, **env: str) -> dict[str, bool]:
    """Which of TASK_MODULES a component started as ``airflow <command>`` has imported, and
    whether its log reader has its pattern library and prefilter made (:data:`READY`)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE % (TASK_MODULES,), *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path),
            "PYTHONPATH": str(INCLUDE),  # as every deployment of the project sets it
            **env,
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@starts_airflow
@pytest.mark.parametrize("command", [("scheduler",), ("celery", "worker", "--concurrency", "4")])
def test_a_component_that_forks_tasks_has_the_package_before_its_first_task(tmp_path, command):
    assert _component(tmp_path, *command) == dict.fromkeys([*TASK_MODULES, READY], True)


@starts_airflow
def test_the_other_components_and_commands_import_nothing_more(tmp_path):
    """The API server, end to end; which command lines fork tasks is
    :func:`test_the_command_lines_that_fork_tasks`'s (the triggerer, the DAG processor and
    the CLI's commands among them), each a whole Airflow start-up less."""
    assert _component(tmp_path, "api-server") == dict.fromkeys([*TASK_MODULES, READY], False)


@starts_airflow
def test_preloading_can_be_turned_off(tmp_path):
    off = _component(tmp_path, "scheduler", CICD_PRELOAD="0")
    assert off == dict.fromkeys([*TASK_MODULES, READY], False)


def test_the_command_lines_that_fork_tasks():
    assert forks_tasks(["airflow", "scheduler", "--pid", "/run/s.pid"])
    assert forks_tasks(["/venv/bin/airflow", "celery", "worker", "-q", "default"])
    for argv in (
        ["airflow"],
        ["airflow", "celery", "flower"],
        ["airflow", "api-server"],
        ["airflow", "triggerer"],
        ["airflow", "dag-processor"],
        ["airflow", "dags", "list"],
        ["airflow", "standalone"],  # its scheduler is a process of its own
        ["airflow", "tasks", "run"],
        ["pytest", "tests"],
    ):
        assert not forks_tasks(argv), argv


def test_a_module_that_fails_to_import_does_not_stop_the_component(monkeypatch, caplog):
    monkeypatch.delenv("CICD_PRELOAD", raising=False)
    broken = "cicd_orchestrator.no_such_module_here"
    with caplog.at_level(logging.WARNING, logger="cicd_orchestrator.airflow.preload"):
        done = preload(["airflow", "scheduler"], [broken, "cicd_orchestrator.stages.opening"])
    assert done == ["cicd_orchestrator.stages.opening"]
    assert broken in caplog.text and "ModuleNotFoundError" in caplog.text


def test_a_warm_up_that_fails_does_not_stop_the_component(monkeypatch, caplog):
    from cicd_orchestrator.airflow import preload as preload_module

    monkeypatch.delenv("CICD_PRELOAD", raising=False)
    monkeypatch.setattr(
        preload_module, "WARM_UPS", ("cicd_orchestrator.stages.opening:no_such_function",)
    )
    with caplog.at_level(logging.WARNING, logger="cicd_orchestrator.airflow.preload"):
        done = preload(["airflow", "scheduler"], ["cicd_orchestrator.stages.opening"])
    assert done == ["cicd_orchestrator.stages.opening"]
    assert "no_such_function failed: AttributeError" in caplog.text


def test_every_task_body_is_in_what_is_preloaded():
    """A body moved out of the package would be imported by every task again."""
    dags = [*build_attempt_dags().values(), build_monitor_dag()]
    bodies = {
        task.python_callable.module
        for dag in dags
        for task in dag.tasks
        if isinstance(getattr(task, "python_callable", None), Body)
    }
    assert bodies and bodies <= set(package_modules())
