"""A ``.gitlab-ci.yml`` as a pipeline: its stages, global variables, workflow rules and jobs.

:func:`parse_pipeline` takes the file's text (and a reader of the commit's other files for
``include: local:``) and gives a :class:`Pipeline`. Jobs are the top-level mappings that are
neither reserved keywords nor hidden (``.name``) templates, after ``extends``; each keeps
what it inherits from ``default:`` (or the old top-level ``image``, ``before_script``,
``after_script``) and expands into its ``parallel`` instances, named as GitLab names them
(``test 1/3``, ``test: [3.11, linux]``). A keyword the replay does not interpret is kept as
a note for the job's log; a structural error raises :class:`InvalidWorkflowError`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.actions.workflow import InvalidWorkflowError
from cicd_orchestrator.gitlab_ci import loader

DEFAULT_STAGES = (".pre", "build", "test", "deploy", ".post")
RESERVED = frozenset(
    {
        "default",
        "include",
        "stages",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
        "types",
        "spec",
    }
)
#: the keywords ``default:`` (and the old top-level ones) give the jobs that do not set them
DEFAULT_KEYS = (
    "image",
    "services",
    "before_script",
    "after_script",
    "tags",
    "cache",
    "artifacts",
    "retry",
    "timeout",
    "interruptible",
    "hooks",
    "id_tokens",
)
INTERPRETED = frozenset(
    {
        "script",
        "before_script",
        "after_script",
        "stage",
        "image",
        "variables",
        "extends",
        "needs",
        "when",
        "allow_failure",
        "rules",
        "only",
        "except",
        "parallel",
        "timeout",
        "inherit",
    }
)
#: keywords that change nothing of a job's commands and their result here
NOT_REPLAYED = frozenset(
    {
        "artifacts",
        "cache",
        "services",
        "tags",
        "retry",
        "environment",
        "coverage",
        "interruptible",
        "resource_group",
        "dependencies",
        "release",
        "secrets",
        "id_tokens",
        "hooks",
        "start_in",
        "pages",
        "description",
        "dast_configuration",
        "identity",
        "manual_confirmation",
    }
)
#: marks an ``optional: true`` need while the jobs are read
OPTIONAL = "\x00optional"
WHEN_VALUES = ("on_success", "on_failure", "always", "manual", "delayed", "never")


@dataclass
class GitLabJob:
    """One job instance of the pipeline (a ``parallel`` job gives several)."""

    name: str
    base: str
    stage: str
    script: list[str]
    before_script: list[str] = field(default_factory=list)
    after_script: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    services: list[Any] = field(default_factory=list)  # as written (see services_of)
    needs: list[str] | None = None
    when: str = "on_success"
    allow_failure: bool | list[int] = False
    rules: list[Any] | None = None
    only: Any = None
    except_: Any = None
    timeout: float | None = None
    inherit_variables: bool | list[str] = True
    matrix: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    not_replayable: str | None = None


@dataclass
class Pipeline:
    """A parsed ``.gitlab-ci.yml`` (see the module docstring)."""

    path: str
    stages: list[str]
    variables: dict[str, str]
    workflow_rules: list[Any] | None
    jobs: list[GitLabJob]
    notes: list[str] = field(default_factory=list)

    def stage_index(self, stage: str) -> int:
        return self.stages.index(stage)


# --------------------------------------------------------------------------- values
def as_text(value: Any) -> str:
    """A variable's value as GitLab passes it (``true``, ``1``, the empty string for null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def variables_of(value: Any, where: str, path: str) -> dict[str, str]:
    """A ``variables:`` mapping (values may be ``{value:, description:}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidWorkflowError(path, None, f"{where}: variables must be a mapping")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = item.get("value", "")
        if isinstance(item, (dict, list)):
            raise InvalidWorkflowError(path, None, f"{where}: variable {key} must be a string")
        out[str(key)] = as_text(item)
    return out


def commands(value: Any, where: str, path: str) -> list[str]:
    """A script keyword's commands (a string or a list, nested lists flattened)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            out.extend(commands(item, where, path))
        return out
    raise InvalidWorkflowError(
        path, None, f"{where}: a script must be a string or a nested array of strings"
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s|days?|hours?|hrs?|min(?:ute)?s?|sec(?:ond)?s?)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def duration_seconds(value: Any) -> float | None:
    """A GitLab duration (``1h 30m``, ``90 minutes``, ``3600``) in seconds; None when it
    cannot be read."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text.isdigit():
        return float(text)
    parts = _DURATION.findall(text)
    if not parts:
        return None
    return sum(float(n) * _UNITS[unit[0]] for n, unit in parts)


# --------------------------------------------------------------------------- the file
def parse_pipeline(
    text: str,
    path: str,
    read: loader.ReadFile | None = None,
    files: Callable[[], list[str]] | None = None,
) -> Pipeline:
    """The pipeline of a ``.gitlab-ci.yml`` (InvalidWorkflowError when it is invalid)."""
    notes: list[str] = []

    def no_file(name: str) -> str:
        raise InvalidWorkflowError(path, None, f"include: cannot read {name}")

    raw = loader.load(text, path)
    raw = loader.resolve_includes(raw, path, read or no_file, files or list, notes)
    raw = loader.resolve_references(raw, raw, path)
    stages = _stages(raw.get("stages", raw.get("types")), path)
    defaults = _defaults(raw, path, notes)
    workflow = raw.get("workflow")
    rules = workflow.get("rules") if isinstance(workflow, dict) else None
    jobs: list[GitLabJob] = []
    for key, body in raw.items():
        name = str(key)
        if name in RESERVED or name.startswith("."):
            continue
        if not isinstance(body, dict):
            notes.append(f"{name}: not a job (not a mapping); ignored")
            continue
        merged = loader.resolve_extends(raw, name, path)
        jobs.extend(_jobs_of(name, merged, defaults, stages, path))
    if not jobs:
        raise InvalidWorkflowError(
            path, None, "jobs config should contain at least one visible job"
        )
    _check_needs(jobs, path)
    return Pipeline(
        path=path,
        stages=stages,
        variables=variables_of(raw.get("variables"), "variables", path),
        workflow_rules=list(rules) if isinstance(rules, list) else None,
        jobs=jobs,
        notes=notes,
    )


def _stages(value: Any, path: str) -> list[str]:
    if value is None:
        return list(DEFAULT_STAGES)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InvalidWorkflowError(path, None, "stages must be a list of names")
    inner = [s for s in value if s not in (".pre", ".post")]
    return [".pre", *inner, ".post"]


def _defaults(raw: Mapping[str, Any], path: str, notes: list[str]) -> dict[str, Any]:
    out = {
        k: raw[k]
        for k in ("image", "services", "cache", "before_script", "after_script")
        if k in raw
    }
    default = raw.get("default")
    if default is None:
        return out
    if not isinstance(default, dict):
        raise InvalidWorkflowError(path, None, "default must be a mapping")
    for key, value in default.items():
        if key in DEFAULT_KEYS:
            out[key] = value
        else:
            notes.append(f"default: {key} is not a default keyword; ignored")
    return out


def _inherited(merged: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The job with what it inherits from the defaults (``inherit: default:`` honoured)."""
    inherit = merged.get("inherit") if isinstance(merged.get("inherit"), dict) else {}
    allowed = inherit.get("default", True) if isinstance(inherit, dict) else True
    out = dict(merged)
    for key, value in defaults.items():
        wanted = allowed is True or (isinstance(allowed, list) and key in allowed)
        if wanted and key not in out:
            out[key] = value
    return out


