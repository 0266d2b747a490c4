"""Replaying a declarative Jenkins pipeline's stages on this machine.

The stages share one workspace, as on a Jenkins agent: a fresh checkout of the commit. To
replay a stage, the stages before it run first (a later stage uses what an earlier one
built); only the stages asked for (and an earlier stage that fails) are reported. Each
``sh`` step runs as Jenkins runs it (``sh -xe <script>``, or the script itself when it
starts with ``#!``) in the command sandbox through the GitHub engine's process runner, with
the pipeline's and the stage's ``environment`` and Jenkins' variables (``BRANCH_NAME``,
``GIT_COMMIT``, ``WORKSPACE``, ``BUILD_NUMBER``, ``JOB_NAME``...). A stage that needs
Jenkins itself (Groovy, credentials, plugin steps) concludes as not replayable with
``cannot replay locally: <why>`` in its log. The logs are in Jenkins' console format
(``[Pipeline] { (Stage)``, ``+ command``, ``ERROR: script returned exit code N``,
``Finished: FAILURE``).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cicd_orchestrator import git
from cicd_orchestrator.actions.containers import ContainerError
from cicd_orchestrator.actions.host import HostJob, PlainLog
from cicd_orchestrator.actions.job_state import RunnerSettings
from cicd_orchestrator.actions.pod import ContainerSpec, PodSpec
from cicd_orchestrator.actions.results import JobExecution, utc_now
from cicd_orchestrator.actions.run_info import RUNNER_NAME
from cicd_orchestrator.constants import FAILED_CONCLUSIONS, Conclusion, RunStatus
from cicd_orchestrator.exceptions import WorkflowError, WorkspaceError
from cicd_orchestrator.jenkins_pipeline.model import JenkinsPipeline, Stage, parse_jenkinsfile
from cicd_orchestrator.jenkins_pipeline.steps import StepRunner
from cicd_orchestrator.jenkins_pipeline.values import NotReplayable, interpolate, when_holds

log = logging.getLogger(__name__)


def read_jenkinsfile(git_dir: str | os.PathLike[str], sha: str, path: str) -> JenkinsPipeline:
    try:
        text = git.show_file(git_dir, sha, path)
    except WorkspaceError as exc:
        raise WorkflowError(f"cannot read {path} at {sha[:12]}: {exc}") from exc
    return parse_jenkinsfile(text, path)


@dataclass
class _Build:
    """One replay of the pipeline."""

    pipeline: JenkinsPipeline
    git_dir: str
    sha: str
    branch: str
    repository: str
    log_dir: Path
    run_attempt: int
    allocate: Callable[[], int]
    build_number: int
    #: whether stages were asked for by name (their when conditions do not hold them back)
    by_name: bool = False
    failed: bool = False
    not_replayed: list[str] = field(default_factory=list)

    def variables(self, workspace: Path) -> dict[str, str]:
        job_name = f"{self.repository}/{self.branch}"
        return {
            "BRANCH_NAME": self.branch,
            "GIT_BRANCH": self.branch,
            "GIT_COMMIT": self.sha,
            "WORKSPACE": str(workspace),
            "BUILD_NUMBER": str(self.build_number),
            "BUILD_ID": str(self.build_number),
            "JOB_NAME": job_name,
            "JOB_BASE_NAME": self.branch,
            "BUILD_TAG": f"jenkins-{job_name.replace('/', '-')}-{self.build_number}",
            "NODE_NAME": RUNNER_NAME,
            "EXECUTOR_NUMBER": "0",
        }


class JenkinsEngine:
    """Replays the stages of a declarative Jenkinsfile (see the module docstring)."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings

    def run_pipeline(
        self,
        git_dir: str | os.PathLike[str],
        sha: str,
        script_path: str,
        *,
        ref: str,
        repository: str,
        log_dir: str | os.PathLike[str],
        stages: set[str] | None = None,
        run_attempt: int = 1,
        build_number: int = 1,
        allocate_job_id: Callable[[], int] | None = None,
    ) -> list[JobExecution]:
        """Replay the pipeline's stages (or only ``stages``, by stage name; the script path
        names the whole build). Raises WorkflowError when the Jenkinsfile is invalid or a
        name is no stage of it."""
        pipeline = read_jenkinsfile(git_dir, sha, script_path)
        counter = itertools.count(1)
        build = _Build(
            pipeline,
            os.fspath(git_dir),
            sha,
            _branch(ref),
            repository,
            Path(log_dir),
            run_attempt,
            allocate_job_id or (lambda: next(counter)),
            build_number,
        )
        build.log_dir.mkdir(parents=True, exist_ok=True)
        build.by_name = stages is not None and script_path not in stages
        if pipeline.not_replayable is not None:
            names = sorted(stages) if stages else [script_path]
            return [self._not_replayable(build, n, pipeline.not_replayable) for n in names]
        synthetic = sorted(n for n in stages or () if n.startswith(SYNTHETIC_PREFIX))
        done = [self._not_replayable(build, n, _synthetic_reason(n)) for n in synthetic]
        if stages is not None and synthetic and set(synthetic) == stages:
            return done
        chosen = _select(pipeline, None if stages is None else stages - set(synthetic))
        leaves = pipeline.leaves()
        last = max(i for i, leaf in enumerate(leaves) if leaf.name in chosen)
        host = HostJob(self.settings, repository, "workspace")
        try:
            checkout_error = _checkout(host, build)
            out = done
            for leaf in leaves[: last + 1]:
                execution = self._stage(build, host, leaf, leaf.name in chosen, checkout_error)
                if execution.executed:
                    out.append(execution)
            return out
        finally:
            host.clean_up()

    # ------------------------------------------------------------------ one stage
    def _new_execution(self, build: _Build, name: str) -> JobExecution:
        job_id = build.allocate()
        return JobExecution(
            name=name,
            key=name,
            job_id=job_id,
            log_path=str(build.log_dir / f"{job_id}.log"),
            run_attempt=build.run_attempt,
        )

    def _not_replayable(self, build: _Build, name: str, why: str) -> JobExecution:
        execution = self._new_execution(build, name)
        jl = PlainLog(execution.log_path, self.settings.secrets.values())
        jl.write(f"cannot replay locally: {why}")
        jl.close()
        execution.not_replayable = why
        execution.complete_at_once(Conclusion.NEUTRAL)
        return execution

    def _stage(
        self, build: _Build, host: HostJob, leaf: Stage, selected: bool, checkout_error: str | None
    ) -> JobExecution:
        execution = self._new_execution(build, leaf.name)
        execution.executed = selected
        execution.status = RunStatus.IN_PROGRESS
        execution.started_at = utc_now()
        started = time.monotonic()
        jl = PlainLog(execution.log_path, self.settings.secrets.values())
        try:
            _stage_header(jl, build, host, leaf)
            conclusion = self._stage_body(
                build, host, leaf, selected, checkout_error, jl, execution
            )
            jl.write("[Pipeline] }")
            jl.write("[Pipeline] // stage")
            result = {Conclusion.SUCCESS: "SUCCESS", Conclusion.TIMED_OUT: "ABORTED"}
            if conclusion not in (Conclusion.SKIPPED, Conclusion.NEUTRAL):
                jl.write(f"Finished: {result.get(conclusion, 'FAILURE')}")
        finally:
            jl.close()
        execution.conclusion = conclusion
        execution.status = RunStatus.COMPLETED
        execution.completed_at = utc_now()
        execution.seconds = round(time.monotonic() - started, 3)
        if conclusion in FAILED_CONCLUSIONS:
            build.failed = True
            execution.executed = True  # an earlier stage that fails is reported too
        return execution

    def _stage_body(
        self,
        build: _Build,
        host: HostJob,
        leaf: Stage,
        selected: bool,
        checkout_error: str | None,
        jl: PlainLog,
        execution: JobExecution,
    ) -> Conclusion:
        if checkout_error is not None:
            jl.write(f"ERROR: {checkout_error}")
            return Conclusion.FAILURE
        if build.failed:
            jl.write(f'Stage "{leaf.name}" skipped due to earlier failure(s)')
            return Conclusion.SKIPPED
        chain = _chain(build.pipeline, leaf)
        notes: list[str] = []
        try:
            env = _environment(build, host, chain)
            runs = all(s.when is None or when_holds(s.when, env, notes) for s in chain)
        except NotReplayable as exc:
            return self._cannot(build, leaf, jl, execution, str(exc))
        if not runs and not (selected and build.by_name):
            jl.write(f'Stage "{leaf.name}" skipped due to when conditional')
            return Conclusion.SKIPPED
        why = next((s.not_replayable for s in chain if s.not_replayable), None)
        if why is not None:
            return self._cannot(build, leaf, jl, execution, why)
        _agent(host, build, leaf, jl)
        for note in [*notes, *(n for s in chain for n in s.notes)]:
            jl.write(f"NOTE: {note}")
        if not runs:
            jl.write(
                f"NOTE: the when conditions of {leaf.name} do not hold on {build.branch}; the "
                "stage is replayed because it was asked for by name (it ran in CI)"
            )
        for name in build.not_replayed:
            jl.write(f"NOTE: stage {name} before it was not replayed")
        deadline = time.monotonic() + self.settings.default_timeout_minutes * 60.0
        return StepRunner(host, jl, env, deadline).run(leaf.steps)

    def _cannot(
        self, build: _Build, leaf: Stage, jl: PlainLog, execution: JobExecution, why: str
    ) -> Conclusion:
        jl.write(f"cannot replay locally: {why}")
        execution.not_replayable = why
        build.not_replayed.append(leaf.name)
        return Conclusion.NEUTRAL


