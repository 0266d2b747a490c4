"""Workflow steps run in the command sandbox: the worker's processes and files are out of
reach, and a step's background process still serves the next steps, as on GitHub (through
files and FIFOs in the job's folders: each step has a network namespace of its own)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cicd_orchestrator import sandbox
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.constants import Conclusion

RunFn = Callable[..., list[JobExecution]]

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (make test installs it)"
)


@pytest.fixture(autouse=True)
def fresh_sandbox(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(sandbox.ENV_VAR, raising=False)
    sandbox.reset()
    yield
    sandbox.configure(None)
    sandbox.reset()


def test_steps_cannot_reach_the_worker(
    run_workflow: RunFn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "airflow.cfg").write_text(
        "[database]\nsql_alchemy_conn = postgresql://u:pw-in-cfg@h/d\n"
    )
    (home / "airflow.db").write_text("rows-of-the-metadata-db")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://u:pw-in-env@h/d")
    wf = f"""
    on: push
    jobs:
      probe:
        steps:
          - run: |
              cat {home}/airflow.cfg {home}/airflow.db 2>&1 || true
              cat /proc/{os.getpid()}/environ || true
              for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; done
              echo "processes=$(ls -d /proc/[0-9]* | wc -l)"
    """
    (job,) = run_workflow(wf)
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    for secret in ("pw-in-cfg", "rows-of-the-metadata-db", "pw-in-env", "AIRFLOW__"):
        assert secret not in text
    assert "airflow.cfg: No such file or directory" in text  # absent, not only masked
    count = int(re.findall(r"processes=(\d+)", text)[-1])
    assert count <= 6, text


def test_a_background_server_serves_the_next_steps(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      server:
        steps:
          - run: |
              R="$RUNNER_TEMP"
              mkfifo "$R/requests"
              serve() { while :; do read x < "$R/requests"; echo "served $x" >> "$R/log"; done; }
              serve >/dev/null 2>&1 &
              echo started
          - timeout-minutes: 0.3
            run: |
              R="$RUNNER_TEMP"
              echo one > "$R/requests"
              for i in $(seq 50); do grep -q one "$R/log" 2>/dev/null && break; sleep 0.1; done
              cat "$R/log"
    """
    (job,) = run_workflow(wf)
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "served one" in text
