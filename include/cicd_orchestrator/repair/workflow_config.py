"""Configuration repairs of GitHub Actions workflows.

- Deprecated or removed action versions move to the supported major version (a curated table,
  :data:`SUPPORTED_ACTIONS`); only the version of the ``uses:`` line changes, the rest of the
  workflow stays byte-for-byte as it was (the text is edited line by line, never re-dumped).
- An invalid workflow is reported with its file, line and the parser's message.
- A missing secret or an insufficient token permission is escalated naming exactly what the
  workflow needs and where a person sets it.
- A ``run:`` step that refers to a path that does not exist is reported; when exactly one file
  of that name exists elsewhere in the tree, the one-line correction is proposed (low
  confidence: validation decides).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.repair.workspace import Workspace

log = logging.getLogger(__name__)

WORKFLOW_DIR = ".github/workflows"
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


# --------------------------------------------------------------------------- curated data
@dataclass(frozen=True)
class ActionMajor:
    """The supported major version of an action; majors below ``deprecated_below`` are moved."""

    supported: int
    deprecated_below: int | None = None
    companions: tuple[str, ...] = ()
    note: str = ""

    @property
    def floor(self) -> int:
        return self.deprecated_below or self.supported


_ARTIFACT_NOTE = (
    "artifacts of v4 are immutable: two uploads of the same name in one run fail, and "
    "upload-artifact and download-artifact must both be v4"
)

SUPPORTED_ACTIONS: dict[str, ActionMajor] = {
    "actions/checkout": ActionMajor(4),
    "actions/upload-artifact": ActionMajor(4, None, ("actions/download-artifact",), _ARTIFACT_NOTE),
    "actions/download-artifact": ActionMajor(4, None, ("actions/upload-artifact",), _ARTIFACT_NOTE),
    "actions/cache": ActionMajor(4),
    "actions/setup-python": ActionMajor(5),
    "actions/setup-node": ActionMajor(4),
    "actions/setup-java": ActionMajor(4),
    "actions/setup-go": ActionMajor(5),
    "actions/setup-dotnet": ActionMajor(4),
    "actions/github-script": ActionMajor(7),
    "actions/upload-pages-artifact": ActionMajor(3),
    "actions/configure-pages": ActionMajor(5),
    "actions/deploy-pages": ActionMajor(4),
    "actions/labeler": ActionMajor(5),
    "actions/stale": ActionMajor(9),
    "actions/dependency-review-action": ActionMajor(4),
    "github/codeql-action": ActionMajor(3),
    "docker/setup-buildx-action": ActionMajor(3),
    "docker/setup-qemu-action": ActionMajor(3),
    "docker/login-action": ActionMajor(3),
    "docker/metadata-action": ActionMajor(5),
    "docker/build-push-action": ActionMajor(6, deprecated_below=5),
}

_USES = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?uses:\s*[\"']?)(?P<action>[\w.-]+/[\w.-]+)(?P<sub>/[\w./-]*)?"
    r"@(?P<ref>[\w.-]+)"
)
_ACTION_REF = re.compile(r"`?(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]*)?(?:@|: ?)(?P<ref>v[\w.]+)")
_MAJOR = re.compile(r"^v(?P<major>\d+)(?:\.\d+)*$")


# --------------------------------------------------------------------------- workflows
def workflow_files(root: Path) -> list[str]:
    """The workflow files (and local composite actions) of a checkout, repository-relative."""
    found = [
        *sorted((root / WORKFLOW_DIR).glob("*.yml")),
        *sorted((root / WORKFLOW_DIR).glob("*.yaml")),
        *sorted((root / ".github" / "actions").glob("**/action.y*ml")),
    ]
    return [p.relative_to(root).as_posix() for p in found if p.is_file()]


def read_lines(path: Path) -> list[str]:
    """The file's lines with their own line endings (so a rewrite keeps every other byte)."""
    return path.read_bytes().decode("utf-8", errors="surrogateescape").splitlines(keepends=True)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_bytes("".join(lines).encode("utf-8", errors="surrogateescape"))


