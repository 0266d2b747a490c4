"""The local job runner: executes the jobs of a GitHub Actions workflow on this machine.

Each job gets a fresh checkout of the commit, a fresh ``RUNNER_TEMP``, ``HOME`` and
``TMPDIR``, and steps that run in their own session with an allowlisted environment (never
the orchestrator's: no token, no Airflow setting reaches a step), a timeout and a cap on
their output, in the command sandbox (:mod:`cicd_orchestrator.sandbox`): a step sees the
job's folders (read-write), the runner tool folder and the system (read-only), and no
network but the registries of ``network_allowlist`` through the egress proxy. Each step has
a network namespace of its own: a server a step leaves running serves the next steps
through files and FIFOs in the job's folders, not through the network. The job log is
written in GitHub's raw log format, so the analysis code reads the same text as from GitHub.
The provider runs whole workflows with it; the validation layer reproduces single jobs with
it.

A job with ``container:`` or ``services:`` runs in a pod of its own after the checkout
(:mod:`~cicd_orchestrator.actions.pod`: an "Initialize containers" step). A job that needs
what this machine does not have (podman for its containers, a Windows or macOS ``runs-on``,
an image that cannot be had) is not run (:mod:`~cicd_orchestrator.actions.containers`): its
log says ``##[error]Cannot replay locally: <why>``, it concludes ``neutral`` and its
record's ``not_replayable`` says why.

Variables of the worker's environment configure every replayed job (for package
mirrors of the deployment, say):

- ``CICD_JOB_ENV``: a JSON object of environment variables given to every step, e.g.
  ``{"PIP_INDEX_URL": "file:///opt/pypi/simple", "PIP_FIND_LINKS": "/opt/wheels",
  "npm_config_registry": "https://npm.example.com/"}``. They come before the workflow's
  ``env`` (which wins, as over a self-hosted runner's own variables). Names that would let
  a job escape or change the runner are refused: ``PATH``, ``HOME``, ``TMPDIR``, ``SHELL``,
  ``IFS``, ``ENV``, ``BASH_ENV``, ``PS4``, ``PROMPT_COMMAND``, ``PYTHONPATH``,
  ``PYTHONHOME``, ``PYTHONSTARTUP``, ``CI``, those starting with ``LD_``, ``DYLD_``,
  ``GIT_``, ``GITHUB_``, ``RUNNER_`` or ``BASH_FUNC_``, and the proxy variables
  (``*_PROXY``, any case).
- ``CICD_JOB_READ_ONLY``: folders (separated by ``os.pathsep``) every step's sandbox shows
  read-only, e.g. ``/opt/pypi:/opt/wheels``. Refused: a relative path, one that is not a
  folder, ``/``, and any folder that holds or is inside the orchestrator's environment or
  ``AIRFLOW_HOME``.

- ``CICD_RUNS_ON_IMAGES`` (``1``): a job without ``container:`` runs in the image that
  stands for its ``runs-on`` label (the table
  :data:`~cicd_orchestrator.actions.containers.RUNS_ON_IMAGES`), in a pod as a container
  job does (an image podman neither has nor can pull makes it not replayable); by default
  it runs with the host's tools in the command sandbox.

A refused value raises :class:`~cicd_orchestrator.exceptions.ConfigError` when the runner
is made. This module runs one job from set-up to clean-up;
:mod:`~cicd_orchestrator.actions.steps` runs its steps and
:mod:`~cicd_orchestrator.actions.scheduler` orders a workflow's jobs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cicd_orchestrator import git, process, runner_tools
from cicd_orchestrator.actions import containers, expressions
from cicd_orchestrator.actions.containers import ContainerError
from cicd_orchestrator.actions.job_state import FAILURE, JobState, timeout_seconds
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.pod import JobPod, pod_spec
from cicd_orchestrator.actions.results import IdAllocator, JobExecution, OnUpdate, utc_now
from cicd_orchestrator.actions.run_info import (
    RUNNER_NAME,
    RUNNER_OS,
    TOKEN_SECRET,
    RunInfo,
    new_job_token,
)
from cicd_orchestrator.actions.scheduler import Scheduler
from cicd_orchestrator.actions.steps import run_step
from cicd_orchestrator.actions.workflow import (
    JobInstance,
    Workflow,
    expand_jobs,
    read_workflow,
    resolve_job_names,
)
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.exceptions import CicdError, ConfigError, WorkspaceError
from cicd_orchestrator.models import Step
from cicd_orchestrator.scratch import make_scratch

log = logging.getLogger(__name__)

JOB_ENV_VAR = "CICD_JOB_ENV"
JOB_READ_ONLY_VAR = "CICD_JOB_READ_ONLY"
RUNS_ON_IMAGES_VAR = "CICD_RUNS_ON_IMAGES"
_REFUSED_NAMES = frozenset(
    {
        "PATH", "HOME", "TMPDIR", "SHELL", "IFS", "ENV", "BASH_ENV", "PS4", "PROMPT_COMMAND",
        "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "CI",
    }
)  # fmt: skip
_REFUSED_PREFIXES = ("LD_", "DYLD_", "GIT_", "GITHUB_", "RUNNER_", "BASH_FUNC_")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class JobRunner:
    """Runs the jobs of a workflow on this machine (see the module docstring)."""

    def __init__(
        self,
        secrets: dict[str, str] | None = None,
        tool_path: list[str] | None = None,
        default_timeout_minutes: float = 30,
        output_cap_bytes: int = 20_000_000,
        max_parallel_jobs: int = 2,
        network_allowlist: Iterable[str] = (),
        job_env: Mapping[str, str] | None = None,
        job_read_only: Sequence[str] | None = None,
        runs_on_images: bool | None = None,
    ) -> None:
        """``job_env``, ``job_read_only`` and ``runs_on_images`` default to ``CICD_JOB_ENV``,
        ``CICD_JOB_READ_ONLY`` and ``CICD_RUNS_ON_IMAGES`` (see the module docstring); a
        refused one raises ConfigError."""
        self.secrets = dict(secrets or {})
        if runs_on_images is None:
            flag = os.environ.get(RUNS_ON_IMAGES_VAR, "").strip().lower()
            runs_on_images = flag in ("1", "true", "yes")
        self.runs_on_images = runs_on_images
        self.job_env = _job_env(job_env)
        self.job_read_only = _job_read_only(job_read_only)
        self.tool_path = _tool_path(tool_path)
        self.network_allowlist = tuple(network_allowlist)
        self.default_timeout_minutes = default_timeout_minutes
        self.output_cap_bytes = output_cap_bytes
        self.max_parallel_jobs = max(1, max_parallel_jobs)
        self._update_lock = threading.Lock()

    # ------------------------------------------------------------------ a workflow
    def run_workflow(
        self,
        git_dir: str | os.PathLike[str],
        sha: str,
        workflow_path: str,
        *,
        ref: str,
        repository: str,
        run_id: int,
        run_number: int,
        run_attempt: int,
        event: str = "push",
        jobs: set[str] | None = None,
        previous: dict[str, JobExecution] | None = None,
        log_dir: str | os.PathLike[str],
        on_update: OnUpdate | None = None,
        allocate_job_id: IdAllocator | None = None,
        workflow: Workflow | None = None,
    ) -> list[JobExecution]:
        """Execute the workflow's jobs (or only ``jobs``, by key or display name) on ``sha``.

        Jobs not executed are carried over from ``previous`` (by display name) when given;
        needs outside the executed set count as succeeded. Returns every job, executed or
        carried over, in workflow order. Raises WorkflowError if the workflow is invalid.
        """
        wf = workflow or read_workflow(git_dir, sha, workflow_path)
        info = RunInfo(
            git_dir=os.fspath(git_dir),
            sha=sha,
            workflow=wf,
            ref=ref,
            repository=repository,
            run_id=run_id,
            run_number=run_number,
            run_attempt=run_attempt,
            event=event,
            log_dir=Path(log_dir),
        )
        info.log_dir.mkdir(parents=True, exist_ok=True)
        counter = itertools.count(1)
        allocate = allocate_job_id or (lambda: next(counter))
        base = {"github": info.github_context(), "inputs": wf.dispatch_inputs(), "vars": {}}
        instances = expand_jobs(wf, base)

        def execute(
            instance: JobInstance,
            execution: JobExecution,
            needs: dict[str, Any],
            cancel: threading.Event,
        ) -> JobExecution:
            return self.execute_job(info, instance, execution, needs, cancel, on_update)

        scheduler = Scheduler(
            info,
            instances,
            selected=None if jobs is None else _resolve_selection(instances, jobs),
            previous=previous or {},
            allocate=allocate,
            execute=execute,
            notify=lambda execution: self.notify(on_update, execution),
            workers=self.max_parallel_jobs,
        )
        return scheduler.run()

    def notify(self, on_update: OnUpdate | None, execution: JobExecution) -> None:
        if on_update is None:
            return
        with self._update_lock:
            try:
                on_update(dataclasses.replace(execution, steps=list(execution.steps)))
            except Exception:  # a broken observer must not break the run
                log.exception("on_update callback failed for job %s", execution.name)

    # ------------------------------------------------------------------ a job
    def execute_job(
        self,
        info: RunInfo,
        instance: JobInstance,
        execution: JobExecution,
        needs: dict[str, Any],
        cancel: threading.Event,
        on_update: OnUpdate | None,
    ) -> JobExecution:
        """Run one job instance to its conclusion (the execution is updated in place).

        As on a hosted runner, each job gets a ``GITHUB_TOKEN`` of its own: a random value
        among the job's secrets (so the job log masks it) and its ``github.token``. A
        configured secret of that name never reaches a job."""
        token = new_job_token()
        job_runner = copy.copy(self)  # shares the update lock; the secrets are the job's
        job_runner.secrets = {**self.secrets, TOKEN_SECRET: token}
        return job_runner._execute(
            dataclasses.replace(info, token=token), instance, execution, needs, cancel, on_update
        )

    def _execute(
        self,
        info: RunInfo,
        instance: JobInstance,
        execution: JobExecution,
        needs: dict[str, Any],
        cancel: threading.Event,
        on_update: OnUpdate | None,
    ) -> JobExecution:
        if cancel.is_set():  # fail-fast cancelled the matrix while this job was queued
            execution.complete_at_once(Conclusion.CANCELLED)
            self.notify(on_update, execution)
            return execution
        state = JobState(
            info=info,
            instance=instance,
            execution=execution,
            needs=needs,
            cancel=cancel,
            settings=self,
            root=make_scratch("cicd-job-"),
            job_log=JobLog(execution.log_path, self.secrets.values()),
        )
        started = time.monotonic()
        execution.status = RunStatus.IN_PROGRESS
        execution.started_at = utc_now()
        self.notify(on_update, execution)
        try:
            self._job_body(state, on_update)
        except Exception as exc:  # the runner's own bug or an OS error: fail the job, say why
            log.exception("job %s crashed", instance.name)
            state.job_log.write(f"##[error]The runner failed: {exc}")
            state.status = FAILURE
        finally:
            _clean_up(state)
        _conclude(state, started)
        self.notify(on_update, execution)
        return execution

    def _job_body(self, state: JobState, on_update: OnUpdate | None) -> None:
        spec = state.instance.spec
        execution = state.execution
        state.make_folders()
        body = _job_containers(state, self.runs_on_images)
        reason = containers.replay_obstacle(
            body, spec.runs_on, state.contexts(state.declared_env())
        )
        if reason is not None:
            _not_replayable(state, reason)
            return
        job_timeout = timeout_seconds(spec.timeout_minutes, state.contexts(state.declared_env()))
        if job_timeout is None:
            job_timeout = self.default_timeout_minutes * 60.0
        state.deadline = time.monotonic() + job_timeout
        setup = Step(
            number=1, name="Set up job", status=RunStatus.IN_PROGRESS, started_at=utc_now()
        )
        execution.steps = [setup]
        ok = self._set_up(state, job_timeout)
        setup.status, setup.completed_at = RunStatus.COMPLETED, utc_now()
        setup.conclusion = Conclusion.SUCCESS if ok else Conclusion.FAILURE
        if not ok:
            state.status = FAILURE
        elif body.get("container") or body.get("services"):
            reason = _start_pod(state, body, self.network_allowlist)
            if reason is not None:
                _not_replayable(state, reason)
                return
        for step in spec.steps:
            run_step(state, step)
            self.notify(on_update, execution)
        execution.steps.append(
            Step(number=len(execution.steps) + 1, name="Complete job", started_at=utc_now())
        )
        ctx = state.contexts(state.declared_env())
        execution.outputs = {  # a job output that carries a secret is masked, as on GitHub
            k: state.job_log.mask(state.interpolate(v, ctx)) for k, v in spec.outputs.items()
        }

    def _set_up(self, state: JobState, job_timeout: float) -> bool:
        jl = state.job_log
        inst = state.instance
        info = state.info
        jl.write("##[group]Set up job")
        jl.write("Current runner version: 'local'")
        jl.write(f"Runner name: '{RUNNER_NAME}'")
        jl.write(f"Operating System: {RUNNER_OS}")
        jl.write(f"Job: {inst.name}")
        for k, v in inst.matrix.items():
            jl.write(f"Matrix: {k}={expressions.to_string(v)}")
        jl.write(f"Job timeout: {job_timeout / 60:g} minutes")
        jl.write(f"Checking out {info.sha} ({info.ref}) into {state.workspace}")
        ok = True
        try:
            self.checkout(info.git_dir, info.sha, state.workspace, info.ref_name)
        except WorkspaceError as exc:
            jl.write(f"##[error]Checkout of {info.sha} failed: {exc}")
            ok = False
        jl.write(f"Complete job name: {inst.name}")
        jl.write("##[endgroup]")
        return ok

    @staticmethod
    def checkout(git_dir: str, sha: str, dest: Path, branch: str | None = None) -> None:
        """A fresh clone of ``git_dir`` at ``sha`` in ``dest`` (bare or non-bare source)."""
        git.clone_at(git_dir, sha, dest, branch)


def _tool_path(configured: list[str] | None) -> list[str]:
    """The tool folders of a job (default: the runner tool folder); never the orchestrator's
    own environment, whatever the configuration says."""
    if configured is None:
        return process.default_tool_path()
    own = runner_tools.orchestrator_environment()
    kept = [d for d in configured if not (own and runner_tools.inside(d, own))]
    if len(kept) != len(configured):
        log.warning(
            "the orchestrator's environment is never on a job's PATH: left out of %s", configured
        )
    return kept


def _job_env(given: Mapping[str, str] | None) -> dict[str, str]:
    """The variables every step gets (``CICD_JOB_ENV``), checked."""
    if given is None:
        raw = os.environ.get(JOB_ENV_VAR, "").strip()
        if not raw:
            return {}
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"{JOB_ENV_VAR} is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ConfigError(f"{JOB_ENV_VAR} must be a JSON object of variable names to values")
        given = parsed
    out: dict[str, str] = {}
    for name, value in given.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{JOB_ENV_VAR}: {name!r} is not a variable name")
        upper = name.upper()
        if (
            upper in _REFUSED_NAMES
            or upper.startswith(_REFUSED_PREFIXES)
            or upper.endswith("_PROXY")
        ):
            raise ConfigError(
                f"{JOB_ENV_VAR}: {name} is refused: it would let a job escape or change the "
                "runner (PATH, HOME, LD_*, PYTHONPATH, BASH_ENV, ENV, GIT_*, proxies...)"
            )
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{JOB_ENV_VAR}: the value of {name} must be a string")
        out[name] = str(value)
    return out


def _guarded_folders() -> list[str]:
    """What no job may see: the orchestrator's environment and Airflow's home."""
    airflow_home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    own = runner_tools.orchestrator_environment()
    return [p for p in (own, sys.prefix, airflow_home) if p]


def _job_read_only(given: Sequence[str] | None) -> list[str]:
    """The folders every step may read (``CICD_JOB_READ_ONLY``), checked."""
    if given is None:
        given = [p for p in os.environ.get(JOB_READ_ONLY_VAR, "").split(os.pathsep) if p.strip()]
    out: list[str] = []
    for folder in given:
        folder = folder.strip()
        if not os.path.isabs(folder):
            raise ConfigError(f"{JOB_READ_ONLY_VAR}: {folder!r} is not an absolute path")
        if not os.path.isdir(folder):
            raise ConfigError(f"{JOB_READ_ONLY_VAR}: {folder} is not a folder")
        if os.path.realpath(folder) == "/":
            raise ConfigError(f"{JOB_READ_ONLY_VAR}: / is never shown to a job")
        for guarded in _guarded_folders():
            if runner_tools.inside(guarded, folder) or runner_tools.inside(folder, guarded):
                raise ConfigError(
                    f"{JOB_READ_ONLY_VAR}: {folder} is refused: it holds or is inside "
                    f"{guarded} (the orchestrator's environment or Airflow's home)"
                )
        out.append(os.path.abspath(folder))
    return out


def _job_containers(state: JobState, runs_on_images: bool) -> Mapping[str, Any]:
    """The job's ``container`` and ``services`` as written in its workflow; with
    ``runs_on_images``, a job without ``container:`` gets the image that stands for its
    ``runs-on`` (:data:`~cicd_orchestrator.actions.containers.RUNS_ON_IMAGES`)."""
    spec = state.instance.spec
    if hasattr(spec, "container") or hasattr(spec, "services"):
        body = {
            "container": getattr(spec, "container", None),
            "services": getattr(spec, "services", None),
        }
    else:
        info = state.info
        written = containers.job_body(info.git_dir, info.sha, info.workflow.path, spec.key)
        body = {"container": written.get("container"), "services": written.get("services")}
    if runs_on_images and not body["container"]:
        try:
            labels = containers.runs_on_labels(spec.runs_on, state.contexts(state.declared_env()))
        except CicdError:
            labels = []  # replay_obstacle says why
        body["container"] = containers.image_for(labels)
    return body


def _start_pod(state: JobState, body: Mapping[str, Any], allowlist: Sequence[str]) -> str | None:
    """Start the job's containers (:mod:`~cicd_orchestrator.actions.pod`) in an
    "Initialize containers" step; returns why the job cannot be replayed, or None."""
    engine = containers.detect_engine()
    assert engine is not None  # replay_obstacle saw it
    jl = state.job_log
    record = Step(
        number=len(state.execution.steps) + 1,
        name="Initialize containers",
        status=RunStatus.IN_PROGRESS,
        started_at=utc_now(),
    )
    state.execution.steps.append(record)
    jl.write("##[group]Initialize containers")
    state.pod = JobPod(engine, state.pod_folder, jl.write)
    try:
        state.pod.start(
            pod_spec(body, state.contexts(state.declared_env())),
            writable=[str(d) for d in state.folders()],
            readable=state.settings.job_read_only,
            network=allowlist,
        )
    except ContainerError as exc:
        jl.write("##[endgroup]")
        return f"the job's containers could not be started: {exc}"
    jl.write("##[endgroup]")
    record.status, record.conclusion = RunStatus.COMPLETED, Conclusion.SUCCESS
    record.completed_at = utc_now()
    return None


def _not_replayable(state: JobState, reason: str) -> None:
    """The job is not run: its log and record say why."""
    jl = state.job_log
    if not state.execution.steps:
        jl.write("##[group]Set up job")
        jl.write(f"Job: {state.instance.name}")
        jl.write("##[endgroup]")
    jl.write(f"##[error]Cannot replay locally: {reason}")
    state.execution.not_replayable = reason
    setup = state.execution.steps[0] if state.execution.steps else None
    now = utc_now()
    state.execution.steps = [
        Step(
            number=1,
            name="Set up job",
            status=RunStatus.COMPLETED,
            conclusion=Conclusion.NEUTRAL,
            started_at=setup.started_at if setup else now,
            completed_at=now,
        ),
        Step(number=2, name="Complete job", started_at=now),
    ]


def _clean_up(state: JobState) -> None:
    """Stop what the job's steps left running, close the log, remove the job's folders."""
    for pgid in state.groups:
        process.kill_group(pgid)
    if state.pod is not None:
        state.job_log.write("Stop and remove the job's containers")
        state.pod.close()
    state.job_log.write("Post job cleanup.")
    state.job_log.write("Cleaning up orphan processes")
    state.job_log.close()
    shutil.rmtree(state.root, ignore_errors=True)


def _conclude(state: JobState, started: float) -> None:
    """Complete the job's record; a failed instance of a fail-fast matrix cancels the others."""
    execution = state.execution
    execution.conclusion = state.conclusion()
    if execution.steps:
        last = execution.steps[-1]
        last.status, last.conclusion, last.completed_at = (
            RunStatus.COMPLETED,
            Conclusion.SUCCESS,
            utc_now(),
        )
    execution.status = RunStatus.COMPLETED
    execution.completed_at = utc_now()
    execution.seconds = round(time.monotonic() - started, 3)
    spec = state.instance.spec
    if spec.matrix and spec.fail_fast and not execution.ok:
        state.cancel.set()  # fail-fast: the other instances of the matrix are cancelled


def _resolve_selection(instances: list[JobInstance], jobs: set[str]) -> set[str]:
    """The instances the names of ``jobs`` stand for: a name as the CI provider reported it
    (GitHub's cut of a long name, a name whose expressions read run contexts) finds its
    local instance (:func:`~cicd_orchestrator.actions.matrix.resolve_job_names`); a job key
    selects every instance of the job."""
    resolved = resolve_job_names(instances, jobs)
    return set(jobs) | {name for names in resolved.values() for name in names}