# --------------------------------------------------------------------------- helpers
#: the stages Jenkins adds itself (``Declarative: Checkout SCM``, ``Declarative: Post Actions``)
SYNTHETIC_PREFIX = "Declarative: "


def _synthetic_reason(name: str) -> str:
    return f"{name} is a stage of Jenkins itself (checkout, agent, tools or post actions)"


def _branch(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _select(pipeline: JenkinsPipeline, names: set[str] | None) -> set[str]:
    """The leaf stages the names select (a parent stage selects its nested stages, the
    script path the whole build)."""
    leaves = pipeline.leaves()
    if names is None or pipeline.path in names:
        return {leaf.name for leaf in leaves}
    chosen: set[str] = set()
    unknown = []
    for name in sorted(names):
        found = [s for s in pipeline.all_stages() if s.name == name]
        if not found:
            unknown.append(name)
        chosen |= {leaf.name for s in found for leaf in s.leaves()}
    if unknown:
        raise WorkflowError(f"{pipeline.path}: no stage named {', '.join(unknown)}")
    return chosen


def _chain(pipeline: JenkinsPipeline, leaf: Stage) -> list[Stage]:
    """The stages from the top to ``leaf`` (their environments and conditions apply)."""

    def find(stages: list[Stage], trail: list[Stage]) -> list[Stage] | None:
        for stage in stages:
            if stage is leaf:
                return [*trail, stage]
            found = find(stage.children, [*trail, stage])
            if found is not None:
                return found
        return None

    return find(pipeline.stages, []) or [leaf]


def _environment(build: _Build, host: HostJob, chain: list[Stage]) -> dict[str, str]:
    """Jenkins' variables, then the pipeline's and each stage's ``environment`` in order
    (NotReplayable when a value needs Jenkins)."""
    env = build.variables(host.workspace)
    env["STAGE_NAME"] = chain[-1].name
    for name, value in build.pipeline.environment:
        env[name] = interpolate(value, env)
    for stage in chain:
        for name, value in stage.environment:
            env[name] = interpolate(value, env)
    return env


def _agent(host: HostJob, build: _Build, leaf: Stage, jl: PlainLog) -> None:
    """Run the stage's steps in the container of its ``agent { docker }`` (or the
    pipeline's), one per image for the whole build, or with the host's tools (a warning)
    when the container cannot start."""
    image = leaf.image or build.pipeline.image
    if not image:
        host.leave_pod()
        return
    try:
        if image in ("docker", "dockerfile"):
            raise ContainerError(f"an agent {image} without an image name builds its own")
        jl.write(f"[Pipeline] withDockerContainer ({image})")
        host.enter_pod(image, PodSpec(ContainerSpec(image), {}), jl.write)
    except ContainerError as exc:
        host.leave_pod()
        jl.write(f"WARNING: image {image} is not used: {exc}; the stage runs with the host's tools")


def _checkout(host: HostJob, build: _Build) -> str | None:
    try:
        host.checkout(build.git_dir, build.sha, build.branch)
    except WorkspaceError as exc:
        return f"checkout of {build.sha[:12]} failed: {exc}"
    return None


def _stage_header(jl: PlainLog, build: _Build, host: HostJob, leaf: Stage) -> None:
    jl.write(f"Replaying {build.pipeline.path} locally (declarative pipeline)")
    jl.write(f"Running on {RUNNER_NAME} in {host.workspace}")
    for note in build.pipeline.notes:
        jl.write(f"NOTE: {note}")
    jl.write("[Pipeline] stage")
    jl.write(f"[Pipeline] {{ ({leaf.name})")