def matching_failures(
    failures: Iterable[Failure],
    categories: frozenset[FailureCategory],
    recipes: frozenset[str] = frozenset(),
    patterns: frozenset[str] = frozenset(),
) -> list[Failure]:
    """Root failures of these categories whose recipe or pattern is one of those given."""
    return [
        f
        for f in failures
        if f.root_cause
        and f.category in categories
        and (f.recipe in recipes or (f.pattern or "") in patterns)
    ]


@dataclass
class JobBlock:
    """The lines of one job of a workflow file (1-based inclusive), with its parsed form."""

    path: str
    first: int
    last: int
    lines: list[str]
    key: str | None = None
    raw: dict[str, Any] | None = None
    spec: Any = None  # ci.local.workflow.JobSpec when the workflow parses

    def numbered(self) -> Iterator[tuple[int, str]]:
        for number in range(self.first, self.last + 1):
            yield number, self.lines[number - 1].rstrip("\r\n")

    @property
    def text(self) -> str:
        return "".join(self.lines[self.first - 1 : self.last])


def _parse(path: str, text: str) -> Any:
    from cicd_orchestrator.ci.local.workflow import parse_workflow
    from cicd_orchestrator.exceptions import WorkflowError

    try:
        return parse_workflow(text, path)
    except WorkflowError:
        return None


def match_job(jobs: dict[str, Any], job: str) -> str | None:
    """The key of the job named ``job`` (key, display name, matrix or reusable forms)."""
    names = [job, re.sub(r"\s*\(.*\)$", "", job), job.split(" / ")[0].strip()]
    for name in names:
        for key, spec in jobs.items():
            display = getattr(spec, "name", None) or ""
            if name in (key, display):
                return str(key)
            prefix = display.split("${{")[0].strip()
            if "${{" in display and prefix and name.startswith(prefix):
                return str(key)
    return None


def _block_end(lines: list[str], first: int, starts: list[int]) -> int:
    later = [s for s in starts if s > first]
    end = (min(later) - 1) if later else len(lines)
    for number in range(first + 1, end + 1):
        line = lines[number - 1]
        if line.strip() and not line.startswith((" ", "\t", "#")):
            return number - 1  # a top-level key after the jobs
    return end


def job_blocks(root: Path, workflow_path: str, job: str) -> list[JobBlock]:
    """The failing job's lines in its workflow; the whole file(s) when it cannot be found."""
    paths = [workflow_path] if workflow_path and (root / workflow_path).is_file() else []
    paths = paths or workflow_files(root)
    blocks: list[JobBlock] = []
    whole: list[JobBlock] = []
    for rel in paths:
        lines = read_lines(root / rel)
        whole.append(JobBlock(rel, 1, len(lines), lines))
        wf = _parse(rel, "".join(lines))
        if wf is None:
            continue
        key = match_job(wf.jobs, job)
        if key is None or not wf.jobs[key].line:
            continue
        spec = wf.jobs[key]
        starts = [j.line for j in wf.jobs.values() if j.line]
        raw = _raw_jobs("".join(lines)).get(key)
        blocks.append(
            JobBlock(rel, spec.line, _block_end(lines, spec.line, starts), lines, key, raw, spec)
        )
    return blocks or whole


def failing_job_text(root: Path, workflow_path: str, job: str) -> str:
    """The text of the failing job in its workflow (all workflows when it is not found)."""
    return "\n".join(block.text for block in job_blocks(root, workflow_path, job))


