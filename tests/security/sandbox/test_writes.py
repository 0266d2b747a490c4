"""A repository command writes only its own folders (issue 12, findings 2 and 15): not the
runner tool folder, the orchestrator's virtual environment, the worker's home nor the host's
/tmp; a workflow's ``pip install`` reaches neither the tool folder nor the orchestrator."""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.process import run_command

RunFn = Callable[..., Any]
WHEEL = '"$RUNNER_TEMP"/evilpkg-1.0-py3-none-any.whl'


def _snapshot(folder: Path) -> dict[str, float]:
    """Every file of ``folder`` (but caches) with its modification time."""
    return {
        str(p): p.stat().st_mtime
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def tools() -> Path:
    folder = runner_tools.folder()
    if folder is None:
        pytest.skip("no runner tool folder (make runner-tools builds it)")
    return folder


def test_a_repair_tool_writes_only_its_working_directory(
    work: Path, tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_home = tmp_path / "worker-home"
    worker_home.mkdir()
    monkeypatch.setenv("HOME", str(worker_home))
    marker = f"planted-{uuid.uuid4().hex}"
    host_tmp = Path(tempfile.gettempdir()) / marker
    targets = [
        tools / "bin" / marker,
        Path(sys.prefix) / marker,
        Path(sys.prefix) / "bin" / marker,
        worker_home / marker,
        worker_home / ".gitconfig",
        host_tmp,
        Path("/usr/local/bin") / marker,
        Path("/etc") / marker,
    ]
    script = "\n".join(f"echo x > '{t}' 2>/dev/null && echo 'WROTE {t}'" for t in targets)
    script += '\necho mine > in-cwd.txt; echo t > "$TMPDIR/t"; echo h > "$HOME/h"; echo ok'
    before = _snapshot(tools)
    result = run_command(["sh", "-c", script], cwd=work, timeout=60)
    assert result.output.rstrip().endswith("ok"), result.output
    for target in targets:
        if target != host_tmp:  # /tmp is the command's own (below: not the host's)
            assert f"WROTE {target}" not in result.output, result.output
    for target in targets:
        assert not target.exists(), target
    assert (work / "in-cwd.txt").read_text() == "mine\n"
    assert _snapshot(tools) == before


def test_a_step_pip_install_reaches_neither_the_tools_nor_the_orchestrator(
    run_workflow: RunFn, tools: Path
) -> None:
    site = next(tools.glob("lib/python3*/site-packages"))
    orchestrator_site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    wf = f"""
    on: push
    jobs:
      install:
        steps:
          - name: build a tiny wheel in the job's folder
            run: |
              python - <<'EOF'
              import os, zipfile
              name = os.path.join(os.environ["RUNNER_TEMP"], "evilpkg-1.0-py3-none-any.whl")
              with zipfile.ZipFile(name, "w") as z:
                  z.writestr("evilpkg.py", "PWNED = True\\n")
                  z.writestr("evilpkg-1.0.dist-info/METADATA",
                             "Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 1.0\\n")
                  z.writestr("evilpkg-1.0.dist-info/WHEEL",
                             "Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
                  z.writestr("evilpkg-1.0.dist-info/RECORD", "")
              print("wheel", name)
              EOF
          - name: into the tool folder
            continue-on-error: true
            run: python -m pip install --no-index --find-links "$RUNNER_TEMP" evilpkg
          - name: into the tool folder with --target
            continue-on-error: true
            run: python -m pip install --no-index --target {site} {WHEEL}
          - name: into the orchestrator's environment
            continue-on-error: true
            run: |
              {sys.executable} -m pip install --no-index \\
                --target {orchestrator_site} {WHEEL}
          - name: as --user
            continue-on-error: true
            run: python -m pip install --user --no-index {WHEEL}
          - name: into a venv of the job (allowed)
            run: |
              python -m venv "$RUNNER_TEMP/venv"
              "$RUNNER_TEMP/venv/bin/pip" install -q --no-index {WHEEL}
              "$RUNNER_TEMP/venv/bin/python" -c "import evilpkg; print('own venv', evilpkg.PWNED)"
    """
    before_tools = _snapshot(tools)
    before_site = sorted(p.name for p in orchestrator_site.iterdir())
    (job,) = run_workflow(wf)
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "own venv True" in text
    assert text.count("Process completed with exit code") == 4, text
    assert "Read-only file system" in text
    assert _snapshot(tools) == before_tools
    assert not list(site.glob("evilpkg*"))
    assert sorted(p.name for p in orchestrator_site.iterdir()) == before_site
    assert not list(orchestrator_site.glob("evilpkg*"))


def test_a_file_command_replaced_by_a_link_is_not_followed(
    run_workflow: Any, tmp_path: Path
) -> None:
    """A step replaces ``$GITHUB_ENV`` by a link to a file of the host: the runner reads
    nothing through it (the host file's text reaches neither the next step nor the log)."""
    host_file = tmp_path / "host-secret.txt"
    host_file.write_text("LEAKED=host-file-canary-91\n")
    wf = f"""
    on: push
    jobs:
      probe:
        steps:
          - run: rm -f "$GITHUB_ENV" && ln -s {host_file} "$GITHUB_ENV"
          - run: echo "leaked=${{LEAKED:-nothing}}"
    """
    (job,) = run_workflow(wf)
    text = job.read_log()
    assert "host-file-canary-91" not in text
    assert "leaked=nothing" in text


def test_the_runner_writes_no_file_through_a_link_a_step_left(
    run_workflow: Any, tmp_path: Path
) -> None:
    """A step leaves links where the runner made the file commands of the next steps: the
    runner creates the next step's files in a new folder, never through them."""
    target = tmp_path / "host-folder"
    target.mkdir()
    wf = f"""
    on: push
    jobs:
      probe:
        steps:
          - run: |
              for d in "$RUNNER_TEMP"/_runner_file_commands*; do
                rm -rf "$d" && ln -s {target} "$d"
              done
              ln -s {target} "$RUNNER_TEMP/_runner_file_commands"
          - run: echo "next step" >> "$GITHUB_STEP_SUMMARY"
    """
    (job,) = run_workflow(wf)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()
    assert list(target.iterdir()) == []
