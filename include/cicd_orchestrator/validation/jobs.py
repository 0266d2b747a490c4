"""Running a workflow's jobs locally, for validation, regression runs and bisection.

Each CI system's jobs replay in their own format: a GitHub Actions workflow through the
job runner (:mod:`cicd_orchestrator.actions`), a ``.gitlab-ci.yml`` through the GitLab
engine (:mod:`cicd_orchestrator.gitlab_ci`), a ``Jenkinsfile``'s stages through the Jenkins
engine (:mod:`cicd_orchestrator.jenkins_pipeline`). The engine is the provider's when the
caller names it, else the file's: by its name, then by what it holds.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from cicd_orchestrator import git
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.run_info import PULL_REQUEST_EVENTS, EventName, pull_request_payload
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.actions.workflow import WORKFLOW_DIR
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import WorkflowError, WorkspaceError
from cicd_orchestrator.gitlab_ci.engine import GitLabEngine
from cicd_orchestrator.jenkins_pipeline.engine import JenkinsEngine
from cicd_orchestrator.models import JobResult, Run

log = logging.getLogger(__name__)
_TS = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ")

GITHUB, GITLAB, JENKINS = "github", "gitlab", "jenkins"
#: the engine of each CI provider kind (``CIProvider.name``)
PROVIDER_ENGINES = {"github": GITHUB, "local": GITHUB, "gitlab": GITLAB, "jenkins": JENKINS}
_GROOVY_START = re.compile(r"^\s*(?:pipeline|node)\s*[({]", re.M)
_GROOVY_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


@dataclass(frozen=True)
class JobTarget:
    """Jobs of one workflow file to run (for GitLab its jobs, for Jenkins its stages)."""

    workflow_path: str
    jobs: frozenset[str]
    #: the CI system whose format the file is in (``github``, ``gitlab``, ``jenkins``);
    #: None: decided from the file
    ci: str | None = None


@dataclass(frozen=True)
class RunEvent:
    """The ref and the event a replay runs as: the failed run's, so that job conditions and
    ``github.*`` see what they saw in CI (a replay with no run behind it: a push of the
    validation branch)."""

    ref: str = "refs/heads/cicd-validation"
    event: str = "push"


def run_event(run: Run) -> RunEvent:
    """The ref and event of ``run``: a pull request run's merge ref with its payload (the
    base is not known from the run), a branch's ref for the others."""
    if run.pull_request_number is not None and run.event in PULL_REQUEST_EVENTS:
        number = run.pull_request_number
        payload = pull_request_payload(number, "synchronize", run.head_branch, run.head_sha, "", "")
        return RunEvent(f"refs/pull/{number}/merge", EventName(run.event, payload))
    return RunEvent(f"refs/heads/{run.head_branch}", run.event or "push")


def failing_targets(workflow_path: str, jobs: Iterable[str]) -> list[JobTarget]:
    """The jobs of one workflow to run (none when ``jobs`` is empty)."""
    names = frozenset(jobs)
    return [JobTarget(workflow_path, names)] if names else []


def engine_for(
    git_dir: str | os.PathLike[str], sha: str, path: str, provider: str | None = None
) -> str:
    """The engine that replays ``path``: the provider's when it is known, else by the
    file's name (``.github/workflows/``, ``*.gitlab-ci.yml``, ``Jenkinsfile*``), else by
    what the file holds (a ``pipeline {``/``node {`` script, a workflow with ``on`` and
    ``jobs``, another YAML mapping: GitLab CI)."""
    if provider in PROVIDER_ENGINES:
        return PROVIDER_ENGINES[provider]
    name = PurePosixPath(path).name
    if path.startswith(WORKFLOW_DIR + "/"):
        return GITHUB
    if name.startswith("Jenkinsfile") or name.endswith((".jenkinsfile", ".groovy")):
        return JENKINS
    if name.endswith(("gitlab-ci.yml", "gitlab-ci.yaml")):
        return GITLAB
    try:
        text = git.show_file(git_dir, sha, path)
    except WorkspaceError:
        return GITHUB  # the engine says the file is missing
    return _engine_of_text(text)