def _raw(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _raw_jobs(text: str) -> dict[str, Any]:
    jobs = _raw(text).get("jobs")
    return (
        {str(k): v for k, v in jobs.items() if isinstance(v, dict)}
        if isinstance(jobs, dict)
        else {}
    )


def _step_at(spec: Any, line: int) -> Any:
    """The step of a parsed job that holds ``line``."""
    found = None
    for step in getattr(spec, "steps", []):
        if step.line and step.line <= line:
            found = step
    return found


def _step_label(step: Any) -> str:
    if step is None:
        return "a step"
    return f"step '{step.name or step.default_name}'"


def _evidence(failures: Iterable[Failure]) -> list[str]:
    return [e for f in failures for e in f.evidence[:3]]


def _lines(failures: Iterable[Failure]) -> list[str]:
    out: list[str] = []
    for failure in failures:
        out.extend(failure.evidence)
        for excerpt in failure.excerpts:
            out.extend(excerpt.text.splitlines())
    return [re.sub(r"^\S+Z\s", "", line) for line in out]


# --------------------------------------------------------------------------- action versions
def _major(ref: str) -> int | None:
    m = _MAJOR.match(ref)
    return int(m.group("major")) if m else None


def upgrade_line(line: str, targets: set[str] | None) -> tuple[str, str | None]:
    """``line`` with a deprecated action version moved to the supported major, and what moved."""
    m = _USES.match(line)
    if not m:
        return line, None
    action, ref = m.group("action"), m.group("ref")
    known = SUPPORTED_ACTIONS.get(action)
    if known is None or (targets is not None and action not in targets):
        return line, None
    major = _major(ref)
    if major is None or major >= known.floor:
        return line, None
    new = f"v{known.supported}"
    return line[: m.start("ref")] + new + line[m.end("ref") :], f"{action} {ref} -> {new}"


def _targets(failures: list[Failure]) -> tuple[set[str], list[tuple[str, str]]]:
    """Actions the failures name (with their version): from captures, then evidence."""
    named: list[tuple[str, str]] = []
    for failure in failures:
        action = failure.captures.get("action")
        if action:
            named.append((action, failure.captures.get("version", "")))
            continue
        for line in _lines([failure]):
            for m in _ACTION_REF.finditer(line):
                if "/" in m.group("action") and not m.group("action").startswith("http"):
                    named.append((m.group("action"), m.group("ref")))
    actions = {a for a, _ in named}
    for action in list(actions):
        known = SUPPORTED_ACTIONS.get(action)
        actions.update(known.companions if known else ())
    return actions, named


class ActionUpgradeFixer(Fixer):
    """Deprecated or removed action majors -> the supported major; nothing else changes."""

    name = "upgrade-action"
    categories = frozenset({FailureCategory.CONFIGURATION})
    recipes = frozenset({"upgrade-action"})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        targets, named = _targets(relevant)
        with ctx.workspace() as ws:
            moved = self._upgrade(ws.path, targets or None)
            renamed = [] if moved else self._rename_unknown(ws.path, named, result)
            for action, version in named:
                if action not in SUPPORTED_ACTIONS and not renamed:
                    result.unrepaired.append(
                        f"{action}@{version or '?'}: no supported major version is known for "
                        "this action; upgrade it by hand"
                    )
            if not moved and not renamed and not result.unrepaired:
                result.unrepaired.append(
                    "no deprecated action version found in the workflows"
                    + (f" for {', '.join(sorted(targets))}" if targets else "")
                )
            self._propose(ws, relevant, moved, renamed, targets, result)
        result.seconds = round(time.monotonic() - start, 3)
        return result

    @staticmethod
    def _upgrade(root: Path, targets: set[str] | None) -> list[str]:
        moved: list[str] = []
        for rel in workflow_files(root):
            lines = read_lines(root / rel)
            changed = False
            for i, line in enumerate(lines):
                new, what = upgrade_line(line, targets)
                if what:
                    lines[i] = new
                    moved.append(f"{rel}:{i + 1}: {what}")
                    changed = True
            if changed:
                write_lines(root / rel, lines)
        return moved

    @staticmethod
    def _rename_unknown(root: Path, named: list[tuple[str, str]], result: FixerResult) -> list[str]:
        """An action name that does not exist but is one typo from a known one."""
        renamed: list[str] = []
        for action, _ in named:
            if action in SUPPORTED_ACTIONS:
                continue
            close = difflib.get_close_matches(action, list(SUPPORTED_ACTIONS), n=2, cutoff=0.85)
            if len(close) != 1:
                continue
            right = close[0]
            floor, supported = SUPPORTED_ACTIONS[right].floor, SUPPORTED_ACTIONS[right].supported
            for rel in workflow_files(root):
                lines = read_lines(root / rel)
                before = len(renamed)
                for i, line in enumerate(lines):
                    m = _USES.match(line)
                    if not m or m.group("action") != action:
                        continue
                    major = _major(m.group("ref"))
                    ok = major is not None and floor <= major <= supported
                    ref = m.group("ref") if ok else f"v{supported}"
                    new = f"{right}{m.group('sub') or ''}@{ref}"
                    lines[i] = line[: m.start("action")] + new + line[m.end("ref") :]
                    renamed.append(f"{rel}:{i + 1}: {action} -> {right}@{ref}")
                if len(renamed) > before:
                    write_lines(root / rel, lines)
        return renamed

    def _propose(
        self,
        ws: Workspace,
        failures: list[Failure],
        moved: list[str],
        renamed: list[str],
        targets: set[str],
        result: FixerResult,
    ) -> None:
        patch = ws.diff()
        if not patch:
            return
        files = ws.changed_files()
        notes = sorted(
            {SUPPORTED_ACTIONS[a].note for a in targets if a in SUPPORTED_ACTIONS} - {""}
        )
        what = "; ".join((moved + renamed)[:10])
        result.repairs.append(
            Repair(
                fixer=self.name,
                kind=RepairKind.CHANGE,
                category=FailureCategory.CONFIGURATION,
                description=f"move deprecated action versions to the supported major: {what}",
                jobs=sorted({f.job for f in failures}),
                patch=patch,
                files=files,
                commit_message="Move deprecated GitHub Actions to their supported major version",
                confidence=0.9 if moved else 0.5,
                evidence=_evidence(failures),
                notes=[*moved, *renamed, *notes],
            )
        )


# --------------------------------------------------------------------------- invalid workflow
_INVALID = (
    re.compile(
        r"Invalid workflow file:?\s*(?P<file>[\w./-]+\.ya?ml)(?:#L(?P<line>\d+))?"
        r"(?::\s*(?P<msg>.+))?"
    ),
    re.compile(
        r"The workflow is not valid\.\s*(?P<file>[\w./-]+\.ya?ml)\s*"
        r"(?:\(Line: (?P<line>\d+), Col: (?P<col>\d+)\))?:?\s*(?P<msg>.*)"
    ),
)


def yaml_problem(text: str) -> tuple[int | None, int | None, str] | None:
    """Where and why PyYAML cannot parse ``text`` (1-based line and column), or None."""
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        return line, col, ", ".join(parts) or str(exc)
    except yaml.YAMLError as exc:
        return None, None, str(exc).replace("\n", " ")
    return None


@dataclass
class InvalidWorkflow:
    file: str
    line: int | None = None
    message: str = ""


def invalid_workflows(failures: list[Failure], default: str) -> list[InvalidWorkflow]:
    """The files, lines and messages the failures' logs give for invalid workflows."""
    found: dict[str, InvalidWorkflow] = {}
    for failure in failures:
        for text in _lines([failure]):
            for rx in _INVALID:
                m = rx.search(text)
                if not m:
                    continue
                entry = found.setdefault(m["file"], InvalidWorkflow(m["file"]))
                entry.line = entry.line or (int(m["line"]) if m["line"] else None)
                entry.message = entry.message or (m["msg"] or "").strip()
        file = failure.captures.get("file")
        if file and file not in found:
            line = failure.captures.get("line")
            found[file] = InvalidWorkflow(file, int(line) if line and line.isdigit() else None)
    if not found and default:
        found[default] = InvalidWorkflow(default)
    return list(found.values())


class InvalidWorkflowFixer(Fixer):
    """An invalid workflow is reported with file, line and the parser's message (no change)."""

    name = "invalid-workflow"
    categories = frozenset({FailureCategory.CONFIGURATION})
    patterns = frozenset({"gha-invalid-workflow"})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return matching_failures(failures, self.categories, patterns=self.patterns)

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        with ctx.workspace() as ws:
            for entry in invalid_workflows(relevant, ctx.workflow_path):
                result.unrepaired.append(self._describe(ws.path, entry))
        result.seconds = round(time.monotonic() - start, 3)
        return result

    @staticmethod
    def _describe(root: Path, entry: InvalidWorkflow) -> str:
        path = root / entry.file
        if not path.is_file():
            return (
                f"invalid workflow {entry.file}: {entry.message or 'see the log'} (file not found)"
            )
        lines = read_lines(path)
        problem = yaml_problem("".join(lines))
        parser = ""
        line = entry.line
        if problem:
            p_line, p_col, p_msg = problem
            where = f"line {p_line}, column {p_col}" if p_line else "unknown position"
            parser = f"; YAML parser: {p_msg} ({where})"
            line = line or p_line
        elif not entry.message:
            wf_error = _structure_error(entry.file, "".join(lines))
            if wf_error:
                line = line or wf_error[0]
                parser = f"; workflow parser: {wf_error[1]}"
        source = lines[line - 1].rstrip("\r\n").strip() if line and line <= len(lines) else ""
        shown = f": `{source}`" if source else ""
        message = entry.message or "the workflow is not valid"
        return (
            f"invalid workflow {entry.file}:{line or '?'}: {message}{parser}{shown}; "
            "fix the workflow file by hand (no automatic change)"
        )


def _structure_error(path: str, text: str) -> tuple[int | None, str] | None:
    from cicd_orchestrator.ci.local.workflow import InvalidWorkflowError, parse_workflow

    try:
        parse_workflow(text, path)
    except InvalidWorkflowError as exc:
        return exc.line, exc.message
    return None


# --------------------------------------------------------------------------- secrets, permissions
_SECRET_REF = re.compile(
    r"secrets\s*(?:\.\s*(?P<dot>[A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"](?P<idx>[A-Za-z_][A-Za-z0-9_]*)['\"]\s*\])"
)
_AUTOMATIC = frozenset({"GITHUB_TOKEN"})

# (what the log or the failing step shows, the token permission it needs)
PERMISSION_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"create or update workflow|`?workflows`? (?:scope|permission)", re.I),
        "workflows",
    ),
    (re.compile(r"id-token|ACTIONS_ID_TOKEN_REQUEST|OIDC", re.I), "id-token: write"),
    (re.compile(r"ghcr\.io|docker push|packages?\b|container registry", re.I), "packages: write"),
    (re.compile(r"codeql|sarif|security[- ]events|code scanning", re.I), "security-events: write"),
    (re.compile(r"deploy-pages|upload-pages|github pages|\bpages\b", re.I), "pages: write"),
    (re.compile(r"pull[-_ ]?requests?|\bpulls\b|\bPR\b", re.I), "pull-requests: write"),
    (re.compile(r"\bissues?\b|createComment|addLabels|\blabels?\b", re.I), "issues: write"),
    (re.compile(r"check[-_ ]?runs?|\bchecks\b", re.I), "checks: write"),
    (re.compile(r"\bstatus(?:es)?\b", re.I), "statuses: write"),
    (re.compile(r"deployments?\b", re.I), "deployments: write"),
    (
        re.compile(r"git push|Permission to \S+ denied|contents|releases?|\btags?\b", re.I),
        "contents: write",
    ),
)


