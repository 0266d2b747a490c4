"""The command sandbox: real processes in a bubblewrap sandbox by allowlist.

A repository command must not see the worker's processes, its environment or the
deployment's files (airflow.cfg, the SQLite database, the passwords file), while its working
directory, exit status, output, timeout and cancellation behave as without the sandbox.
(Adversarial cases, the network and the limits: ``tests/security/``.)
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from cicd_orchestrator import sandbox
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.step_process import run_process
from cicd_orchestrator.process import kill_group, run_command, scrubbed_env

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (make test installs it)"
)

SECRET = "s3cr3t-meta-db-password"


@pytest.fixture(autouse=True)
def fresh_sandbox(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(sandbox.ENV_VAR, raising=False)
    sandbox.configure(None)
    sandbox.reset()
    yield
    sandbox.configure(None)
    sandbox.reset()


@pytest.fixture
def airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake deployment: its files hold SECRET, its variables are in this process."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    elsewhere = tmp_path / "db"
    elsewhere.mkdir()
    (home / "airflow.cfg").write_text(
        f"[database]\nsql_alchemy_conn = postgresql://u:{SECRET}@h/db\n"
    )
    (home / "airflow.db").write_text(SECRET)
    (home / "webserver_config.py").write_text(f"SECRET_KEY = '{SECRET}'\n")
    (home / "simple_auth_manager_passwords.json.generated").write_text(f'{{"admin": "{SECRET}"}}')
    (elsewhere / "meta.db").write_text(SECRET)
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{elsewhere}/meta.db")
    monkeypatch.setenv("AIRFLOW__CELERY__RESULT_BACKEND", f"db+postgresql://u:{SECRET}@h/db")
    monkeypatch.setenv("AIRFLOW_CONN_METADATA", f"postgresql://u:{SECRET}@h/db")
    # nothing names them to the sandbox: it shows a command only its own folders
    return home


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def sh(script: str, cwd: Path, timeout: float = 30, **kwargs):
    return run_command(["sh", "-c", script], cwd=cwd, timeout=timeout, **kwargs)


def host_processes_with(marker: str) -> list[int]:
    """Pids (of this pid namespace) whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


def test_the_sandbox_works_on_this_machine() -> None:
    assert sandbox.unavailable_reason() is None


def test_a_command_sees_only_its_own_processes(work: Path) -> None:
    result = sh("for p in /proc/[0-9]*; do echo ${p#/proc/} $(cat $p/comm); done", work)
    assert result.returncode == 0, result.output
    procs = dict(line.split(" ", 1) for line in result.output.splitlines())
    assert len(procs) <= 5, procs
    assert "1" in procs  # the namespace's init
    assert str(os.getpid()) not in procs or procs[str(os.getpid())] != "pytest"
    assert not any("python" in comm or "pytest" in comm for comm in procs.values()), procs
    ps = shutil.which("ps")
    if ps:
        out = run_command([ps, "-e", "-o", "pid=,comm="], cwd=work, timeout=30).output
        assert len(out.strip().splitlines()) <= 4, out