def _engine_of_text(text: str) -> str:
    if _GROOVY_START.search(_GROOVY_COMMENT.sub("", text)):
        return JENKINS
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return GITHUB
    if isinstance(data, dict) and "jobs" in data and ("on" in data or True in data):
        return GITHUB
    return GITLAB if isinstance(data, dict) else GITHUB


def make_runner(config: OrchestratorConfig) -> JobRunner:
    return JobRunner(
        secrets=dict(config.local_ci_secrets),
        default_timeout_minutes=config.job_timeout_minutes,
        output_cap_bytes=config.output_cap_bytes,
        max_parallel_jobs=2,
        network_allowlist=config.job_network_allowlist,
    )


def _tail(execution: JobExecution, lines: int = 40) -> str:
    text = execution.read_log().splitlines()[-lines:]
    return "\n".join(_TS.sub("", t) for t in text)


def _execute(
    runner: JobRunner,
    git_dir: str | os.PathLike[str],
    sha: str,
    target: JobTarget,
    engine: str,
    *,
    repository: str,
    on: RunEvent,
    run_attempt: int,
    log_dir: Path,
) -> list[JobExecution]:
    """The target's jobs, replayed by ``engine`` (WorkflowError for an invalid file)."""
    if engine == GITLAB:
        return GitLabEngine(runner).run_pipeline(
            git_dir,
            sha,
            target.workflow_path,
            ref=on.ref,
            repository=repository,
            log_dir=log_dir,
            jobs=set(target.jobs),
            run_attempt=run_attempt,
        )
    if engine == JENKINS:
        return JenkinsEngine(runner).run_pipeline(
            git_dir,
            sha,
            target.workflow_path,
            ref=on.ref,
            repository=repository,
            log_dir=log_dir,
            stages=set(target.jobs),
            run_attempt=run_attempt,
        )
    return runner.run_workflow(
        git_dir,
        sha,
        target.workflow_path,
        ref=on.ref,
        event=on.event,
        repository=repository,
        run_id=0,
        run_number=0,
        run_attempt=run_attempt,
        jobs=set(target.jobs),
        log_dir=log_dir,
    )


def run_jobs(
    runner: JobRunner,
    git_dir: str | os.PathLike[str],
    sha: str,
    targets: Iterable[JobTarget],
    *,
    repository: str,
    on: RunEvent = RunEvent(),
    run_attempt: int = 1,
    provider: str | None = None,
) -> list[JobResult]:
    """Run the named jobs (needs outside the set count as passed) and report each one.

    ``provider``: the CI provider's kind (``github``, ``gitlab``, ``jenkins``, ``local``),
    which decides the engine; without it the engine is chosen from each target's file.
    ``on``: the ref and event the jobs run as (:func:`run_event` of the failed run)."""
    results: list[JobResult] = []
    with tempfile.TemporaryDirectory(prefix="cicd-jobs-") as logs:
        for target in targets:
            engine = engine_for(git_dir, sha, target.workflow_path, target.ci or provider)
            try:
                executions = _execute(
                    runner,
                    git_dir,
                    sha,
                    target,
                    engine,
                    repository=repository,
                    on=on,
                    run_attempt=run_attempt,
                    log_dir=Path(logs),
                )
            except WorkflowError as exc:
                results.append(
                    JobResult(
                        job=target.workflow_path, conclusion=Conclusion.FAILURE, log_tail=str(exc)
                    )
                )
                continue
            for ex in executions:
                if not ex.executed:
                    continue
                results.append(
                    JobResult(
                        job=ex.name,
                        conclusion=ex.conclusion or Conclusion.FAILURE,
                        log_tail=_tail(ex),
                        seconds=round(ex.seconds, 2),
                        not_replayable=ex.not_replayable,
                    )
                )
    return results


_PASSING = frozenset({Conclusion.SUCCESS, Conclusion.SKIPPED, Conclusion.NEUTRAL})


def passed_here(result: JobResult) -> bool:
    """Whether a job passed on this machine (a job that could not be replayed did not)."""
    return result.conclusion in _PASSING and not result.not_replayable


def all_passed(results: list[JobResult]) -> bool:
    """Every job ran here and passed: a job that could not be replayed passes nothing."""
    return bool(results) and all(map(passed_here, results))
