"""Scratch directories of repository work (clones of a commit, replayed CI jobs) that survive
no crash: each is marked with its owner process, and a directory whose owner died (a worker
killed mid-task, a machine restarted) is removed by the next one made on the same host.

The directories live under ``CICD_WORKSPACE_DIR`` when set, else the system's temporary
directory. A directory is only ever removed by a process of the host that made it, and only
when its owner is gone: the owner is told apart from a later process that reused its pid by
the process' start time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

ROOT_ENV = "CICD_WORKSPACE_DIR"
OWNER_FILE = ".cicd-owner"
PREFIXES = ("cicd-ws-", "cicd-job-")
#: a directory without an owner mark is left alone until it is this old (it may be being made)
UNMARKED_GRACE_SECONDS = 3600


def scratch_root() -> Path:
    root = Path(os.environ.get(ROOT_ENV) or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def _start_time(pid: int) -> str | None:
    """The process' start time in clock ticks since boot (``/proc/<pid>/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces: split after its closing parenthesis
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _owner_mark() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}\n{pid}\n{_start_time(pid) or ''}\n"


def owner_alive(mark: str, host: str | None = None) -> bool | None:
    """True/False for a mark of this host; None when the mark is another host's (unknown)."""
    parts = mark.split("\n")
    if len(parts) < 3 or parts[0] != (host or socket.gethostname()):
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    started = _start_time(pid)
    if started is None:
        return False
    return not parts[2] or started == parts[2]


def make_scratch(prefix: str) -> Path:
    """A new directory for one piece of repository work, marked with its owner; the stale
    directories of dead owners on this host are removed first."""
    root = scratch_root()
    sweep_stale(root)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (path / OWNER_FILE).write_text(_owner_mark())
    return path


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the scratch directories under ``root`` whose owner process died; return them."""
    root = root or scratch_root()
    removed: list[Path] = []
    host = socket.gethostname()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIXES) or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        try:
            mark = (path / OWNER_FILE).read_text()
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > UNMARKED_GRACE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
            continue
        except OSError:
            continue
        if owner_alive(mark, host) is False:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.warning("removed %d scratch directories of dead processes: %s", len(removed), removed)
    return removed
