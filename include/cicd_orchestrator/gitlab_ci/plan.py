"""Which jobs of a GitLab pipeline run, in which order, with which variables.

A pipeline on ``ref`` gets GitLab's predefined variables; ``workflow: rules`` decide whether
it exists, each job's ``rules`` (or ``only``/``except``) whether the job is in it and with
which ``when``, ``allow_failure`` and extra variables. Jobs run one after the other in an
order that respects ``needs`` (``needs: []`` starts at once) and, for jobs without
``needs``, the stages. Jobs asked for by name are replayed even when the rules, evaluated
on this machine's ref, would leave them out: they ran in the CI run being replayed (a
note in the log says so).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.gitlab_ci import rules as gl_rules
from cicd_orchestrator.gitlab_ci.config import GitLabJob, Pipeline

_VAR_REF = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class PipelineContext:
    """What a pipeline runs on: the commit, the ref, the project."""

    sha: str
    ref: str
    repository: str
    source: str = "push"
    default_branch: str = "main"
    pipeline_id: int = 0

    @property
    def ref_name(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref

    @property
    def is_tag(self) -> bool:
        return self.ref.startswith("refs/tags/")

    def variables(self) -> dict[str, str]:
        """GitLab's predefined variables of the pipeline (the job's are added per job)."""
        namespace, _, name = self.repository.rpartition("/")
        out = {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_SERVER": "yes",
            "CI_COMMIT_SHA": self.sha,
            "CI_COMMIT_SHORT_SHA": self.sha[:8],
            "CI_COMMIT_REF_NAME": self.ref_name,
            "CI_COMMIT_REF_SLUG": _slug(self.ref_name),
            "CI_PIPELINE_SOURCE": self.source,
            "CI_PIPELINE_ID": str(self.pipeline_id),
            "CI_PROJECT_PATH": self.repository,
            "CI_PROJECT_NAME": name or self.repository,
            "CI_PROJECT_NAMESPACE": namespace,
            "CI_DEFAULT_BRANCH": self.default_branch,
        }
        if self.is_tag:
            out["CI_COMMIT_TAG"] = self.ref_name
        elif self.source != "merge_request_event":
            out["CI_COMMIT_BRANCH"] = self.ref_name
        return out


def _slug(ref: str) -> str:
    return re.sub(r"[^a-z0-9]", "-", ref.lower())[:63].strip("-")


def expand_variables(values: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """``base`` and ``values``, the values' references to other variables
    (``$CI_PROJECT_DIR/.cache``) expanded as GitLab's runner does before the job starts
    (``$$`` is a literal ``$``; an unknown name is left to the shell)."""
    known = {**base, **values}

    def expand(value: str, depth: int) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(2)
            if name not in known:
                return m.group(0)
            return expand(known[name], depth + 1) if depth < 5 else known[name]

        return _VAR_REF.sub(sub, value)

    return {**base, **{key: expand(value, 0) for key, value in values.items()}}


@dataclass
class PlannedJob:
    """A job of the pipeline as it will be replayed."""

    job: GitLabJob
    when: str
    allow_failure: bool | list[int]
    #: the job's own variables (global, job, rule, project), not yet expanded
    variables: dict[str, str]
    included: bool
    notes: list[str] = field(default_factory=list)


def job_base(job: GitLabJob, base: Mapping[str, str]) -> dict[str, str]:
    """The predefined variables of one job of the pipeline."""
    return {
        **base,
        "CI_JOB_NAME": job.name,
        "CI_JOB_NAME_SLUG": _slug(job.name),
        "CI_JOB_STAGE": job.stage,
    }


def _job_variables(
    pipeline: Pipeline, job: GitLabJob, project: Mapping[str, str]
) -> dict[str, str]:
    """Global (as the job inherits them) < job < project variables."""
    inherit = job.inherit_variables
    global_vars = {
        k: v
        for k, v in pipeline.variables.items()
        if inherit is True or (isinstance(inherit, list) and k in inherit)
    }
    return {**global_vars, **job.variables, **project}


def plan_job(
    pipeline: Pipeline,
    job: GitLabJob,
    base: Mapping[str, str],
    project: Mapping[str, str],
    exists: gl_rules.Exists,
) -> PlannedJob:
    """Whether ``job`` is in the pipeline, and how (WorkflowError for an invalid rule)."""
    variables = _job_variables(pipeline, job, project)
    visible = expand_variables(variables, job_base(job, base))
    if job.rules is not None:
        outcome = gl_rules.evaluate_rules(job.rules, visible, exists)
    else:
        outcome = gl_rules.evaluate_only_except(job.only, job.except_, visible)
    when = outcome.when or job.when
    allow = job.allow_failure
    if outcome.allow_failure is not None:
        allow = bool(outcome.allow_failure)
    elif outcome.when == "manual" and job.rules is not None:
        allow = False  # a manual job of rules blocks unless the rule allows it to fail
    variables.update(outcome.variables)
    return PlannedJob(job, when, allow, variables, outcome.included, list(outcome.notes))


def workflow_included(
    pipeline: Pipeline, base: Mapping[str, str], exists: gl_rules.Exists
) -> gl_rules.RuleOutcome:
    """Whether ``workflow: rules`` let the pipeline run (and the variables they add)."""
    if pipeline.workflow_rules is None:
        return gl_rules.RuleOutcome(True)
    variables = expand_variables(pipeline.variables, base)
    return gl_rules.evaluate_rules(pipeline.workflow_rules, variables, exists)


def select(pipeline: Pipeline, names: set[str] | None) -> set[str] | None:
    """The instance names of the jobs asked for (a job's name selects all its instances);
    WorkflowError when a name is no job of the pipeline."""
    if names is None:
        return None
    chosen: set[str] = set()
    unknown = []
    for name in sorted(names):
        found = {j.name for j in pipeline.jobs if name in (j.name, j.base)}
        if not found:
            unknown.append(name)
        chosen |= found
    if unknown:
        raise WorkflowError(f"{pipeline.path}: no job named {', '.join(unknown)}")
    return chosen


def order(pipeline: Pipeline, jobs: list[PlannedJob]) -> list[tuple[PlannedJob, list[str]]]:
    """The jobs in a runnable order, each with the instance names it waits for: its
    ``needs`` (every instance of a parallel job), else every job of the earlier stages."""
    names = {p.job.name for p in jobs}
    waits: dict[str, list[str]] = {}
    for planned in jobs:
        job = planned.job
        if job.needs is not None:
            waits[job.name] = [
                p.job.name for p in jobs if p.job.base in job.needs or p.job.name in job.needs
            ]
        else:
            mine = pipeline.stage_index(job.stage)
            waits[job.name] = [p.job.name for p in jobs if pipeline.stage_index(p.job.stage) < mine]
    done: list[tuple[PlannedJob, list[str]]] = []
    placed: set[str] = set()
    pending = sorted(jobs, key=lambda p: pipeline.stage_index(p.job.stage))
    while pending:
        ready = next((p for p in pending if set(waits[p.job.name]) & names <= placed), None)
        if ready is None:
            cycle = ", ".join(p.job.name for p in pending)
            raise WorkflowError(f"{pipeline.path}: the needs of {cycle} form a cycle")
        pending.remove(ready)
        placed.add(ready.job.name)
        done.append((ready, waits[ready.job.name]))
    return done