def _image(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name")
    return None if value is None else str(value)


def _allow_failure(value: Any, where: str, path: str) -> bool | list[int]:
    if isinstance(value, dict):
        codes = value.get("exit_codes")
        codes = codes if isinstance(codes, list) else [codes]
        try:
            return [int(c) for c in codes]
        except (TypeError, ValueError):
            raise InvalidWorkflowError(path, None, f"{where}: exit_codes must be numbers") from None
    return bool(value)


def _needs(value: Any, where: str, path: str, notes: list[str]) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidWorkflowError(path, None, f"{where}: needs must be a list")
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and "job" in item:
            out.append(str(item["job"]) + (OPTIONAL if item.get("optional") is True else ""))
        elif isinstance(item, dict) and "pipeline" in item:
            notes.append(f"needs: a job of pipeline {item['pipeline']} is not replayed")
        else:
            raise InvalidWorkflowError(path, None, f"{where}: needs entry {item!r} is invalid")
    return out


def _notes_for(merged: Mapping[str, Any]) -> list[str]:
    notes = []
    for key in merged:
        if key in INTERPRETED:
            continue
        if key in NOT_REPLAYED:
            notes.append(f"{key}: not replayed locally; ignored")
        elif key not in ("trigger", "run"):
            notes.append(f"{key}: unknown keyword; ignored")
    return notes


def _jobs_of(
    name: str,
    merged: dict[str, Any],
    defaults: Mapping[str, Any],
    stages: list[str],
    path: str,
) -> list[GitLabJob]:
    job = _inherited(merged, defaults)
    stage = str(job.get("stage") or "test")
    if stage not in stages:
        raise InvalidWorkflowError(
            path,
            None,
            f"{name} job: chosen stage {stage} does not exist; available stages "
            f"are {', '.join(stages)}",
        )
    when = str(job.get("when") or "on_success")
    if when not in WHEN_VALUES:
        raise InvalidWorkflowError(path, None, f"{name} job: when {when!r} is not known")
    notes = _notes_for(job)
    spec = GitLabJob(
        name=name,
        base=name,
        stage=stage,
        script=commands(job.get("script"), f"{name} job", path),
        before_script=commands(job.get("before_script"), f"{name} job", path),
        after_script=commands(job.get("after_script"), f"{name} job", path),
        variables=variables_of(job.get("variables"), f"{name} job", path),
        image=_image(job.get("image")),
        services=list(job["services"]) if isinstance(job.get("services"), list) else [],
        needs=_needs(job.get("needs"), f"{name} job", path, notes),
        when=when,
        allow_failure=_allow_failure(job.get("allow_failure", when == "manual"), name, path),
        rules=list(job["rules"]) if isinstance(job.get("rules"), list) else None,
        only=job.get("only"),
        except_=job.get("except"),
        timeout=duration_seconds(job.get("timeout")),
        inherit_variables=_inherit_variables(job),
        notes=notes,
    )
    if "trigger" in job:
        spec.not_replayable = "a trigger job starts another pipeline"
    elif "run" in job and not spec.script:
        spec.not_replayable = "CI/CD steps (run:) are not replayed"
    elif not spec.script:
        raise InvalidWorkflowError(path, None, f"{name} job: script can't be blank")
    return expand_parallel(spec, job.get("parallel"), path)


def _inherit_variables(job: Mapping[str, Any]) -> bool | list[str]:
    inherit = job.get("inherit")
    if not isinstance(inherit, dict):
        return True
    value = inherit.get("variables", True)
    return [str(v) for v in value] if isinstance(value, list) else bool(value)


# --------------------------------------------------------------------------- parallel
def expand_parallel(job: GitLabJob, parallel: Any, path: str) -> list[GitLabJob]:
    """The instances of a ``parallel: N`` or ``parallel: matrix:`` job, named as GitLab
    names them, each with ``CI_NODE_INDEX``/``CI_NODE_TOTAL`` and its matrix variables."""
    if parallel is None:
        return [job]
    if isinstance(parallel, int) and not isinstance(parallel, bool):
        if not 1 <= parallel <= 200:
            raise InvalidWorkflowError(path, None, f"{job.name} job: parallel must be 1..200")
        combos: list[dict[str, str]] = [{} for _ in range(parallel)]
        names = [f"{job.name} {i}/{parallel}" for i in range(1, parallel + 1)]
    elif isinstance(parallel, dict) and isinstance(parallel.get("matrix"), list):
        combos = _matrix(parallel["matrix"], job.name, path)
        names = [f"{job.name}: [{', '.join(c.values())}]" for c in combos]
    else:
        raise InvalidWorkflowError(path, None, f"{job.name} job: parallel is invalid")
    out = []
    for index, (name, combo) in enumerate(zip(names, combos, strict=True), start=1):
        variables = {**job.variables, **combo}
        variables["CI_NODE_INDEX"] = str(index)
        variables["CI_NODE_TOTAL"] = str(len(combos))
        out.append(
            GitLabJob(
                **{**job.__dict__, "name": name, "variables": variables, "matrix": combo},
            )
        )
    return out


def _matrix(entries: list[Any], name: str, path: str) -> list[dict[str, str]]:
    combos: list[dict[str, str]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidWorkflowError(path, None, f"{name} job: a matrix entry must be a mapping")
        keys = [str(k) for k in entry]
        values = [
            [as_text(v) for v in val] if isinstance(val, list) else [as_text(val)]
            for val in entry.values()
        ]
        for product in itertools.product(*values):
            combos.append(dict(zip(keys, product, strict=True)))
    if not combos or len(combos) > 200:
        raise InvalidWorkflowError(path, None, f"{name} job: a matrix gives 1..200 jobs")
    return combos


def _check_needs(jobs: list[GitLabJob], path: str) -> None:
    """Every need names a job; an ``optional: true`` need of no job is dropped."""
    bases = {j.base for j in jobs} | {j.name for j in jobs}
    for job in jobs:
        if job.needs is None:
            continue
        kept = []
        for need in job.needs:
            name = need.removesuffix(OPTIONAL)
            if name in bases:
                kept.append(name)
            elif need == name:
                raise InvalidWorkflowError(path, None, f"{job.base} job: undefined need: {need}")
        job.needs = kept
