"""Replaying a GitLab CI pipeline's jobs on this machine, as GitLab's shell executor runs them.

Each job gets a fresh checkout and folders of its own (:mod:`~cicd_orchestrator.actions.host`);
``before_script`` and ``script`` run in one shell (``bash`` when there is one, else ``sh``)
with ``set -eo pipefail``, each command echoed as ``$ <command>``, so a failing command fails
the job; ``after_script`` runs in a shell of its own and its failure does not fail the job.
The job log is written in GitLab's trace format (``section_start:<ts>:<name>`` ...
``section_end``, ``Job succeeded`` or ``ERROR: Job failed: exit code N``). A job with an
``image:`` or ``services:`` runs as GitLab's docker executor runs it: its commands in a
container of the image, the services beside it (reached by their alias, or the name GitLab
derives from the image), in a pod of the job's own (:mod:`~cicd_orchestrator.actions.pod`).
Where the pod cannot start (no podman, an image that cannot be had), a job with services is
not replayable and its log says why; a job with an image only runs with the host's tools,
with a warning in its log. Results are the
:class:`~cicd_orchestrator.actions.results.JobExecution` records of the GitHub engine.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator import git
from cicd_orchestrator.actions.containers import ContainerError
from cicd_orchestrator.actions.host import HostJob, PlainLog
from cicd_orchestrator.actions.job_state import RunnerSettings
from cicd_orchestrator.actions.pod import ContainerSpec, PodSpec, label_ok
from cicd_orchestrator.actions.results import JobExecution, utc_now
from cicd_orchestrator.actions.run_info import RUNNER_NAME
from cicd_orchestrator.actions.step_process import StepOutcome
from cicd_orchestrator.constants import FAILED_CONCLUSIONS, Conclusion, RunStatus
from cicd_orchestrator.exceptions import WorkflowError, WorkspaceError
from cicd_orchestrator.gitlab_ci import plan as gl_plan
from cicd_orchestrator.gitlab_ci import rules as gl_rules
from cicd_orchestrator.gitlab_ci.config import GitLabJob, Pipeline, parse_pipeline
from cicd_orchestrator.models import Step

log = logging.getLogger(__name__)

#: how long ``after_script`` may run (GitLab's default)
AFTER_SCRIPT_TIMEOUT = 300.0


def service_names(image: str) -> list[str]:
    """The host names GitLab gives a service of ``image`` without an alias: the name
    without its tag, ``/`` as ``__`` and as ``-``."""
    name = image.rsplit("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return list(dict.fromkeys([name.replace("/", "__"), name.replace("/", "-")]))


def pod_of(job: GitLabJob, variables: Mapping[str, str]) -> PodSpec:
    """The containers of a job: its ``image`` and its ``services`` (a name, or ``name``,
    ``alias``, ``variables``, ``command``), each service given the job's variables as on
    GitLab. Raises ContainerError for a service that cannot be named."""
    services: dict[str, ContainerSpec] = {}
    for entry in job.services:
        body = entry if isinstance(entry, Mapping) else {"name": entry}
        image = str(body.get("name") or "").strip()
        if not image:
            continue
        alias = str(body.get("alias") or "")
        names = [a for a in alias.replace(",", " ").split() if a] or service_names(image)
        label, *aliases = [n.replace(".", "-") for n in names]
        if not label_ok(label) or not all(label_ok(a) for a in aliases):
            raise ContainerError(f"the service {image} cannot be named {names}")
        own = body.get("variables") if isinstance(body.get("variables"), Mapping) else {}
        command = body.get("command")
        services[label] = ContainerSpec(
            image=image,
            env={**variables, **{str(k): str(v) for k, v in (own or {}).items()}},
            aliases=tuple(aliases),
            command=tuple(str(c) for c in command) if isinstance(command, list) else (),
        )
    return PodSpec(ContainerSpec(job.image) if job.image else None, services)


def section_start(name: str, header: str) -> str:
    return f"section_start:{int(time.time())}:{name}\r\x1b[0K{header}"


def section_end(name: str) -> str:
    return f"section_end:{int(time.time())}:{name}\r\x1b[0K"


def script_text(commands: Iterable[str], bash: bool) -> str:
    """A job script as GitLab's shell executor writes it: the shell's error options, then
    each command echoed as ``$ <command>`` before it runs."""
    lines = ["set -eo pipefail" if bash else "set -e"]
    for command in commands:
        text = command.strip("\n")
        shown = text.split("\n", 1)[0]
        if "\n" in text:
            shown += " # collapsed multi-line command"
        lines.append(f"printf '%s\\n' {shlex.quote('$ ' + shown)}")
        lines.append(text)
    return "\n".join(lines) + "\n"


def read_pipeline(git_dir: str | os.PathLike[str], sha: str, path: str) -> Pipeline:
    """The pipeline of ``path`` in commit ``sha`` (local includes read from the commit)."""

    def read(name: str) -> str:
        try:
            return git.show_file(git_dir, sha, name)
        except WorkspaceError as exc:
            raise WorkflowError(f"cannot read {name} at {sha[:12]}: {exc}") from exc

    files: list[str] = []

    def listing() -> list[str]:
        if not files:
            files.extend(git.git(["ls-tree", "-r", "--name-only", sha], git_dir).splitlines())
        return files

    return parse_pipeline(read(path), path, read, listing)


@dataclass
class _Run:
    """One replay of a pipeline: where it runs, and the results so far."""

    git_dir: str
    context: gl_plan.PipelineContext
    pipeline: Pipeline
    log_dir: Path
    run_attempt: int
    allocate: Callable[[], int]
    results: dict[str, JobExecution]
    notes: list[str]


class GitLabEngine:
    """Replays the jobs of a ``.gitlab-ci.yml`` (see the module docstring)."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings

    def run_pipeline(
        self,
        git_dir: str | os.PathLike[str],
        sha: str,
        config_path: str,
        *,
        ref: str,
        repository: str,
        log_dir: str | os.PathLike[str],
        jobs: set[str] | None = None,
        run_attempt: int = 1,
        source: str = "push",
        default_branch: str = "main",
        allocate_job_id: Callable[[], int] | None = None,
    ) -> list[JobExecution]:
        """Replay the pipeline's jobs (or only ``jobs``, by job or instance name; the jobs
        they wait for that are not asked for count as passed). Returns the jobs in the
        order they ran. Raises WorkflowError when the configuration is invalid."""
        pipeline = read_pipeline(git_dir, sha, config_path)
        context = gl_plan.PipelineContext(sha, ref, repository, source, default_branch)
        files: list[str] = []

        def exists(patterns: list[str]) -> bool:
            if not files:
                files.extend(git.git(["ls-tree", "-r", "--name-only", sha], git_dir).splitlines())
            return gl_rules.any_exists(files, patterns)

        selected = gl_plan.select(pipeline, jobs)
        base = context.variables()
        workflow = gl_plan.workflow_included(pipeline, base, exists)
        notes = [*pipeline.notes, *workflow.notes]
        if not workflow.included:
            if selected is None:
                log.info("%s: workflow rules leave the pipeline out on %s", config_path, ref)
                return []
            notes.append(
                f"workflow: rules leave the pipeline out on {context.ref_name}; the jobs "
                "asked for are replayed as they ran in CI"
            )
        pipeline.variables.update(workflow.variables)
        project = dict(self.settings.secrets)
        planned = [
            gl_plan.plan_job(pipeline, job, base, project, exists)
            for job in pipeline.jobs
            if selected is None or job.name in selected
        ]
        if selected is None:
            planned = [p for p in planned if p.included]
        counter = itertools.count(1)
        run = _Run(
            os.fspath(git_dir),
            context,
            pipeline,
            Path(log_dir),
            run_attempt,
            allocate_job_id or (lambda: next(counter)),
            {},
            notes,
        )
        run.log_dir.mkdir(parents=True, exist_ok=True)
        out = []
        for job, waits in gl_plan.order(pipeline, planned):
            execution = self._job(run, job, waits, forced=selected is not None)
            run.results[job.job.name] = execution
            out.append(execution)
        return out

    # ------------------------------------------------------------------ one job
    def _job(
        self, run: _Run, planned: gl_plan.PlannedJob, waits: list[str], *, forced: bool
    ) -> JobExecution:
        job = planned.job
        job_id = run.allocate()
        execution = JobExecution(
            name=job.name,
            key=job.base,
            job_id=job_id,
            needs=list(waits),
            matrix=dict(job.matrix),
            log_path=str(run.log_dir / f"{job_id}.log"),
            continue_on_error=planned.allow_failure is True,
            run_attempt=run.run_attempt,
        )
        skip = self._skip_reason(run, planned, waits, forced)
        jl = PlainLog(execution.log_path, self.settings.secrets.values())
        try:
            jl.write(f"Running with gitlab-runner (local replay on {RUNNER_NAME})")
            for note in [*run.notes, *job.notes, *planned.notes, *_forced(run, planned, forced)]:
                jl.write(f"NOTE: {note}")
            if job.not_replayable is not None:
                jl.write(f"cannot replay locally: {job.not_replayable}")
                execution.not_replayable = job.not_replayable
                execution.complete_at_once(Conclusion.NEUTRAL)
            elif skip is not None:
                jl.write(f"Job skipped: {skip}")
                execution.complete_at_once(Conclusion.SKIPPED)
            else:
                _JobRun(self.settings, run, planned, execution, jl).execute()
        finally:
            jl.close()
        return execution

    @staticmethod
    def _skip_reason(
        run: _Run, planned: gl_plan.PlannedJob, waits: list[str], forced: bool
    ) -> str | None:
        """Why the job does not run (its rules, ``when``, a failed earlier job), or None."""
        when = planned.when
        if not forced and when == "manual":
            return "a manual job is not started"
        if not forced and not planned.included:
            return "the rules leave it out"
        earlier = [run.results[w] for w in waits if w in run.results]
        failed = any(
            e.conclusion in FAILED_CONCLUSIONS and not e.continue_on_error for e in earlier
        )
        if when == "on_failure" and not failed:
            return "when: on_failure and no earlier job failed"
        if when in ("on_success", "manual", "delayed") and failed:
            return "an earlier job failed"
        return None


