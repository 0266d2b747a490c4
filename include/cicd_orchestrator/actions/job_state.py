"""A running job: what changes while it runs, and what its steps see.

:class:`JobState` holds one job's folders (workspace, ``RUNNER_TEMP``, ``HOME``, ``TMPDIR``
and the tool cache the setup actions install into, under one scratch directory), its log,
its deadline and status, and what its steps added (``$GITHUB_ENV``, ``$GITHUB_PATH``, step
outputs, the folders a setup action made readable). From it come the expression contexts
of a step (``github``, ``env``, ``secrets``, ``steps``, ``runner``, ``job``...), the
``env`` context (workflow < job < ``$GITHUB_ENV`` < step) and the environment of a step's
process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cicd_orchestrator import process
from cicd_orchestrator.actions import expressions
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.pod import JobPod
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.run_info import RUNNER_ARCH, RUNNER_NAME, RUNNER_OS, RunInfo
from cicd_orchestrator.actions.step_process import CommandFiles
from cicd_orchestrator.actions.workflow import JobInstance, StepSpec
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import WorkflowError

#: the job context's status, and what the status functions of a step's condition say
SUCCESS, FAILURE, CANCELLED = "success", "failure", "cancelled"


class RunnerSettings(Protocol):
    """What a job takes from the runner that runs it."""

    @property
    def secrets(self) -> Mapping[str, str]: ...

    @property
    def tool_path(self) -> list[str]: ...

    @property
    def default_timeout_minutes(self) -> float: ...

    @property
    def output_cap_bytes(self) -> int: ...

    @property
    def network_allowlist(self) -> tuple[str, ...]: ...

    @property
    def job_env(self) -> Mapping[str, str]: ...

    @property
    def job_read_only(self) -> list[str]: ...


class Secrets(dict[str, str]):
    """The ``secrets`` context: an unknown secret is the empty string, as on GitHub."""

    def get(self, key: str, default: Any = "") -> Any:
        return super().get(key, default)

    def __missing__(self, key: str) -> str:
        return ""


def timeout_seconds(value: Any, contexts: Mapping[str, Any]) -> float | None:
    """A ``timeout-minutes`` field (a number or an expression) in seconds; None when it is
    not set or not a number."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = expressions.evaluate(value, contexts) if "${{" in value else value
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        return None
    return minutes * 60.0


def status_fn(job_status: str) -> expressions.StatusFn:
    """The status functions of a step's condition in a job whose status is ``job_status``."""

    def fn(name: str) -> bool:
        if name in (SUCCESS, FAILURE, CANCELLED):
            return job_status == name
        return True

    return fn


@dataclass
class JobState:
    """What changes while a job runs (see the module docstring)."""

    info: RunInfo
    instance: JobInstance
    execution: JobExecution
    needs: dict[str, Any]
    cancel: threading.Event
    settings: RunnerSettings
    root: Path
    job_log: JobLog
    deadline: float | None = None
    status: str = SUCCESS  # success, failure, cancelled (the job context's status)
    timed_out: bool = False
    env_added: dict[str, str] = field(default_factory=dict)
    path_added: list[str] = field(default_factory=list)
    readable_added: list[str] = field(default_factory=list)
    steps_ctx: dict[str, Any] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)
    pod: JobPod | None = None  # the job's containers (container:, services:)

    # ------------------------------------------------------------------ folders
    @property
    def workspace(self) -> Path:
        repo_name = self.info.repository.split("/")[-1] or "repo"
        return self.root / "work" / repo_name / repo_name

    @property
    def runner_temp(self) -> Path:
        return self.root / "temp"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def toolcache(self) -> Path:
        """Where the setup actions put the job's interpreters (``runner.tool_cache``)."""
        return self.root / "toolcache"

    @property
    def pod_folder(self) -> Path:
        """The pod's files (its hosts file): not one of the folders a step may write."""
        return self.root / "pod"

    @property
    def in_container(self) -> bool:
        """Whether the steps run in the job's container."""
        return self.pod is not None and self.pod.job_container is not None

    def folders(self) -> list[Path]:
        """The job's folders a step may write (the sandbox shows it nothing else of ``root``)."""
        return [self.workspace.parent, self.runner_temp, self.home, self.tmp, self.toolcache]

    def readable(self) -> list[str]:
        """The folders a step may read besides the system and its own: the tool folders, the
        installations the setup actions chose and the deployment's read-only folders."""
        seen = [*self.settings.tool_path, *self.readable_added, *self.settings.job_read_only]
        return list(dict.fromkeys(seen))

    def make_folders(self) -> None:
        for d in [*self.folders(), self.pod_folder]:
            d.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ status
    def fail(self) -> None:
        """The job fails, unless it is already failed or cancelled."""
        if self.status == SUCCESS:
            self.status = FAILURE

    def conclusion(self) -> Conclusion:
        if self.execution.not_replayable:
            return Conclusion.NEUTRAL
        if self.timed_out:
            return Conclusion.TIMED_OUT
        if self.status == FAILURE:
            return Conclusion.FAILURE
        if self.status == CANCELLED:
            return Conclusion.CANCELLED
        return Conclusion.SUCCESS

    def timeout_minutes(self) -> float | None:
        """The job's ``timeout-minutes`` as written (the runner's default when not set);
        None when it is an expression."""
        value = self.instance.spec.timeout_minutes
        try:
            return float(value) if value is not None else self.settings.default_timeout_minutes
        except (TypeError, ValueError):
            return None

    # ------------------------------------------------------------------ contexts
    def contexts(self, env: dict[str, str]) -> dict[str, Any]:
        """The expression contexts of the job with the ``env`` context ``env``."""
        return {
            "github": self.info.github_context(str(self.workspace), self.instance.key),
            "env": env,
            "matrix": self.instance.matrix,
            "needs": self.needs,
            "secrets": Secrets(self.settings.secrets),
            "steps": self.steps_ctx,
            "runner": {
                "os": RUNNER_OS,
                "arch": RUNNER_ARCH,
                "name": RUNNER_NAME,
                "temp": str(self.runner_temp),
                "tool_cache": str(self.toolcache),
            },
            "job": {"status": self.status},
            "inputs": self.info.workflow.dispatch_inputs(),
            "vars": {},
            "strategy": {"fail-fast": self.instance.spec.fail_fast, "job-index": 0},
        }

    def declared_env(self, step: StepSpec | None = None) -> dict[str, str]:
        """The ``env`` context: workflow < job < GITHUB_ENV < step, interpolated level by level."""
        env: dict[str, str] = {}
        self._add_env(env, self.info.workflow.env)
        self._add_env(env, self.instance.spec.env)
        env.update(self.env_added)
        if step is not None:
            self._add_env(env, step.env)
        return env

    def _add_env(self, env: dict[str, str], level: Mapping[str, Any]) -> None:
        ctx = self.contexts(env)  # the values of this level see the ones before them
        for k, v in level.items():
            env[k] = self.interpolate(expressions.to_string(v), ctx)

    def interpolate(self, text: str, ctx: Mapping[str, Any]) -> str:
        """``text`` with its expressions replaced; an invalid one is a warning in the log and
        gives the empty string."""
        try:
            return expressions.interpolate(text, ctx)
        except WorkflowError as exc:
            self.job_log.write(f"##[warning]Expression error in {text!r}: {exc}")
            return ""

    # ------------------------------------------------------------------ processes
    def path(self) -> list[str]:
        """The PATH of a step: what earlier steps added (the latest first), then the tools."""
        return [*reversed(self.path_added), *self.settings.tool_path, *process.SYSTEM_PATH]

    def remaining(self) -> float | None:
        """Seconds left before the job's deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def process_env(self, env: Mapping[str, str], files: CommandFiles) -> dict[str, str]:
        """The whole environment of a step's process (nothing of the runner's own): the
        deployment's job variables, then the ``GITHUB_*`` ones, then the step's ``env``."""
        preset = {
            **self.settings.job_env,
            **self.info.github_env(str(self.workspace), self.instance.key),
            "RUNNER_OS": RUNNER_OS,
            "RUNNER_ARCH": RUNNER_ARCH,
            "RUNNER_NAME": RUNNER_NAME,
            "RUNNER_TEMP": str(self.runner_temp),
            **files.env(),
        }
        tools = [] if self.in_container else self.settings.tool_path
        out = process.scrubbed_env(
            {**preset, **env},
            tool_path=[*reversed(self.path_added), *tools],
            home=str(self.home),
            tmpdir=str(self.tmp),
        )
        if self.pod is None:
            return out
        return self.pod.command_env(out, list(reversed(self.path_added)))
