"""Isolated git worktrees of a repository and the sandboxed command runner.

A workspace is a throw-away clone of one commit, made from a local mirror of the remote that
is kept per repository under the cache directory. Repairs change files there; ``diff`` gives
a binary-safe patch, which is what tasks exchange through XCom (tasks may run on different
machines, so no task relies on another's directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cicd_orchestrator.ci.base import GitRemote
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.scratch import make_scratch

log = logging.getLogger(__name__)

BOT_NAME = "cicd-orchestrator"
BOT_EMAIL = "cicd-orchestrator@users.noreply.localhost"
_GIT_TIMEOUT = 300


@dataclass
class CommandResult:
    args: list[str]
    returncode: int
    output: str
    timed_out: bool = False
    truncated: bool = False


def git_env(remote_env: dict[str, str] | None = None, date: str | None = None) -> dict[str, str]:
    """Environment for git: no prompts, no user config, the bot's identity."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": BOT_NAME,
        "GIT_AUTHOR_EMAIL": BOT_EMAIL,
        "GIT_COMMITTER_NAME": BOT_NAME,
        "GIT_COMMITTER_EMAIL": BOT_EMAIL,
    }
    if date:
        env["GIT_AUTHOR_DATE"] = date
        env["GIT_COMMITTER_DATE"] = date
    env.update(remote_env or {})
    return env


def git(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    check: bool = True,
    input_text: str | None = None,
) -> str:
    """Run git and return stdout; a failure raises WorkspaceError with git's message."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env or git_env(),
        input=input_text,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=_GIT_TIMEOUT,
        check=False,
    )
    if check and proc.returncode != 0:
        raise WorkspaceError(f"git {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


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
) -> CommandResult:
    """Run a command on repository content: command sandbox, scrubbed environment, timeout,
    capped output.

    The output (stdout and stderr) is spooled to a temporary file; the last ``output_cap``
    bytes are kept. A command that writes more than ``output_limit`` bytes (default
    ``OUTPUT_LIMIT_FACTOR`` times the cap) is killed with its process group there: the
    result is ``truncated`` and its output ends with a note saying so. Raises
    :class:`~cicd_orchestrator.sandbox.SandboxUnavailableError` when the sandbox is required
    and unavailable.
    """
    from cicd_orchestrator import sandbox
    from cicd_orchestrator.ci.local.runner import kill_group, scrubbed_env

    env = scrubbed_env(env_extra or {})
    limit = output_limit or max(OUTPUT_LIMIT_FACTOR * output_cap, MIN_OUTPUT_LIMIT)
    with sandbox.prepare(list(args), cwd=cwd, env=env) as launch, tempfile.TemporaryFile() as out:
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
    from cicd_orchestrator.ci.local.runner import kill_group

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


def _slug(repo: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", repo)


class MirrorCache:
    """One local bare mirror per repository, fetched under a file lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def mirror(self, repo: str, remote: GitRemote, shas: Sequence[str] = ()) -> Path:
        path = self.root / f"{_slug(repo)}-{hashlib.sha1(remote.url.encode()).hexdigest()[:8]}.git"
        env = git_env(remote.env)
        with open(str(path) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                git(["init", "--bare", "--quiet", str(path)], cwd=self.root, env=env)
            if not all(_has_commit(path, sha) for sha in shas) or not shas:
                git(
                    [
                        "fetch",
                        "--quiet",
                        "--prune",
                        remote.url,
                        "+refs/heads/*:refs/remotes/origin/*",
                    ],
                    cwd=path,
                    env=env,
                )
        return path


def _has_commit(git_dir: Path, sha: str) -> bool:
    proc = subprocess.run(
        ["git", "cat-file", "-e", f"{sha}^{{commit}}"],
        cwd=git_dir,
        capture_output=True,
        check=False,
        env=git_env(),
    )
    return proc.returncode == 0


class Workspace:
    """A clone of one commit in a temporary directory (removed on close)."""

    def __init__(self, path: Path, base_sha: str, date: str | None = None) -> None:
        self.path = path
        self.base_sha = base_sha
        self.date = date

    def git(self, *args: str, check: bool = True, input_text: str | None = None) -> str:
        return git(args, self.path, env=git_env(date=self.date), check=check, input_text=input_text)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def diff(self) -> str:
        """Binary-safe patch of the working tree against HEAD (new files included)."""
        self.git("add", "-A")
        return self.git("diff", "--cached", "--binary", "HEAD")

    def changed_files(self) -> list[str]:
        self.git("add", "-A")
        out = self.git("diff", "--cached", "--name-only", "HEAD")
        return [line for line in out.splitlines() if line]

    def apply(self, patch: str) -> bool:
        """Apply a patch; False (and nothing changed) when it does not apply cleanly."""
        if not patch.strip():
            return True
        check = subprocess.run(
            ["git", "apply", "--check", "--binary", "-"],
            cwd=self.path,
            input=patch,
            text=True,
            capture_output=True,
            env=git_env(),
            check=False,
        )
        if check.returncode != 0:
            return False
        self.git("apply", "--binary", "-", input_text=patch)
        return True

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def reset(self) -> None:
        self.git("reset", "--quiet", "--hard", "HEAD")
        self.git("clean", "-fdq")


@contextlib.contextmanager
def checkout(
    mirror: Path, sha: str, date: str | None = None, keep: bool = False
) -> Iterator[Workspace]:
    """A fresh clone of ``sha`` from ``mirror`` in a temporary directory."""
    tmp = make_scratch("cicd-ws-")
    try:
        work = tmp / "repo"
        git(["clone", "--quiet", "--no-checkout", str(mirror), str(work)], cwd=tmp)
        git(["checkout", "--quiet", "-B", "cicd-work", sha], cwd=work)
        yield Workspace(work, sha, date)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
