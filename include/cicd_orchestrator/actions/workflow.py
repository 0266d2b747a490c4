"""GitHub Actions workflow files: a YAML 1.2-ish loader with line numbers, a model, a parser.

``parse_workflow`` turns the text of ``.github/workflows/<name>.yml`` into a ``Workflow``;
``Workflow.triggered_by`` says whether an event starts it
(:mod:`~cicd_orchestrator.actions.triggers`);
``expand_jobs`` turns its jobs into ``JobInstance``s (one per matrix combination, named as
GitHub names them: :mod:`~cicd_orchestrator.actions.matrix`). Any YAML or structural error
raises ``InvalidWorkflowError`` carrying the file, the line and the parser's message.
``read_workflow`` and ``list_workflow_files`` read them from a commit of a repository.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from cicd_orchestrator import git
from cicd_orchestrator.actions import expressions
from cicd_orchestrator.actions.matrix import (
    expand_matrix,
    expand_matrix_named,
    instance_name,
    name_contexts,
    resolve_job_names,
)
from cicd_orchestrator.actions.triggers import (
    TriggerEvent,
    check_trigger,
    filter_names,
    glob_match,
    triggers,
)
from cicd_orchestrator.exceptions import WorkflowError, WorkspaceError

__all__ = [
    "InvalidWorkflowError",
    "JobInstance",
    "JobSpec",
    "StepSpec",
    "TriggerEvent",
    "Workflow",
    "expand_jobs",
    "expand_matrix",
    "filter_names",
    "glob_match",
    "instance_name",
    "list_workflow_files",
    "parse_workflow",
    "read_workflow",
    "resolve_job_names",
]

log = logging.getLogger(__name__)

WORKFLOW_DIR = ".github/workflows"
DEFAULT_BASH = "bash --noprofile --norc -eo pipefail {0}"
SHELLS = {
    "bash": DEFAULT_BASH,
    "sh": "sh -e {0}",
    "python": "python {0}",
}
SUPPORTED_EVENTS = ("push", "pull_request", "pull_request_target", "workflow_dispatch")


class InvalidWorkflowError(WorkflowError):
    """A workflow file does not parse or is structurally invalid."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}#L{line}" if line else path
        super().__init__(f"{where}: {message}")


# --------------------------------------------------------------------------- YAML loading
class LineDict(dict[Any, Any]):
    """A mapping that remembers the line of itself and of each of its keys (1-based)."""

    line: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int | None:
        return self.lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (``on``/``yes`` stay strings) and line numbers."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    data = LineDict()
    data.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a scalar", key_node.start_mark
            )
        if key in data:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = key_node.start_mark.line + 1
    return data


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_yaml(text: str, path: str = "<workflow>") -> Any:
    """Load YAML with line numbers; a syntax error raises InvalidWorkflowError."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        parts = [p for p in (exc.context, exc.problem) if p]
        raise InvalidWorkflowError(path, line, ", ".join(parts) or str(exc)) from exc
    except yaml.YAMLError as exc:
        raise InvalidWorkflowError(path, None, str(exc)) from exc


# --------------------------------------------------------------------------- model
@dataclass
class StepSpec:
    index: int  # 0-based position in the job
    id: str | None = None
    name: str | None = None
    run: str | None = None
    uses: str | None = None
    with_: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    if_: str | None = None
    working_directory: str | None = None
    shell: str | None = None
    continue_on_error: bool | str = False
    timeout_minutes: float | str | None = None
    line: int | None = None

    @property
    def default_name(self) -> str:
        """The name GitHub shows when the step has none: ``Run <first line>``."""
        if self.run is not None:
            first = next((ln for ln in self.run.splitlines() if ln.strip()), "")
            return f"Run {first.strip()}"
        return f"Run {self.uses}"


@dataclass
class JobSpec:
    key: str
    name: str | None = None
    needs: list[str] = field(default_factory=list)
    if_: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    working_directory: str | None = None
    shell: str | None = None
    timeout_minutes: float | str | None = None
    continue_on_error: bool | str = False
    runs_on: Any = None
    matrix: dict[str, Any] | None = None
    fail_fast: bool = True
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepSpec] = field(default_factory=list)
    line: int | None = None


@dataclass
class JobInstance:
    """One job to execute: a job of the workflow with one matrix combination."""

    spec: JobSpec
    name: str
    matrix: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass
class Workflow:
    path: str
    name: str
    on: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    working_directory: str | None = None
    shell: str | None = None
    jobs: dict[str, JobSpec] = field(default_factory=dict)

    def triggered_by(
        self,
        event: str,
        branch: str | None = None,
        *,
        base_branch: str | None = None,
        changed_paths: Sequence[str] | None = None,
        action: str | None = None,
        tag: str | None = None,
    ) -> bool:
        """Whether an event starts this workflow, with GitHub's filters: ``branch`` is the
        pushed branch (or a pull request's head), ``base_branch`` a pull request's base (its
        branch filters apply to it), ``tag`` a pushed tag, ``changed_paths`` the files the
        push or the pull request changes, ``action`` a pull request's activity (``opened``,
        ``synchronize``...). A value not given does not filter."""
        return self.starts_on(
            TriggerEvent(
                name=event,
                branch=branch,
                base_branch=base_branch,
                tag=tag,
                changed_paths=changed_paths,
                action=action,
            )
        )

    def starts_on(self, event: TriggerEvent) -> bool:
        """Whether ``event`` starts this workflow (see ``triggered_by``)."""
        return triggers(self.on, event)

    def dispatch_inputs(self) -> dict[str, Any]:
        """Defaults of ``workflow_dispatch`` inputs (the ``inputs`` context)."""
        cfg = self.on.get("workflow_dispatch") or {}
        inputs = cfg.get("inputs") if isinstance(cfg, Mapping) else None
        if not isinstance(inputs, Mapping):
            return {}
        return {
            str(k): (v.get("default") if isinstance(v, Mapping) else None)
            for k, v in inputs.items()
        }


# --------------------------------------------------------------------------- parsing
class _Ctx:
    """Where we are in the file, to raise errors with a line."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: Any, key: Any, message: str) -> InvalidWorkflowError:
        line = where.line_of(key) if isinstance(where, LineDict) else None
        return InvalidWorkflowError(self.path, line, message)

    def mapping(self, parent: Any, key: Any, what: str) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(parent, key, f"{what} must be a mapping")
        return value

    def env(self, parent: Any, what: str) -> dict[str, Any]:
        value = parent.get("env")
        if value is None:
            return {}
        if isinstance(value, str) and "${{" in value:
            raise self.fail(parent, "env", f"{what}.env: expressions for a whole env not supported")
        if not isinstance(value, dict):
            raise self.fail(parent, "env", f"{what}.env must be a mapping")
        return {str(k): v for k, v in value.items()}


