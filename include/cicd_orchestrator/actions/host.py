"""A replayed job's folders on this machine and its commands in the command sandbox, for
the engines of the other CI systems (GitLab CI, Jenkins) that run on the GitHub engine's
process runner.

A job gets a scratch directory of its own with a fresh checkout of the commit (the
workspace), a temp folder for its scripts, ``HOME`` and ``TMPDIR``; its commands run through
the GitHub engine's process runner (:func:`~cicd_orchestrator.actions.step_process.run_process`):
in the sandbox, with an allowlisted environment, a timeout and an output cap, seeing only
these folders (read-write), the runner tool folder, the deployment's read-only folders and
the system (read-only). A job with an image (or services) runs its commands in a pod of its
own instead (:meth:`HostJob.enter_pod`, :mod:`~cicd_orchestrator.actions.pod`).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cicd_orchestrator import git, process
from cicd_orchestrator.actions import containers
from cicd_orchestrator.actions.containers import ContainerError
from cicd_orchestrator.actions.job_state import RunnerSettings
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.pod import JobPod, PodSpec
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
        self.pod: JobPod | None = None  # where the commands run now (None: the sandbox)
        self._pods: dict[str, JobPod] = {}
        self._broken: dict[str, ContainerError] = {}  # the pods that could not start
        for folder in [*self.folders(), self.root / "pods"]:
            folder.mkdir(parents=True, exist_ok=True)

    def folders(self) -> list[Path]:
        """The folders the job's commands may write."""
        return [self.workspace.parent, self.temp, self.home, self.tmp]

    def checkout(self, git_dir: str | os.PathLike[str], sha: str, branch: str | None) -> None:
        """A fresh clone of ``git_dir`` at ``sha`` in the workspace (WorkspaceError)."""
        git.clone_at(git_dir, sha, self.workspace, branch)

    # ------------------------------------------------------------------ containers
    def enter_pod(self, key: str, spec: PodSpec, say: Callable[[str], object]) -> None:
        """Run the next commands in the pod of ``spec`` (:mod:`~cicd_orchestrator.actions.pod`),
        started the first time ``key`` is asked for and kept until the job ends. Raises
        ContainerError when there is no podman or the pod cannot start."""
        if key in self._broken:
            raise self._broken[key]
        if key in self._pods:
            self.pod = self._pods[key]
            return
        engine = containers.detect_engine()
        if engine is None:
            raise ContainerError("a job's containers run with podman (no container engine here)")
        folder = self.root / "pods" / str(len(self._pods))
        folder.mkdir()
        pod = JobPod(engine, folder, say)
        self._pods[key] = pod
        try:
            pod.start(
                spec,
                writable=[str(d) for d in self.folders()],
                readable=self.settings.job_read_only,
                network=self.settings.network_allowlist,
            )
        except ContainerError as exc:
            self._broken[key] = exc
            raise
        self.pod = pod

    def leave_pod(self) -> None:
        """Run the next commands in the sandbox again (the pod stays for a later stage)."""
        self.pod = None

    @property
    def in_container(self) -> bool:
        return self.pod is not None and self.pod.job_container is not None

    # ------------------------------------------------------------------ commands
    def shell(self) -> list[str]:
        """``bash`` (without profile or rc files) when the job's PATH (or its container) has
        it, else ``sh``."""
        if self.pod is not None and self.in_container:
            return ["bash", "--noprofile", "--norc"] if self.pod.has_bash else ["sh"]
        path = os.pathsep.join([*self.settings.tool_path, *process.SYSTEM_PATH])
        if shutil.which("bash", path=path):
            return ["bash", "--noprofile", "--norc"]
        return ["sh"]

    def env(self, variables: Mapping[str, str]) -> dict[str, str]:
        """The whole environment of a command: the deployment's job variables, then
        ``variables``, over the allowlisted base (nothing of the orchestrator's own); in a
        container, the image's PATH."""
        out = process.scrubbed_env(
            {**self.settings.job_env, **variables},
            tool_path=[] if self.in_container else list(self.settings.tool_path),
            home=str(self.home),
            tmpdir=str(self.tmp),
        )
        return out if self.pod is None else self.pod.command_env(out)

    def write_script(self, name: str, text: str) -> Path:
        path = self.temp / name
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        if self.pod is not None:
            self.pod.hand_over([path])
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
        """Run one command of the job in the sandbox, or in its container; its output goes
        to ``log``."""
        where = str(cwd or self.workspace)
        placed: dict[str, Any] = {}
        if self.pod is not None:
            argv, placed = self.pod.placement(argv, cwd=where, env=env)
        return run_process(
            argv,
            cwd=where,
            env=dict(env),
            job_log=log,
            timeout=timeout,
            output_cap=self.settings.output_cap_bytes,
            cancel=self.cancel,
            groups=self.groups,
            writable=[str(d) for d in self.folders()],
            readable=[*self.settings.tool_path, *self.settings.job_read_only],
            network=self.settings.network_allowlist,
            **placed,
        )

    def clean_up(self) -> None:
        """Stop what the job's commands left running, remove its pods and its folders."""
        for pgid in self.groups:
            process.kill_group(pgid)
        for pod in self._pods.values():
            pod.close()
        shutil.rmtree(self.root, ignore_errors=True)