def secret_references(block: JobBlock) -> dict[str, list[int]]:
    """Secret names the job reads (``${{ secrets.NAME }}``) and the lines that read them."""
    refs: dict[str, list[int]] = {}
    for number, line in block.numbered():
        if line.lstrip().startswith("#"):
            continue
        for m in _SECRET_REF.finditer(line):
            name = m["dot"] or m["idx"]
            if name not in _AUTOMATIC:
                refs.setdefault(name, []).append(number)
    return refs


def _environment(block: JobBlock) -> str | None:
    env = (block.raw or {}).get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return str(env) if env else None


class MissingAccessFixer(Fixer):
    """A missing secret or token permission: escalated naming exactly what the workflow needs."""

    name = "missing-access"
    categories = frozenset({FailureCategory.CONFIGURATION})
    recipes = frozenset({"escalate-secret", "escalate-permission"})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        with ctx.workspace() as ws:
            for failure in relevant:
                blocks = job_blocks(ws.path, ctx.workflow_path, failure.job)
                if failure.recipe == "escalate-secret":
                    result.unrepaired.extend(self._secret(failure, blocks))
                else:
                    result.unrepaired.extend(self._permission(failure, blocks))
        result.seconds = round(time.monotonic() - start, 3)
        return result

    @staticmethod
    def _secret(failure: Failure, blocks: list[JobBlock]) -> list[str]:
        captured = failure.captures.get("secret", "")
        refs: dict[str, list[str]] = {}
        environment = None
        for block in blocks:
            environment = environment or _environment(block)
            for name, numbers in secret_references(block).items():
                refs.setdefault(name, []).extend(f"{block.path}:{n}" for n in numbers)
        missing = [captured] if captured in refs else []
        if captured and not missing:
            # an action input or an env variable fed from a secret of another name
            for block in blocks:
                for _, line in block.numbered():
                    if re.search(rf"\b{re.escape(captured)}\b\s*:", line):
                        missing += [m["dot"] or m["idx"] for m in _SECRET_REF.finditer(line)]
        missing = missing or ([captured] if captured else sorted(refs))
        where = (
            f"the environment '{environment}' (Settings > Environments > {environment} > "
            "Environment secrets)"
            if environment
            else "the repository (Settings > Secrets and variables > Actions > "
            "New repository secret, or `gh secret set {name}`)"
        )
        if not missing:
            return [
                f"job {failure.job}: a secret is missing but the workflow references none by "
                f"name; evidence: {failure.message}"
            ]
        out = []
        for name in dict.fromkeys(missing):
            used = ", ".join(refs.get(name, [])) or "not referenced in the workflow"
            out.append(
                f"secret {name} is missing or empty: job {failure.job} needs it ({used}); "
                f"a person with admin rights must add it to {where.format(name=name)}"
            )
        others = sorted(set(refs) - set(missing))
        if others:
            out.append(f"job {failure.job} also reads the secret(s) {', '.join(others)}")
        return out

    @staticmethod
    def _permission(failure: Failure, blocks: list[JobBlock]) -> list[str]:
        step_text = ""
        for block in blocks:
            for step in getattr(block.spec, "steps", []):
                if failure.step and failure.step in (step.name, step.default_name):
                    step_text += f"\n{step.uses or ''}\n{step.run or ''}\n{step.with_}"
        evidence = "\n".join([failure.message, *_lines([failure])])
        scope, why = _scope(evidence) or _scope(step_text) or (None, "")
        if scope == "workflows":
            return [
                f"job {failure.job}: the token may not change workflow files; a person must "
                "give the job a GitHub App or personal token with the `workflows` permission "
                "(GITHUB_TOKEN cannot be granted it)"
            ]
        need = (
            f"`{scope}` (inferred from '{why}')"
            if scope
            else "the permission the failing step needs"
        )
        keyed = [b for b in blocks if b.key]
        if not keyed:
            return [
                f"job {failure.job}: the CI token lacks a permission: grant {need} in the "
                "workflow's `permissions:` (or Settings > Actions > General > Workflow "
                "permissions)"
            ]
        return [_permission_advice(failure, keyed[0], need)]


