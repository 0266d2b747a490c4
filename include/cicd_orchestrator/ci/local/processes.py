"""The processes of the local provider: the post-receive hook of a bare repository and the
detached processes that execute runs.

Both run ``python -m cicd_orchestrator.ci.local.hook`` (:data:`HOOK_MODULE`) with the
folder of this package on their ``PYTHONPATH``: the hook when a branch is pushed
(``post-receive``), a run process for each attempt of a run (``execute``). A run process
gets an allowlisted environment: no credential of the process that started it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import cicd_orchestrator

HOOK_MODULE = "cicd_orchestrator.ci.local.hook"
_SPAWNED: list[subprocess.Popen[bytes]] = []
#: what the detached run processes keep of this process's environment: the basics, and the
#: deployment's choice of command sandbox and runner tool folder (no credential; the jobs'
#: settings come from the provider's configuration: ``LocalRepositories.apply_job_settings``)
_SPAWN_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "USER",
        "LOGNAME",
        "CICD_COMMAND_SANDBOX",
        "CICD_RUNNER_TOOLS",
        "CICD_WORKSPACE_DIR",
    }
)


def package_parent() -> str:
    """The folder that holds the ``cicd_orchestrator`` package (for a child's PYTHONPATH)."""
    return str(Path(cicd_orchestrator.__file__).resolve().parent.parent)


def hook_script(python: str, root: Path, repo: str) -> str:
    """The post-receive hook of ``repo``: a push starts its CI runs."""
    return "\n".join(
        [
            "#!/bin/sh",
            "# Installed by the cicd_orchestrator local CI provider: a push starts CI runs.",
            f"PYTHONPATH={shlex.quote(package_parent())}${{PYTHONPATH:+:$PYTHONPATH}}",
            "export PYTHONPATH",
            f"exec {shlex.quote(python)} -m {HOOK_MODULE} post-receive "
            f"{shlex.quote(str(root))} {shlex.quote(repo)}",
            "",
        ]
    )


class SpawnError(Exception):
    """A run process could not be started (the message says why)."""


def spawn_run(python: str, root: Path, repo: str, run_id: int, attempt: int) -> int:
    """Start the detached process that executes an attempt of a run; returns its pid.
    Its output goes to ``root/spawn``. Raises SpawnError when it cannot be started."""
    reap()
    spawn_dir = root / "spawn"
    spawn_dir.mkdir(parents=True, exist_ok=True)
    out_path = spawn_dir / f"run-{run_id}-{attempt}.out"
    # the run process gets no credential of this process either (steps never do)
    env = {k: v for k, v in os.environ.items() if k in _SPAWN_ENV}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent(), os.environ.get("PYTHONPATH", "")) if p
    )
    argv = [python, "-m", HOOK_MODULE, "execute", str(root), repo, str(run_id), str(attempt)]
    try:
        with open(out_path, "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
                cwd=str(root),
            )
    except OSError as exc:
        raise SpawnError(f"cannot start the run process: {exc}") from exc
    _SPAWNED.append(proc)
    return proc.pid


def reap() -> None:
    """Collect the exit status of finished run processes started by this process."""
    for proc in list(_SPAWNED):
        if proc.poll() is not None:
            _SPAWNED.remove(proc)


def pid_alive(pid: int | None) -> bool:
    """Whether the process ``pid`` exists (an unknown pid counts as alive)."""
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
