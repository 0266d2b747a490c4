"""Long-running processes of the test stacks: started in process groups of their own, stopped
as a group, crashed as a machine dies (``kill -9`` of the whole tree), and the detached CI runs
of a stack found and killed."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Service:
    """One long-running process of the stack."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    user: str | None = None
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: stop() ends all of it
                user=self.user,
            )
        log.info("started %s (pid %s): %s", self.name, self.proc.pid, " ".join(self.argv))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}; log {self.log_path}:\n"
                + tail(self.log_path)
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """``sig`` to the whole process group, then SIGKILL to whatever is left of it."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def crash(self, spare: Callable[[int], bool] | None = None) -> list[int]:
        """``kill -9`` of the process and every process under it at once, as when its machine
        or container dies (its task processes included, which run in groups of their own);
        the subtrees whose root ``spare`` picks are left running. Returns the pids killed."""
        if self.proc is None:
            return []
        tree = process_tree(self.proc.pid, spare)
        for pid in tree:  # freeze first: nothing forks while the tree is being killed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        log.info("crashed %s: killed %s", self.name, tree)
        return tree


def process_tree(root: int, spare: Callable[[int], bool] | None = None) -> list[int]:
    """``root`` and its descendants (by parent pid), without the subtrees ``spare`` picks."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid != root and spare is not None and spare(pid):
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def kill_processes_under(root: Path) -> list[int]:
    """SIGKILL the process groups of processes whose command line names ``root``: the CI runs
    that the local provider detached (``start_new_session``) for this stack's repositories."""
    needle = str(root).encode()
    killed = []
    me = os.getpid()
    for pid in all_pids():
        if pid == me:
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if needle not in cmdline:
            continue
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            if pgid != os.getpgid(me):
                os.killpg(pgid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
