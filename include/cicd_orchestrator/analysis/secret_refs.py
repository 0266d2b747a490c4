"""Where a workflow reads secrets: the values of a job's steps that name ``secrets.NAME``
(GitHub Actions) or the variables a job's script reads from the project's settings (GitLab
CI), each with the line of the file that reads it. Bad files give nothing, never an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator.actions.workflow import load_yaml
from cicd_orchestrator.exceptions import WorkflowError

#: secrets the CI system provides itself: never "missing"
AUTOMATIC_SECRETS = frozenset({"GITHUB_TOKEN"})

_SECRET_REF = re.compile(
    r"\bsecrets\s*(?:\.\s*(?P<dot>[A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"](?P<idx>[A-Za-z_][A-Za-z0-9_]*)['\"]\s*\])"
)
# GitLab: $NAME or ${NAME} in a script; variables GitLab or the runner define themselves
_SHELL_VAR = re.compile(r"\$\{?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}?")
_PREDEFINED = re.compile(
    r"^(?:CI|GITLAB|RUNNER|FF|DOCKER|KUBERNETES)_|^(?:CI|HOME|PATH|PWD|USER|SHELL|HOSTNAME|"
    r"OLDPWD|TMPDIR|LANG|TERM|UID|GID|RANDOM|SECONDS|LINENO|IFS|OPTARG|OPTIND|BASH\w*)$"
)
_GITLAB_SCRIPTS = ("before_script", "script", "after_script")


@dataclass(frozen=True)
class SecretRef:
    """A value of the workflow that reads secrets: where it is and how the log shows it."""

    names: tuple[str, ...]
    template: str  # the value (one line) as the workflow writes it
    kind: str  # env, with, run (GitHub) or script (GitLab)
    key: str | None  # the env variable or action input the value goes to
    where: str  # path:line of the workflow
    header: str | None = None  # the group header of the step's log section (GitHub)


def secret_names(text: str) -> tuple[str, ...]:
    """The secrets ``text`` names (``secrets.NAME``, ``secrets['NAME']``), automatic ones
    left out."""
    names = [m["dot"] or m["idx"] for m in _SECRET_REF.finditer(text)]
    return tuple(dict.fromkeys(n for n in names if n.upper() not in AUTOMATIC_SECRETS))


def _line_of(lines: list[str], start: int | None, needle: str) -> int | None:
    """The first line (1-based) at or after ``start`` that holds ``needle``."""
    begin = max((start or 1) - 1, 0)
    for number in range(begin, len(lines)):
        if needle in lines[number]:
            return number + 1
    return None


@dataclass
class _Reader:
    """Walks one workflow file, turning values that read secrets into :class:`SecretRef`."""

    path: str
    lines: list[str]

    def where(self, start: int | None, needle: str) -> str:
        line = _line_of(self.lines, start, needle)
        return f"{self.path}:{line}" if line else self.path

    def mapping(self, parent: Any, key: str, kind: str, header: str | None) -> list[SecretRef]:
        value = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(value, dict):
            return []
        start = parent.line_of(key) if hasattr(parent, "line_of") else None
        out = []
        for name, raw in value.items():
            text = str(raw) if raw is not None else ""
            first = text.splitlines()[0] if text.strip() else ""
            names = secret_names(first)
            if names:
                where = self.where(start, first.strip() or str(name))
                out.append(SecretRef(names, first, kind, str(name), where, header))
        return out

    def script(
        self, text: str, start: int | None, kind: str, header: str | None
    ) -> list[SecretRef]:
        out = []
        for line in text.splitlines():
            names = secret_names(line)
            if names:
                where = self.where(start, line.strip())
                out.append(SecretRef(names, line.strip(), kind, None, where, header))
        return out


def _job_bodies(jobs: Any, job: str | None) -> list[tuple[str, Any]]:
    """The job of ``jobs`` that GitHub or GitLab shows as ``job`` (its key, its name, or
    its name with a matrix suffix), with its key; every job when ``job`` is None."""
    if not isinstance(jobs, dict):
        return []
    out = []
    for key, body in jobs.items():
        if not isinstance(body, dict):
            continue
        labels = {str(key), str(body.get("name") or key)}
        if job is None or any(job == lb or job.startswith(lb + " (") for lb in labels):
            out.append((str(key), body))
    return out if job is None else out[:1]


def step_header(step: Mapping[str, Any]) -> str:
    """The header of a step's log section: ``Run <first line of run>`` or ``Run <uses>``."""
    run = step.get("run")
    if run is not None:
        first = next((ln for ln in str(run).splitlines() if ln.strip()), "")
        return f"Run {first.strip()}"
    return f"Run {step.get('uses') or ''}".strip()


