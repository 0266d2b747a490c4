"""Repository commands as processes: an allowlisted environment, the command sandbox, a
timeout, capped output, and a process group killed as a whole.

The fixers' repair tools run through :func:`run_command` (in the sandbox, with no network);
the GitHub Actions engine runs its steps with the same environment (:func:`scrubbed_env`)
and the same group kill (:func:`kill_group`). The tools on a command's PATH come from the
runner tool folder (:mod:`cicd_orchestrator.runner_tools`), never from the orchestrator's
own interpreter or environment.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from cicd_orchestrator import runner_tools, sandbox

SYSTEM_PATH = runner_tools.SYSTEM_PATH


def default_tool_path() -> list[str]:
    """The runner tool folder's ``bin`` (its python, pytest and ruff come first); empty when
    there is none. Never the orchestrator's own interpreter."""
    return runner_tools.bin_dirs()


def scrubbed_env(
    extra: Mapping[str, str] | None = None,
    *,
    tool_path: Iterable[str] | None = None,
    home: str | None = None,
    tmpdir: str | None = None,
) -> dict[str, str]:
    """An allowlisted environment for a repository's commands; nothing of ``os.environ``.

    PATH is the tool path (default: the runner tool folder) then the system directories;
    HOME and TMPDIR default to the system temp directory; ``extra`` (GitHub variables,
    workflow env...) is added last and wins.
    """
    tmp = tmpdir or tempfile.gettempdir()
    dirs = list(default_tool_path() if tool_path is None else tool_path)
    path = [d for d in dirs if d] + [d for d in SYSTEM_PATH if d not in dirs]
    env = {
        "PATH": os.pathsep.join(path),
        "HOME": home or tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": tmp,
        "PYTHONUNBUFFERED": "1",
    }
    for key, value in (extra or {}).items():
        env[str(key)] = str(value)
    return env


@dataclass
class CommandResult:
    args: list[str]
    returncode: int
    output: str
    timed_out: bool = False
    truncated: bool = False


def kill_group(pgid: int) -> None:
    """Kill a process group, ignoring one that is already gone. A sandboxed command's group
    holds the init of its pid namespace: when it dies, everything in the namespace dies."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    reap_lingering(pgid)


#: sandboxes whose command ended but whose background processes may still run (a step's
#: server for the next steps), until the job kills their group
_LINGERING: dict[int, subprocess.Popen[bytes]] = {}
_LINGERING_LOCK = threading.Lock()


def keep_lingering(proc: subprocess.Popen[bytes]) -> None:
    """Remember a sandbox whose command ended but whose background processes still run; a
    later :func:`kill_group` of its group, or :func:`reap_lingering`, collects it."""
    with _LINGERING_LOCK:
        _LINGERING[proc.pid] = proc


def reap_lingering(pgid: int | None = None) -> None:
    """Collect the exit of lingering sandboxes (``pgid``: the one just killed)."""
    with _LINGERING_LOCK:
        procs = list(_LINGERING.items())
    for pid, proc in procs:
        if pid == pgid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is not None:
            with _LINGERING_LOCK:
                _LINGERING.pop(pid, None)


#: a command whose output passes this many times ``output_cap`` is stopped
OUTPUT_LIMIT_FACTOR = 4
#: ... but never below this many bytes
MIN_OUTPUT_LIMIT = 1_000_000
#: how long the output of a command's leftover background processes is still read
_DRAIN_GRACE = 0.5


def run_command(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    timeout: float = 600,
    output_cap: int = 5_000_000,
    env_extra: dict[str, str] | None = None,
    output_limit: int | None = None,
    readable: Sequence[str | os.PathLike[str]] = (),
) -> CommandResult:
    """Run a command on repository content: command sandbox (``cwd`` its only writable
    folder, no network; ``readable``: tool folders it may also read), scrubbed environment,
    timeout, capped output.

    The output (stdout and stderr) is spooled to a temporary file; the last ``output_cap``
    bytes are kept. A command that writes more than ``output_limit`` bytes (default
    ``OUTPUT_LIMIT_FACTOR`` times the cap) is killed with its process group there: the
    result is ``truncated`` and its output ends with a note saying so. Raises
    :class:`~cicd_orchestrator.sandbox.SandboxUnavailableError` when the sandbox is required
    and unavailable.
    """
    env = scrubbed_env(env_extra or {})
    limit = output_limit or max(OUTPUT_LIMIT_FACTOR * output_cap, MIN_OUTPUT_LIMIT)
    with (
        sandbox.prepare(list(args), cwd=cwd, env=env, readable=readable) as launch,
        tempfile.TemporaryFile() as out,
    ):
        proc, read_fd = launch.start(cwd)
        try:
            timed_out, stopped, size = _spool_output(proc, read_fd, out, timeout, limit)
        finally:
            os.close(read_fd)
            if proc.poll() is None:  # an exception in the loop: leave nothing running
                kill_group(proc.pid)
                proc.wait()
        out.seek(max(0, size - output_cap))
        data = out.read().decode("utf-8", errors="replace")
    if stopped:
        data += (
            f"\n[cicd-orchestrator] output passed {limit / 1_000_000:g} MB: stopped "
            f"(the last {min(size, output_cap)} bytes are kept)\n"
        )
    truncated = stopped or size > output_cap
    return CommandResult(list(args), proc.returncode, data, timed_out, truncated)


def _spool_output(
    proc: subprocess.Popen[bytes], fd: int, out: BinaryIO, timeout: float, limit: int
) -> tuple[bool, bool, int]:
    """Copy the command's output from the pipe ``fd`` to ``out`` (at most ``limit`` bytes)
    until it ends; kill its process group on timeout or when the output passes the limit.
    Returns (timed_out, stopped at the limit, bytes written)."""
    deadline = time.monotonic() + timeout
    size = 0
    eof = False
    exited_at: float | None = None
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        now = time.monotonic()
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and (eof or now - exited_at >= _DRAIN_GRACE):
            return False, False, size
        if exited_at is None and now >= deadline:
            kill_group(proc.pid)
            proc.wait()
            return True, False, size + _drain(poller, fd, out, limit - size)
        wait = 0.1 if exited_at is not None else min(0.1, max(deadline - now, 0.0))
        if eof:  # the output is closed: only the exit is awaited
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
            continue
        if not poller.poll(wait * 1000):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            eof = True
            continue
        room = limit - size
        out.write(chunk[:room])
        size += min(len(chunk), room)
        if len(chunk) > room:
            kill_group(proc.pid)
            proc.wait()
            return False, True, size


def _drain(poller: select.poll, fd: int, out: BinaryIO, room: int) -> int:
    """Copy what is left in the pipe after a kill (at most ``room`` bytes); bytes copied."""
    copied = 0
    while room - copied > 0 and poller.poll(0):
        chunk = os.read(fd, min(65536, room - copied))
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
    return copied