def parse_workflow(text: str, path: str) -> Workflow:
    """Parse a workflow file's text; raises InvalidWorkflowError with file and line."""
    data = load_yaml(text, path)
    ctx = _Ctx(path)
    if not isinstance(data, dict):
        raise InvalidWorkflowError(path, 1, "a workflow must be a YAML mapping")
    if True in data and "on" not in data:  # a YAML 1.1 loader's reading of `on`
        data["on"] = data.pop(True)
    if "on" not in data:
        raise InvalidWorkflowError(path, getattr(data, "line", 1), "missing 'on' (triggers)")
    if "jobs" not in data:
        raise InvalidWorkflowError(path, getattr(data, "line", 1), "missing 'jobs'")
    defaults = ctx.mapping(ctx.mapping(data, "defaults", "defaults"), "run", "defaults.run")
    wf = Workflow(
        path=path,
        name=str(data.get("name") or path),
        on=_parse_on(ctx, data),
        env=ctx.env(data, "workflow"),
        working_directory=_opt_str(defaults.get("working-directory")),
        shell=_opt_str(defaults.get("shell")),
    )
    jobs = data["jobs"]
    if not isinstance(jobs, dict) or not jobs:
        raise ctx.fail(data, "jobs", "'jobs' must be a non-empty mapping")
    for key, body in jobs.items():
        wf.jobs[str(key)] = _parse_job(ctx, jobs, str(key), body)
    _check_needs(ctx, jobs, wf)
    return wf