def _scope(text: str) -> tuple[str, str] | None:
    """The permission the text points at, and the words that point at it."""
    for rx, scope in PERMISSION_HINTS:
        m = rx.search(text)
        if m:
            return scope, m.group(0)
    return None


def _permission_advice(failure: Failure, block: JobBlock, need: str) -> str:
    job_perms = (block.raw or {}).get("permissions")
    top = _raw("".join(block.lines)).get("permissions")
    if job_perms is not None:
        current = f"its permissions: block (line {block.first}) grants {job_perms!r}"
    elif top is not None:
        current = f"the workflow's top-level permissions: grant {top!r}"
    else:
        current = "the workflow sets no permissions: (the repository default applies)"
    return (
        f"job {failure.job} needs {need} for its token: add it under "
        f"jobs.{block.key}.permissions in {block.path} ({current}; a job-level block replaces "
        "the workflow's); if the repository restricts the GITHUB_TOKEN, an admin must allow "
        "it in Settings > Actions > General > Workflow permissions"
    )


# --------------------------------------------------------------------------- wrong path
_TOKEN = re.compile(r"(?<![\w./-])(?P<tok>(?:\./)?[\w.-]+(?:/[\w.-]+)*)")


@dataclass
class PathReference:
    block: JobBlock
    line: int
    token: str
    missing: str
    workdir: str


