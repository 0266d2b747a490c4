"""Running one step's process, and the files through which a step talks back to the runner.

:func:`run_process` starts a command in its own session (in the command sandbox, see
:mod:`cicd_orchestrator.sandbox`), copies its output into the job log and stops it on a
timeout, on cancellation or when its output passes the cap. :class:`CommandFiles` are
GitHub's file commands: a step appends to ``$GITHUB_ENV``, ``$GITHUB_OUTPUT`` and
``$GITHUB_PATH``, and the runner reads them when the step ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator import process, sandbox
from cicd_orchestrator.actions.joblog import JobLog, translate_command
from cicd_orchestrator.exceptions import WorkspaceError


@dataclass
class StepOutcome:
    """How a step's process ended."""

    exit_code: int | None
    timed_out: bool = False
    capped: bool = False
    cancelled: bool = False
    error: str | None = None


class _Pump(threading.Thread):
    """Copies a step's output (stdout and stderr interleaved) into the job log."""

    def __init__(self, fd: int, job_log: JobLog, cap: int, outputs: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.job_log = job_log
        self.cap = cap
        self.outputs = outputs
        self.total = 0
        self.capped = threading.Event()

    def run(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if self.capped.is_set():
                continue  # drain without recording
            buf += chunk
            *lines, buf = buf.split(b"\n")
            self._emit(lines)
            if self.total > self.cap:
                self.capped.set()  # the log as written (timestamps included) passed the cap
        if buf and not self.capped.is_set():
            self._emit([buf])
        os.close(self.fd)

    def _emit(self, lines: list[bytes]) -> None:
        if not lines:
            return
        text = "\n".join(
            translate_command(raw.decode("utf-8", "replace"), self.job_log, self.outputs)
            for raw in lines
        )
        self.total += self.job_log.write(text)


def _cannot_start(argv: list[str], exc: OSError) -> StepOutcome:
    return StepOutcome(exit_code=None, error=f"cannot start {argv[0]}: {exc.strerror or exc}")


def run_process(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    job_log: JobLog,
    timeout: float | None,
    output_cap: int,
    cancel: threading.Event | None = None,
    outputs: dict[str, str] | None = None,
    groups: list[int] | None = None,
    writable: Sequence[str | os.PathLike[str]] | None = None,
    readable: Sequence[str] = (),
    network: Sequence[str] = (),
    netns: str | None = None,
    hosts_file: str | None = None,
    engine_env: dict[str, str] | None = None,
) -> StepOutcome:
    """Run one command in its own session (in the command sandbox, see
    :mod:`cicd_orchestrator.sandbox`), its output in the log; kill its group on timeout, on
    cancellation or when its output passes the cap.

    ``writable``: the folders the command may write (default ``cwd``); ``readable``: tool
    folders it may read; ``network``: the registries it may reach through the egress proxy
    (default none); ``netns`` and ``hosts_file``: the network of the job's pod (see
    :func:`cicd_orchestrator.sandbox.prepare`). With ``groups``, the caller kills the
    recorded groups later (at the end of the job), so the command's background processes
    may outlive it, as on GitHub. With ``engine_env``, ``argv`` is a container engine's
    command that runs the step in the job's container, started as is with that environment
    (the command line carries the step's own)."""
    process.reap_lingering()
    try:
        launch = (
            sandbox.engine_launch(argv, engine_env)
            if engine_env is not None
            else sandbox.prepare(
                argv,
                cwd=cwd,
                env=env,
                linger=groups is not None,
                writable=writable,
                readable=readable,
                network=network,
                netns=netns,
                hosts_file=hosts_file,
            )
        )
    except WorkspaceError as exc:  # the sandbox is required and unavailable, or refused
        return StepOutcome(exit_code=None, error=str(exc))
    except OSError as exc:
        return _cannot_start(argv, exc)
    with launch:
        try:
            proc, read_fd = launch.start(cwd)
        except OSError as exc:
            return _cannot_start(argv, exc)
        if groups is not None:
            groups.append(proc.pid)
        pump = _Pump(read_fd, job_log, output_cap, outputs if outputs is not None else {})
        pump.start()
        outcome = _wait(proc, pump, timeout, cancel, launch.exit_status if launch.lingers else None)
    if outcome.exit_code is None or outcome.capped or outcome.timed_out:
        process.kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    elif proc.poll() is None:
        process.keep_lingering(proc)
    pump.join(timeout=2.0)
    return outcome


def _wait(
    proc: subprocess.Popen[bytes],
    pump: _Pump,
    timeout: float | None,
    cancel: threading.Event | None,
    exited: Callable[[], int | None] | None = None,
) -> StepOutcome:
    """Wait for the command; ``exited`` gives its status when the process that runs it (a
    lingering sandbox) may outlive it."""
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    pause = 0.001  # short commands are seen ending at once, long ones cost few wake-ups
    while True:
        code = exited() if exited is not None else None
        if code is None:
            code = proc.poll()
        if code is not None:
            return StepOutcome(exit_code=code, capped=pump.capped.is_set())
        stop = _reason_to_stop(pump, deadline, cancel)
        if stop is not None:
            process.kill_group(proc.pid)
            proc.wait()
            return stop
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _reason_to_stop(
    pump: _Pump, deadline: float | None, cancel: threading.Event | None
) -> StepOutcome | None:
    """Why a command still running must be stopped now (its output cap, its deadline, the
    job's cancellation), or None."""
    if pump.capped.is_set():
        return StepOutcome(exit_code=None, capped=True)
    if deadline is not None and time.monotonic() >= deadline:
        return StepOutcome(exit_code=None, timed_out=True)
    if cancel is not None and cancel.is_set():
        return StepOutcome(exit_code=None, cancelled=True)
    return None


# --------------------------------------------------------------------------- file commands
_HEREDOC_RE = re.compile(r"^([^=<\s]+)<<(.+)$")
_FILE_COMMANDS = ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")


#: the most of a file command the runner reads (a step may write without end)
MAX_COMMAND_FILE_BYTES = 1_000_000


def read_command_file(path: Path) -> str:
    """A file a step wrote a file command to: read without following a link (a step may
    replace it by a link to a file of the host) and at most ``MAX_COMMAND_FILE_BYTES``;
    empty when it is gone or is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return ""
        return fh.read(MAX_COMMAND_FILE_BYTES).decode("utf-8", errors="replace")


def parse_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines and ``NAME<<DELIM`` heredocs (GITHUB_ENV / GITHUB_OUTPUT)."""
    lines = read_command_file(path).splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = _HEREDOC_RE.match(line)
        if m:
            name, delim = m.group(1), m.group(2)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, _, value = line.partition("=")
            out[name.strip()] = value
    return out


@dataclass(frozen=True)
class CommandFiles:
    """The empty files one step writes its file commands to (new ones for every step)."""

    paths: dict[str, Path]

    @classmethod
    def create(cls, runner_temp: Path) -> CommandFiles:
        """New files in a new folder of ``runner_temp`` (never one an earlier step made: a
        step may leave a link where the runner would write)."""
        folder = runner_temp / f"_runner_file_commands_{uuid.uuid4().hex}"
        folder.mkdir()
        paths = {}
        for name in _FILE_COMMANDS:
            path = folder / name.lower()
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
            paths[name] = path
        return cls(paths)

    def env(self) -> dict[str, str]:
        """The variables that tell the step where the files are."""
        return {name: str(path) for name, path in self.paths.items()}

    def outputs(self) -> dict[str, str]:
        """What the step wrote to ``$GITHUB_OUTPUT``."""
        return parse_env_file(self.paths["GITHUB_OUTPUT"])

    def env_added(self) -> dict[str, str]:
        """What the step wrote to ``$GITHUB_ENV`` (for the next steps)."""
        return parse_env_file(self.paths["GITHUB_ENV"])

    def path_added(self) -> list[str]:
        """The folders the step wrote to ``$GITHUB_PATH``, in order."""
        text = read_command_file(self.paths["GITHUB_PATH"])
        return [p.strip() for p in text.splitlines() if p.strip()]