def _parse_on(ctx: _Ctx, data: Any) -> dict[str, Any]:
    on = data["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {str(e): None for e in on}
    if isinstance(on, dict):
        for event, cfg in on.items():
            if cfg is not None and not isinstance(cfg, (dict, list)):
                raise ctx.fail(on, event, f"on.{event} must be a mapping")
            problem = check_trigger(str(event), cfg)
            if problem:
                raise ctx.fail(on, event, problem)
        return {str(k): v for k, v in on.items()}
    raise ctx.fail(data, "on", "'on' must be an event name, a list or a mapping")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _parse_job(ctx: _Ctx, jobs: Any, key: str, body: Any) -> JobSpec:
    if not isinstance(body, dict):
        raise ctx.fail(jobs, key, f"job '{key}' must be a mapping")
    if "uses" in body and "steps" not in body:
        raise ctx.fail(body, "uses", f"job '{key}': reusable workflows are not supported")
    steps = body.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ctx.fail(
            body if "steps" in body else jobs,
            "steps" if "steps" in body else key,
            f"job '{key}' must have a non-empty list of steps",
        )
    needs = body.get("needs") or []
    defaults = ctx.mapping(ctx.mapping(body, "defaults", "defaults"), "run", "defaults.run")
    strategy = ctx.mapping(body, "strategy", f"jobs.{key}.strategy")
    matrix = strategy.get("matrix")
    if matrix is not None and not isinstance(matrix, dict):
        raise ctx.fail(strategy, "matrix", f"jobs.{key}.strategy.matrix must be a mapping")
    outputs = ctx.mapping(body, "outputs", f"jobs.{key}.outputs")
    job = JobSpec(
        key=key,
        name=_opt_str(body.get("name")),
        needs=[str(n) for n in (needs if isinstance(needs, list) else [needs])],
        if_=_opt_str(body.get("if")),
        env=ctx.env(body, f"jobs.{key}"),
        working_directory=_opt_str(defaults.get("working-directory")),
        shell=_opt_str(defaults.get("shell")),
        timeout_minutes=body.get("timeout-minutes"),
        continue_on_error=body.get("continue-on-error", False),
        runs_on=body.get("runs-on"),
        matrix=dict(matrix) if matrix else None,
        fail_fast=bool(strategy.get("fail-fast", True)),
        outputs={str(k): str(v) for k, v in outputs.items()},
        line=jobs.line_of(key) if isinstance(jobs, LineDict) else None,
    )
    job.steps = [_parse_step(ctx, steps, key, i, s) for i, s in enumerate(steps)]
    return job


def _parse_step(ctx: _Ctx, steps: list[Any], job: str, index: int, body: Any) -> StepSpec:
    if not isinstance(body, dict):
        raise InvalidWorkflowError(ctx.path, None, f"jobs.{job}.steps[{index}] must be a mapping")
    line = body.line if isinstance(body, LineDict) else None
    has_run, has_uses = "run" in body, "uses" in body
    if has_run == has_uses:
        raise InvalidWorkflowError(
            ctx.path, line, f"jobs.{job}.steps[{index}] must have exactly one of 'run' or 'uses'"
        )
    with_ = ctx.mapping(body, "with", f"jobs.{job}.steps[{index}].with")
    return StepSpec(
        index=index,
        id=_opt_str(body.get("id")),
        name=_opt_str(body.get("name")),
        run=_opt_str(body.get("run")),
        uses=_opt_str(body.get("uses")),
        with_={str(k): v for k, v in with_.items()},
        env=ctx.env(body, f"jobs.{job}.steps[{index}]"),
        if_=_opt_str(body.get("if")),
        working_directory=_opt_str(body.get("working-directory")),
        shell=_opt_str(body.get("shell")),
        continue_on_error=body.get("continue-on-error", False),
        timeout_minutes=body.get("timeout-minutes"),
        line=line,
    )


def _check_needs(ctx: _Ctx, jobs: Any, wf: Workflow) -> None:
    for key, job in wf.jobs.items():
        for need in job.needs:
            if need not in wf.jobs:
                raise ctx.fail(
                    jobs[key], "needs", f"job '{key}' needs '{need}', which is not a job"
                )
    state: dict[str, int] = {}

    def visit(key: str, chain: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            cycle = " -> ".join([*chain, key])
            raise ctx.fail(jobs, key, f"the needs of the jobs form a cycle: {cycle}")
        state[key] = 1
        for need in wf.jobs[key].needs:
            visit(need, [*chain, key])
        state[key] = 2

    for key in wf.jobs:
        visit(key, [])


# --------------------------------------------------------------------------- job instances
def expand_jobs(wf: Workflow, contexts: Mapping[str, Any] | None = None) -> list[JobInstance]:
    """Every job instance of the workflow, in file order (matrix combinations expanded),
    named as GitHub names them; ``contexts`` are the run's (``github``, ``inputs``...)."""
    out: list[JobInstance] = []
    ctxs = contexts or {}
    for job in wf.jobs.values():
        matrix = job.matrix
        try:
            if isinstance(matrix, dict):
                matrix = expressions.interpolate_value(matrix, ctxs)
            combos = expand_matrix_named(matrix)
            has_matrix = bool(job.matrix)
            for index, (combo, values) in enumerate(combos):
                shown = combo if has_matrix else {}
                name_ctx = name_contexts(job, shown, ctxs, index, len(combos))
                name = instance_name(job, shown, name_ctx, values)
                out.append(JobInstance(spec=job, name=name, matrix=shown))
        except WorkflowError as exc:
            raise InvalidWorkflowError(wf.path, job.line, f"jobs.{job.key}: {exc}") from exc
    return out


# --------------------------------------------------------------------------- files of a commit
def read_workflow(git_dir: str | os.PathLike[str], sha: str, workflow_path: str) -> Workflow:
    """Parse a workflow file as it is in commit ``sha`` of the repository ``git_dir``."""
    try:
        text = git.show_file(git_dir, sha, workflow_path)
    except WorkspaceError as exc:
        raise WorkflowError(f"cannot read {workflow_path} at {sha[:12]}: {exc}") from exc
    return parse_workflow(text, workflow_path)


def list_workflow_files(git_dir: str | os.PathLike[str], sha: str) -> list[str]:
    """The workflow files (``.github/workflows/*.yml|yaml``) of a commit, sorted."""
    names = git.list_files(git_dir, sha, WORKFLOW_DIR)
    return sorted(p for p in names if p.endswith((".yml", ".yaml")))