def _steps(body: Any, step: str | None, strict: bool) -> list[Mapping[str, Any]]:
    steps: list[Mapping[str, Any]] = [s for s in (body.get("steps") or []) if isinstance(s, dict)]
    if step:
        named = [s for s in steps if step in (s.get("name"), step_header(s))]
        if named or strict:
            return named
    return [] if strict else steps


def github_refs(
    text: str, path: str, job: str | None, step: str | None = None, *, strict: bool = False
) -> list[SecretRef]:
    """The values that read secrets in the ``job`` of a GitHub Actions workflow (every job
    when None), for its step ``step`` (every step when it is not known or not found, unless
    ``strict``); none when the file does not parse."""
    try:
        data = load_yaml(text, path)
    except WorkflowError:
        return []
    if not isinstance(data, dict):
        return []
    reader = _Reader(path, text.splitlines())
    out: list[SecretRef] = []
    for _, body in _job_bodies(data.get("jobs"), job):
        for spec in _steps(body, step, strict):
            header = step_header(spec)
            out += reader.mapping(data, "env", "env", header)
            out += reader.mapping(body, "env", "env", header)
            out += reader.mapping(spec, "env", "env", header)
            out += reader.mapping(spec, "with", "with", header)
            start = getattr(spec, "line", None)
            out += reader.script(str(spec.get("run") or ""), start, "run", header)
    return out


def _gitlab_defined(data: Mapping[str, Any], body: Mapping[str, Any]) -> set[str]:
    defined: set[str] = set()
    for scope in (data, body):
        variables = scope.get("variables")
        if isinstance(variables, dict):
            defined |= {str(k) for k in variables}
    return defined


def gitlab_refs(text: str, path: str, job: str | None) -> list[SecretRef]:
    """The variables the ``job`` of a ``.gitlab-ci.yml`` (every job when None) reads from
    the project's settings: referenced in its scripts, defined neither in the file nor by
    GitLab or the runner."""
    try:
        data = load_yaml(text, path)
    except WorkflowError:
        return []
    if not isinstance(data, dict):
        return []
    lines = text.splitlines()
    out: list[SecretRef] = []
    for key, body in _job_bodies(data, job):
        if key.startswith(".") or not isinstance(body.get("script"), (list, str)):
            continue  # a hidden job (a template) or a keyword such as variables
        start = data.line_of(key) if hasattr(data, "line_of") else None
        out += _gitlab_job_refs(path, lines, start, _gitlab_defined(data, body), body)
    return out


def _gitlab_job_refs(
    path: str, lines: list[str], start: int | None, defined: set[str], body: Mapping[str, Any]
) -> list[SecretRef]:
    out: list[SecretRef] = []
    for key in _GITLAB_SCRIPTS:
        script = body.get(key) or []
        for command in script if isinstance(script, list) else [script]:
            for m in _SHELL_VAR.finditer(str(command)):
                name = m["name"]
                if name in defined or _PREDEFINED.search(name):
                    continue
                line = _line_of(lines, start, m.group(0))
                where = f"{path}:{line}" if line else path
                out.append(SecretRef((name,), str(command), "script", name, where))
    return out


def is_gitlab(path: str) -> bool:
    """True for a GitLab CI file (``.gitlab-ci.yml``)."""
    return path.rsplit("/", 1)[-1].endswith("gitlab-ci.yml")


def workflow_refs(
    text: str, path: str, job: str | None, step: str | None = None, *, strict: bool = False
) -> list[SecretRef]:
    """:func:`gitlab_refs` for a ``.gitlab-ci.yml``, :func:`github_refs` for anything else."""
    if is_gitlab(path):
        return gitlab_refs(text, path, job)
    return github_refs(text, path, job, step, strict=strict)