def test_a_command_cannot_read_the_deployment_files(airflow_home: Path, work: Path) -> None:
    files = [
        airflow_home / "airflow.cfg",
        airflow_home / "airflow.db",
        airflow_home / "webserver_config.py",
        airflow_home / "simple_auth_manager_passwords.json.generated",
        Path(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"][len("sqlite:///") :]),
    ]
    script = "; ".join(f"cat '{f}'" for f in files) + "; ls -la " + str(airflow_home)
    result = sh(script, work)
    # not masked but absent: the sandbox shows nothing it was not told to
    assert result.output.count("No such file or directory") == len(files) + 1, result.output
    assert SECRET not in result.output
    # writing does not reach them either
    sh(f"echo overwritten > '{files[0]}'", work)
    assert SECRET in files[0].read_text()


def test_a_command_cannot_read_the_worker_environment(airflow_home: Path, work: Path) -> None:
    script = (
        f"cat /proc/{os.getpid()}/environ /proc/{os.getppid()}/environ 2>/dev/null; "
        "for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; echo; done; env"
    )
    result = sh(script, work)
    assert SECRET not in result.output
    assert "AIRFLOW__" not in result.output and "AIRFLOW_CONN_" not in result.output


def test_a_command_cannot_undo_the_masks(airflow_home: Path, work: Path) -> None:
    cfg = airflow_home / "airflow.cfg"
    script = (
        f"umount '{cfg}' 2>&1; umount /proc 2>&1; mount --bind / /mnt 2>&1; "
        f"cat '{cfg}'; cat /proc/{os.getpid()}/environ 2>&1; "
        "grep CapEff /proc/self/status; unshare -r -m sh -c \"umount '" + str(cfg) + "' 2>&1; "
        "cat '" + str(cfg) + "'\" 2>&1"
    )
    result = sh(script, work)
    assert SECRET not in result.output
    assert "CapEff:\t0000000000000000" in result.output


def test_the_working_directory_behaves_normally(airflow_home: Path, work: Path) -> None:
    (work / "input.txt").write_text("from the repository\n")
    result = sh("pwd; cat input.txt; echo written > out.txt; mkdir -p sub && echo x > sub/y", work)
    assert result.returncode == 0, result.output
    assert result.output.splitlines()[:2] == [str(work), "from the repository"]
    assert (work / "out.txt").read_text() == "written\n"
    assert (work / "sub" / "y").read_text() == "x\n"


def test_the_working_directory_is_the_only_visible_part_of_its_parent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "repo").mkdir(parents=True)
    (home / "repo" / "file").write_text("mine\n")
    (home / "sibling").write_text(SECRET)
    result = sh("cat file; ls -a ..; cat ../sibling 2>/dev/null", home / "repo")
    assert result.output.split() == ["mine", ".", "..", "repo"]


def test_a_sensitive_directory_is_hidden_without_naming_it(tmp_path: Path, work: Path) -> None:
    secrets_dir = tmp_path / "passwords"
    secrets_dir.mkdir()
    (secrets_dir / "admin").write_text(SECRET)
    result = sh(f"ls -a '{secrets_dir}' 2>&1; cat '{secrets_dir}/admin' 2>/dev/null", work)
    assert SECRET not in result.output and "No such file or directory" in result.output


def test_exit_status_output_and_environment_pass_through(work: Path) -> None:
    odd = "a b\n'\"$HOME`id`\\ ; end"
    result = run_command(
        ["sh", "-c", 'printf "%s" "$ODD"; echo; echo to-stderr >&2; exit 3'],
        cwd=work,
        env_extra={"ODD": odd, "LD_PRELOAD": ""},
    )
    assert result.returncode == 3
    assert result.output == odd + "\nto-stderr\n"
    env = run_command(["env"], cwd=work, env_extra={"FOO": "bar"}).output.splitlines()
    assert "FOO=bar" in env
    assert not [line for line in env if line.startswith(("CICD_SANDBOX", "PWD="))]


