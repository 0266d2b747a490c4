"""A replayed job's folders on this machine and its commands in the command sandbox, for
the engines of the other CI systems (GitLab CI, Jenkins) that run on the GitHub engine's
process runner.

A job gets a scratch directory of its own with a fresh checkout of the commit (the
workspace), a temp folder for its scripts, ``HOME`` and ``TMPDIR``; its commands run through
the GitHub engine's process runner (:func:`~cicd_orchestrator.actions.step_process.run_process`):
in the sandbox, with an allowlisted environment, a timeout and an output cap, seeing only
these folders (read-write), the runner tool folder, the deployment's read-only folders and
the system (read-only).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from cicd_orchestrator import git, process
from cicd_orchestrator.actions import containers
from cicd_orchestrator.actions.job_state import RunnerSettings
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.step_process import StepOutcome, run_process
from cicd_orchestrator.scratch import make_scratch


class PlainLog(JobLog):
    """A job log without GitHub's timestamp prefix: the lines as the CI system prints them
    (secrets still masked)."""

    def write(self, text: str) -> int:
        masked = self.mask(text)
        data = "".join(f"{line.rstrip(chr(13))}\n" for line in masked.split("\n"))
        raw = data.encode("utf-8", "replace")
        with self._lock:
            self._fh.write(raw)
            self._fh.flush()
        return len(raw)


def container_engine() -> str | None:
    """The container engine that answers ``info`` on this machine (``docker``, ``podman``),
    or None (the GitHub engine's detection)."""
    engine = containers.detect_engine()
    return engine.name if engine is not None else None


class HostJob:
    """One job's scratch folders, its checkout and its sandboxed commands."""

    def __init__(self, settings: RunnerSettings, repository: str, builds: str) -> None:
        """``builds``: the folder of the job's workspace under its scratch directory, as the
        CI system names it (GitLab's ``builds``, Jenkins' ``workspace``)."""
        self.settings = settings
        self.root = make_scratch("cicd-job-")
        name = repository.split("/")[-1] or "repo"
        self.workspace = self.root / builds / name / name
        self.temp = self.root / "temp"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        self.groups: list[int] = []
        self.cancel = threading.Event()
        for folder in self.folders():
            folder.mkdir(parents=True, exist_ok=True)

    def folders(self) -> list[Path]:
        """The folders the job's commands may write."""
        return [self.workspace.parent, self.temp, self.home, self.tmp]

    def checkout(self, git_dir: str | os.PathLike[str], sha: str, branch: str | None) -> None:
        """A fresh clone of ``git_dir`` at ``sha`` in the workspace (WorkspaceError)."""
        git.clone_at(git_dir, sha, self.workspace, branch)

    def shell(self) -> list[str]:
        """``bash`` (without profile or rc files) when the job's PATH has it, else ``sh``."""
        path = os.pathsep.join([*self.settings.tool_path, *process.SYSTEM_PATH])
        if shutil.which("bash", path=path):
            return ["bash", "--noprofile", "--norc"]
        return ["sh"]

    def env(self, variables: Mapping[str, str]) -> dict[str, str]:
        """The whole environment of a command: the deployment's job variables, then
        ``variables``, over the allowlisted base (nothing of the orchestrator's own)."""
        return process.scrubbed_env(
            {**self.settings.job_env, **variables},
            tool_path=list(self.settings.tool_path),
            home=str(self.home),
            tmpdir=str(self.tmp),
        )

    def write_script(self, name: str, text: str) -> Path:
        path = self.temp / name
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        return path

    def run(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log: JobLog,
        timeout: float | None,
        cwd: Path | None = None,
    ) -> StepOutcome:
        """Run one command of the job in the sandbox; its output goes to ``log``."""
        return run_process(
            argv,
            cwd=str(cwd or self.workspace),
            env=dict(env),
            job_log=log,
            timeout=timeout,
            output_cap=self.settings.output_cap_bytes,
            cancel=self.cancel,
            groups=self.groups,
            writable=[str(d) for d in self.folders()],
            readable=[*self.settings.tool_path, *self.settings.job_read_only],
            network=self.settings.network_allowlist,
        )

    def clean_up(self) -> None:
        """Stop what the job's commands left running and remove the job's folders."""
        for pgid in self.groups:
            process.kill_group(pgid)
        shutil.rmtree(self.root, ignore_errors=True)