def _forced(run: _Run, planned: gl_plan.PlannedJob, forced: bool) -> list[str]:
    """Why a job asked for by name runs although the pipeline would not start it here."""
    if not forced:
        return []
    why = []
    if not planned.included:
        why.append(f"its rules leave it out on {run.context.ref_name}")
    if planned.when == "manual":
        why.append("it is a manual job")
    if not why:
        return []
    return [f"{' and '.join(why)}; it is replayed because it was asked for by name (it ran in CI)"]


@dataclass
class _JobRun:
    """One job running (see the module docstring)."""

    settings: RunnerSettings
    run: _Run
    planned: gl_plan.PlannedJob
    execution: JobExecution
    jl: PlainLog

    def execute(self) -> None:
        execution = self.execution
        execution.status = RunStatus.IN_PROGRESS
        execution.started_at = utc_now()
        started = time.monotonic()
        host = HostJob(self.settings, self.run.context.repository, "builds")
        try:
            execution.conclusion = self._body(host)
        except Exception as exc:  # the engine's own bug or an OS error: fail, say why
            log.exception("GitLab job %s crashed", execution.name)
            self.jl.write(f"ERROR: Job failed (system failure): {exc}")
            execution.conclusion = Conclusion.FAILURE
        finally:
            host.clean_up()
        execution.status = RunStatus.COMPLETED
        execution.completed_at = utc_now()
        execution.seconds = round(time.monotonic() - started, 3)

    def _step(self, name: str, conclusion: Conclusion) -> None:
        steps = self.execution.steps
        now = utc_now()
        steps.append(Step(len(steps) + 1, name, RunStatus.COMPLETED, conclusion, now, now))

    def _body(self, host: HostJob) -> Conclusion:
        jl, job, context = self.jl, self.planned.job, self.run.context
        executor = "docker" if job.image or job.services else "shell"
        jl.write(section_start("prepare_executor", f'Preparing the "{executor}" executor'))
        jl.write(f"Using {executor.title()} executor... (local replay in {host.workspace})")
        if job.image:
            jl.write(f"Using docker image {job.image} ...")
        jl.write(section_end("prepare_executor"))
        self._step("Prepare executor", Conclusion.SUCCESS)
        jl.write(section_start("get_sources", "Getting source from Git repository"))
        jl.write(f"Checking out {context.sha[:8]} as detached HEAD (ref is {context.ref_name})...")
        try:
            host.checkout(self.run.git_dir, context.sha, context.ref_name)
        except WorkspaceError as exc:
            jl.write(f"ERROR: Job failed (system failure): checkout failed: {exc}")
            self._step("Get sources", Conclusion.FAILURE)
            return Conclusion.FAILURE
        jl.write(section_end("get_sources"))
        self._step("Get sources", Conclusion.SUCCESS)
        env = self._env(host)
        if job.image or job.services:
            why = self._containers(host, env)
            if why is not None:
                jl.write(f"cannot replay locally: {why}")
                self.execution.not_replayable = why
                return Conclusion.NEUTRAL
        outcome, timeout = self._script(host, env)
        self._after_script(host, env, outcome)
        jl.write(
            section_start(
                "cleanup_file_variables", "Cleaning up project directory and file based variables"
            )
        )
        jl.write(section_end("cleanup_file_variables"))
        return self._conclude(outcome, timeout)

    def _containers(self, host: HostJob, env: dict[str, str]) -> str | None:
        """Start the job's image and services (the docker executor's way); returns why
        they cannot run here, or None."""
        job, jl = self.planned.job, self.jl
        jl.write(section_start("prepare_containers", "Preparing the job's containers"))
        try:
            host.enter_pod("job", pod_of(job, env), jl.write)
        except ContainerError as exc:
            if job.services:
                return f"the job's containers could not be started: {exc}"
            jl.write(
                f"WARNING: image {job.image} is not used: {exc}; the job runs with the host's tools"
            )
        finally:
            jl.write(section_end("prepare_containers"))
        self._step("Prepare containers", Conclusion.SUCCESS)
        return None

    def _env(self, host: HostJob) -> dict[str, str]:
        job = self.planned.job
        base = gl_plan.job_base(job, self.run.context.variables())
        base.update(
            {
                "CI_PROJECT_DIR": str(host.workspace),
                "CI_BUILDS_DIR": str(host.workspace.parent.parent),
                "CI_JOB_ID": str(self.execution.job_id),
                "CI_PIPELINE_IID": "0",
                "CI_RUNNER_DESCRIPTION": RUNNER_NAME,
                "CI_JOB_STATUS": "running",
            }
        )
        if job.image:
            base["CI_JOB_IMAGE"] = job.image
        return gl_plan.expand_variables(self.planned.variables, base)

    def _script(self, host: HostJob, env: dict[str, str]) -> tuple[StepOutcome, float]:
        job = self.planned.job
        shell = host.shell()
        text = script_text([*job.before_script, *job.script], shell[0] == "bash")
        script = host.write_script("step_script.sh", text)
        timeout = job.timeout or self.settings.default_timeout_minutes * 60.0
        self.jl.write(
            section_start("step_script", 'Executing "step_script" stage of the job script')
        )
        outcome = host.run([*shell, str(script)], env=host.env(env), log=self.jl, timeout=timeout)
        self.jl.write(section_end("step_script"))
        ok = outcome.exit_code == 0 and not outcome.error
        self._step("step_script", Conclusion.SUCCESS if ok else Conclusion.FAILURE)
        return outcome, timeout

    def _after_script(self, host: HostJob, env: dict[str, str], outcome: StepOutcome) -> None:
        job = self.planned.job
        if not job.after_script:
            return
        status = "success" if outcome.exit_code == 0 and not outcome.error else "failed"
        if outcome.timed_out:
            status = "canceled"
        shell = host.shell()
        script = host.write_script(
            "after_script.sh", script_text(job.after_script, shell[0] == "bash")
        )
        self.jl.write(section_start("after_script", "Running after_script"))
        self.jl.write("Running after script...")
        after = host.run(
            [*shell, str(script)],
            env=host.env({**env, "CI_JOB_STATUS": status}),
            log=self.jl,
            timeout=AFTER_SCRIPT_TIMEOUT,
        )
        if after.exit_code != 0 or after.error:
            code = after.error or f"exit code {after.exit_code}"
            if after.timed_out:
                code = f"execution took longer than {AFTER_SCRIPT_TIMEOUT:g} seconds"
            self.jl.write(f"WARNING: after_script failed, but job will continue unaffected: {code}")
        self.jl.write(section_end("after_script"))
        ok = after.exit_code == 0 and not after.error
        self._step("after_script", Conclusion.SUCCESS if ok else Conclusion.FAILURE)

    def _conclude(self, outcome: StepOutcome, timeout: float) -> Conclusion:
        jl = self.jl
        if outcome.error:
            jl.write(f"ERROR: Job failed (system failure): {outcome.error}")
            return Conclusion.FAILURE
        if outcome.capped:
            jl.write(
                f"ERROR: Job failed: the job log exceeded the limit of "
                f"{self.settings.output_cap_bytes} bytes; the job was stopped"
            )
            return Conclusion.FAILURE
        if outcome.timed_out:
            jl.write(f"ERROR: Job failed: execution took longer than {timeout:g} seconds")
            return Conclusion.TIMED_OUT
        if outcome.exit_code != 0:
            allowed = self.planned.allow_failure
            if isinstance(allowed, list) and outcome.exit_code in allowed:
                self.execution.continue_on_error = True
            jl.write(f"ERROR: Job failed: exit code {outcome.exit_code}")
            return Conclusion.FAILURE
        jl.write("Job succeeded")
        return Conclusion.SUCCESS