def test_a_missing_program_is_the_same_error_as_without_sandbox(work: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run_command(["no-such-program-here"], cwd=work)


def test_a_timeout_kills_the_command_and_its_children(work: Path) -> None:
    start = time.monotonic()
    result = sh("sleep 31.4159 & setsid sleep 31.4159 & sleep 31.4159", work, timeout=0.5)
    assert result.timed_out
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    assert host_processes_with("31.4159") == []


def test_background_processes_die_with_a_repair_command(work: Path) -> None:
    result = sh("setsid sleep 27.1828 > /dev/null 2>&1 & echo started", work)
    assert result.returncode == 0 and "started" in result.output
    time.sleep(0.2)
    assert host_processes_with("27.1828") == []


def _step(argv: list[str], cwd: Path, log: JobLog, groups: list[int] | None, **kw):
    return run_process(
        argv,
        cwd=str(cwd),
        env=scrubbed_env(),
        job_log=log,
        timeout=kw.pop("timeout", 30),
        output_cap=kw.pop("output_cap", 1_000_000),
        groups=groups,
        **kw,
    )


def test_a_step_background_process_lives_until_its_group_is_killed(
    work: Path, tmp_path: Path
) -> None:
    log = JobLog(tmp_path / "job.log")
    groups: list[int] = []
    start = time.monotonic()
    first = _step(
        ["sh", "-c", "(sleep 0.3; echo late > bg.txt; exec sleep 29.9792) >&- 2>&- & echo first"],
        work,
        log,
        groups,
    )
    # the output is read for up to 2 s more while the step's background processes live
    assert first.exit_code == 0 and time.monotonic() - start < 5
    second = _step(
        ["sh", "-c", "for i in $(seq 50); do [ -s bg.txt ] && break; sleep 0.1; done; cat bg.txt"],
        work,
        log,
        groups,
    )
    assert second.exit_code == 0
    assert host_processes_with("29.9792"), "the first step's background process died"
    for pgid in groups:
        kill_group(pgid)
    time.sleep(0.2)
    assert host_processes_with("29.9792") == []
    log.close()
    text = (tmp_path / "job.log").read_text()
    assert "first" in text and "late" in text.split("first", 1)[1]


def test_a_step_exit_status_is_its_command_s(work: Path, tmp_path: Path) -> None:
    log = JobLog(tmp_path / "job.log")
    groups: list[int] = []
    assert _step(["sh", "-c", "exit 5"], work, log, groups).exit_code == 5
    assert _step(["sh", "-c", "exit 0"], work, log, None).exit_code == 0
    missing = _step(["no-such-shell"], work, log, groups)
    assert missing.exit_code is None and "cannot start no-such-shell" in (missing.error or "")
    for pgid in groups:
        kill_group(pgid)


def test_a_step_timeout_and_cancel_kill_everything(work: Path, tmp_path: Path) -> None:
    log = JobLog(tmp_path / "job.log")
    groups: list[int] = []
    start = time.monotonic()
    out = _step(
        ["sh", "-c", "setsid sleep 33.3333 & sleep 33.3333"], work, log, groups, timeout=0.5
    )
    assert out.timed_out and time.monotonic() - start < 10
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    out = _step(["sh", "-c", "sleep 33.3333 & sleep 33.3333"], work, log, groups, cancel=cancel)
    assert out.cancelled
    time.sleep(0.2)
    assert host_processes_with("33.3333") == []


def test_required_refuses_to_run_without_the_sandbox(
    work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "_probe", lambda: "forced failure of the probe")
    monkeypatch.setenv(sandbox.ENV_VAR, "required")
    with pytest.raises(sandbox.SandboxUnavailableError, match="forced failure of the probe"):
        run_command(["sh", "-c", "echo ran > ran.txt"], cwd=work)
    log = JobLog(tmp_path / "job.log")
    out = _step(["sh", "-c", "echo ran > ran.txt"], work, log, [])
    assert out.exit_code is None and "sandbox is required" in (out.error or "")
    assert not (work / "ran.txt").exists()


def test_the_configured_mode_applies_and_the_variable_overrides_it(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "_probe", lambda: "forced failure of the probe")
    sandbox.configure("required")
    assert sandbox.mode() == "required"
    with pytest.raises(sandbox.SandboxUnavailableError):
        run_command(["true"], cwd=work)
    monkeypatch.setenv(sandbox.ENV_VAR, "off")
    assert run_command(["true"], cwd=work).returncode == 0
    monkeypatch.setenv(sandbox.ENV_VAR, "disable")  # unknown: fails closed
    assert sandbox.mode() == "required"
    with pytest.raises(ValueError):
        sandbox.configure("sometimes")


def test_auto_runs_plainly_with_one_warning_when_unavailable(
    work: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sandbox, "_probe", lambda: "forced failure of the probe")
    sandbox.configure("auto")  # the default is required now; auto is the demo's choice
    with caplog.at_level(logging.WARNING, logger="cicd_orchestrator.sandbox"):
        first = run_command(["sh", "-c", f"test -d /proc/{os.getpid()} && echo plain"], cwd=work)
        run_command(["true"], cwd=work)
    assert first.output == "plain\n"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_off_runs_plainly(airflow_home: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.ENV_VAR, "off")
    result = sh(f"test -d /proc/{os.getpid()} && cat '{airflow_home}/airflow.cfg'", work)
    assert result.returncode == 0 and SECRET in result.output
