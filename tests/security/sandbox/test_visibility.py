"""A repository command sees nothing of the host but its own folders (issue 12, findings 2 and
15): not the orchestrator's virtual environment, the worker's home and git configuration, the
mirrors, another session's clone, the worker's processes, nor Airflow's files."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.process import run_command
from cicd_orchestrator.scratch import make_scratch

RunFn = Callable[..., Any]
#: the canary of the suite (tests/security/sandbox/conftest.py puts it in the worker's environment)
CANARY = "cicd-canary-7f3a9c1e5b"


def probe(paths: list[Path | str]) -> str:
    """A script that tries to list and read each path (and says what it could)."""
    lines = []
    for p in paths:
        lines.append(f"ls -la '{p}' 2>&1 | head -5; cat '{p}' 2>&1 | head -5")
        lines.append(f"[ -e '{p}' ] && echo 'VISIBLE {p}' || true")
    return "\n".join(lines)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The worker's secrets as a deployment lays them out, each holding the canary."""
    home = tmp_path / "worker-home"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[url "https://x:{CANARY}@evil/"]\n\tinsteadOf = h\n')
    airflow = tmp_path / "airflow-home"
    airflow.mkdir()
    (airflow / "airflow.cfg").write_text(f"[core]\nfernet_key = {CANARY}\n")
    (airflow / "airflow.db").write_text(CANARY)
    cache = tmp_path / "cicd-cache"
    (cache / "mirrors" / "acme" / "widgets.git" / "hooks").mkdir(parents=True)
    (cache / "mirrors" / "acme" / "widgets.git" / "config").write_text(CANARY)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AIRFLOW_HOME", str(airflow))
    monkeypatch.setenv("CICD_CACHE_DIR", str(cache))
    monkeypatch.setenv("CICD_WORKSPACE_DIR", str(tmp_path / "scratch"))
    other = make_scratch("cicd-ws-")  # another session's clone
    (other / "secret.txt").write_text(CANARY)
    return {
        "home": home,
        "gitconfig": home / ".gitconfig",
        "airflow": airflow,
        "cache": OrchestratorConfig().cache_root(),
        "other_session": other,
        "venv": Path(sys.prefix),
        "venv_python": Path(sys.executable),
    }


def _assert_nothing_seen(output: str, paths: list[Path | str]) -> None:
    assert CANARY not in output, output
    for p in paths:
        assert f"VISIBLE {p}" not in output, output


def test_a_repair_tool_sees_none_of_the_host(host: dict[str, Path]) -> None:
    mine = make_scratch("cicd-ws-")
    paths: list[Path | str] = [
        host["gitconfig"],
        host["home"],
        Path.home(),
        "/root",
        host["airflow"] / "airflow.cfg",
        host["airflow"],
        host["cache"],
        host["other_session"],
        host["venv"],
        host["venv_python"],
    ]
    script = probe(paths) + f"\ncat /proc/{os.getpid()}/environ /proc/{os.getppid()}/environ"
    script += "\nfor p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; done; env"
    result = run_command(["sh", "-c", script], cwd=mine, timeout=60)
    _assert_nothing_seen(result.output, paths)
    assert "AIRFLOW" not in result.output


def test_a_workflow_step_sees_none_of_the_host(host: dict[str, Path], run_workflow: RunFn) -> None:
    paths: list[Path | str] = [
        host["gitconfig"],
        Path.home(),
        host["airflow"],
        host["cache"],
        host["other_session"],
        host["venv"],
        host["venv_python"],
    ]
    steps = "\n".join(f"              {line}" for line in probe(paths).splitlines())
    wf = f"""
    on: push
    jobs:
      probe:
        steps:
          - run: |
              set +eo pipefail
{steps}
              cat /proc/{os.getpid()}/environ 2>&1 || true
              for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; done
              echo "python=$(command -v python)"
              echo "done probing"
    """
    (job,) = run_workflow(wf)
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    output = text.split("##[endgroup]")[-1]  # what the step printed
    assert "done probing" in output and "No such file or directory" in output
    _assert_nothing_seen(output, paths)
    assert CANARY not in text
    # the job's python is the runner tool folder's, never the orchestrator's interpreter
    assert f"python={host['venv']}/" not in output
    assert f"python={runner_tools.bin_dirs()[0]}/python" in output


def test_the_orchestrator_environment_never_goes_on_a_job_path(
    run_workflow: RunFn,
) -> None:
    from cicd_orchestrator.actions.runner import JobRunner

    orchestrator_bin = str(Path(sys.executable).parent)
    runner = JobRunner(tool_path=[orchestrator_bin])  # a configuration that asks for it
    wf = """
    on: push
    jobs:
      path:
        steps:
          - run: echo "PATH=$PATH"
    """
    (job,) = run_workflow(wf, runner=runner)
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    line = next(ln for ln in text.splitlines() if "PATH=/" in ln and "echo" not in ln)
    assert orchestrator_bin not in line
