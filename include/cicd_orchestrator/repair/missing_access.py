"""A missing secret or an insufficient token permission is escalated, never changed.

The report names exactly what the failing job needs (the secret, the lines that read it and
the environment it belongs to; the permission scope and the words of the log or the step
that point at it) and where a person with admin rights sets it.
"""

from __future__ import annotations

import re

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair.base import RepairContext, WorkspaceFixer, failure_lines
from cicd_orchestrator.repair.workflows import JobBlock, job_blocks, raw_mapping

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


def _secret_names(line: str) -> list[str]:
    return [m["dot"] or m["idx"] for m in _SECRET_REF.finditer(line)]


def secret_references(block: JobBlock) -> dict[str, list[int]]:
    """Secret names the job reads (``${{ secrets.NAME }}``) and the lines that read them."""
    refs: dict[str, list[int]] = {}
    for number, line in block.numbered():
        if line.lstrip().startswith("#"):
            continue
        for name in _secret_names(line):
            if name not in _AUTOMATIC:
                refs.setdefault(name, []).append(number)
    return refs


def _environment(block: JobBlock) -> str | None:
    env = (block.raw or {}).get("environment")
    if isinstance(env, dict):
        env = env.get("name")
    return str(env) if env else None


def _where_secrets_go(environment: str | None) -> str:
    """Where a person adds the secret (``{name}`` stands for its name)."""
    if environment:
        return (
            f"the environment '{environment}' (Settings > Environments > {environment} > "
            "Environment secrets)"
        )
    return (
        "the repository (Settings > Secrets and variables > Actions > "
        "New repository secret, or `gh secret set {name}`)"
    )


def _missing_secrets(
    captured: str, refs: dict[str, list[str]], blocks: list[JobBlock]
) -> list[str]:
    """The secrets behind the failure: the captured one, or the secrets that feed an action
    input or an env variable of that name; every secret the job reads when nothing is known."""
    missing = [captured] if captured in refs else []
    if captured and not missing:
        for block in blocks:
            for _, line in block.numbered():
                if re.search(rf"\b{re.escape(captured)}\b\s*:", line):
                    missing += _secret_names(line)
    return missing or ([captured] if captured else sorted(refs))


def secret_report(failure: Failure, blocks: list[JobBlock]) -> list[str]:
    """What a person must do about the missing secret of ``failure``."""
    refs: dict[str, list[str]] = {}
    environment = None
    for block in blocks:
        environment = environment or _environment(block)
        for name, numbers in secret_references(block).items():
            refs.setdefault(name, []).extend(f"{block.path}:{n}" for n in numbers)
    named = [n for n in failure.captures.get("secrets", "").split(",") if n]
    missing = named or _missing_secrets(failure.captures.get("secret", ""), refs, blocks)
    if not missing:
        return [
            f"job {failure.job}: a secret is missing but the workflow references none by "
            f"name; evidence: {failure.message}"
        ]
    where = _where_secrets_go(environment)
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


def _scope(text: str) -> tuple[str, str] | None:
    """The permission the text points at, and the words that point at it."""
    for rx, scope in PERMISSION_HINTS:
        m = rx.search(text)
        if m:
            return scope, m.group(0)
    return None


def _step_text(failure: Failure, blocks: list[JobBlock]) -> str:
    """What the failing step runs (its action, script and inputs)."""
    text = ""
    for block in blocks:
        for step in getattr(block.spec, "steps", []):
            if failure.step and failure.step in (step.name, step.default_name):
                text += f"\n{step.uses or ''}\n{step.run or ''}\n{step.with_}"
    return text


def _permission_advice(failure: Failure, block: JobBlock, need: str) -> str:
    job_perms = (block.raw or {}).get("permissions")
    top = raw_mapping("".join(block.lines)).get("permissions")
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


def permission_report(failure: Failure, blocks: list[JobBlock]) -> list[str]:
    """What a person must grant the token of ``failure``'s job, and where."""
    evidence = "\n".join([failure.message, *failure_lines([failure])])
    scope, why = _scope(evidence) or _scope(_step_text(failure, blocks)) or (None, "")
    if scope == "workflows":
        return [
            f"job {failure.job}: the token may not change workflow files; a person must "
            "give the job a GitHub App or personal token with the `workflows` permission "
            "(GITHUB_TOKEN cannot be granted it)"
        ]
    need = (
        f"`{scope}` (inferred from '{why}')" if scope else "the permission the failing step needs"
    )
    keyed = [b for b in blocks if b.key]
    if not keyed:
        return [
            f"job {failure.job}: the CI token lacks a permission: grant {need} in the "
            "workflow's `permissions:` (or Settings > Actions > General > Workflow "
            "permissions)"
        ]
    return [_permission_advice(failure, keyed[0], need)]


class MissingAccessFixer(WorkspaceFixer):
    """A missing secret or token permission: escalated naming exactly what the workflow needs."""

    name = "missing-access"
    categories = frozenset({FailureCategory.CONFIGURATION})
    recipes = frozenset({"escalate-secret", "escalate-permission"})

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        for failure in failures:
            blocks = job_blocks(ws.path, ctx.workflow_path, failure.job)
            if failure.recipe == "escalate-secret":
                result.unrepaired.extend(secret_report(failure, blocks))
            else:
                result.unrepaired.extend(permission_report(failure, blocks))