def _workdir(block: JobBlock, step: Any) -> str:
    spec = block.spec
    return str(
        getattr(step, "working_directory", None) or getattr(spec, "working_directory", None) or ""
    )


def find_reference(root: Path, blocks: list[JobBlock], missing: str) -> PathReference | None:
    """The workflow line whose path token names ``missing`` and does not exist."""
    base = os.path.basename(missing.rstrip("/"))
    for block in blocks:
        for number, line in block.numbered():
            if base not in line or line.lstrip().startswith("#"):
                continue
            step = _step_at(block.spec, number)
            workdir = _workdir(block, step)
            for m in _TOKEN.finditer(line):
                token = m["tok"]
                clean = token.removeprefix("./")
                if os.path.basename(clean) != base:
                    continue
                if missing != clean and not missing.endswith("/" + clean):
                    continue
                if not (root / workdir / clean).exists():
                    return PathReference(block, number, token, clean, workdir)
    return None


def same_name_files(root: Path, name: str) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        if name in filenames:
            out.append(Path(dirpath) / name)
    return out


class WorkflowPathFixer(Fixer):
    """A step refers to a path that does not exist: reported; a unique same-name file is
    proposed as the one-line correction (low confidence)."""

    name = "workflow-path"
    categories = frozenset({FailureCategory.CONFIGURATION})
    patterns = frozenset({"workflow-wrong-path"})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return matching_failures(failures, self.categories, patterns=self.patterns)

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        with ctx.workspace() as ws:
            for failure in relevant:
                self._one(ws, ctx, failure, result)
        result.seconds = round(time.monotonic() - start, 3)
        return result

    def _one(
        self, ws: Workspace, ctx: RepairContext, failure: Failure, result: FixerResult
    ) -> None:
        missing = failure.captures.get("file", "")
        if not missing:
            result.unrepaired.append(f"job {failure.job}: a path is missing: {failure.message}")
            return
        blocks = job_blocks(ws.path, ctx.workflow_path, failure.job)
        ref = find_reference(ws.path, blocks, missing)
        if ref is None:
            result.unrepaired.append(
                f"job {failure.job}: {missing} does not exist and no workflow line of the job "
                "refers to it by that path"
            )
            return
        step = _step_label(_step_at(ref.block.spec, ref.line))
        where = f"{ref.block.path}:{ref.line}"
        report = f"job {failure.job}, {step} ({where}) refers to {ref.token}, which does not exist"
        found = same_name_files(ws.path, os.path.basename(ref.missing))
        if len(found) != 1:
            also = ", ".join(str(p.relative_to(ws.path)) for p in found[:5])
            result.unrepaired.append(
                report + (f"; files of that name: {also}" if found else "; no file of that name")
            )
            return
        target = Path(os.path.relpath(found[0], ws.path / ref.workdir)).as_posix()
        target = (
            "./" + target if ref.token.startswith("./") and not target.startswith(".") else target
        )
        lines = read_lines(ws.path / ref.block.path)
        old = lines[ref.line - 1]
        lines[ref.line - 1] = re.sub(
            rf"(?<![\w./-]){re.escape(ref.token)}(?![\w/-])", target, old, count=1
        )
        write_lines(ws.path / ref.block.path, lines)
        patch = ws.diff()
        if patch:
            result.repairs.append(
                Repair(
                    fixer=self.name,
                    kind=RepairKind.CHANGE,
                    category=FailureCategory.CONFIGURATION,
                    description=f"{report}; use {target}, the only file of that name",
                    jobs=[failure.job],
                    patch=patch,
                    files=ws.changed_files(),
                    commit_message=f"Point the workflow at {target}",
                    confidence=0.5,
                    evidence=_evidence([failure]),
                    notes=[report],
                )
            )
            ws.git("commit", "--quiet", "-m", f"workflow path {target}")
