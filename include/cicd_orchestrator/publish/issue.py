"""The escalation issue: the full context package a person needs to take over (its text made
safe and cut under the hosting's limit: ``publish.text``)."""

from __future__ import annotations

import contextlib

from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.constants import RepairKind
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.git import git
from cicd_orchestrator.models import Published, SessionState
from cicd_orchestrator.publish.markers import key_of, marker
from cicd_orchestrator.publish.owners import assign_owners
from cicd_orchestrator.publish.text import fence, safe_body, safe_title
from cicd_orchestrator.redact import redact
from cicd_orchestrator.session import primary_category

LABELS = ["ci-failure", "automated"]


def issue_title(state: SessionState) -> str:
    jobs = ", ".join(sorted({f.job for f in state.failures if f.root_cause})) or "CI"
    return safe_title(
        f"CI failure needs a person: {jobs} on {state.branch} ({state.head_sha[:10]})"
    )


def issue_body(
    state: SessionState, culprit_diff: str = "", workflow_paths: list[str] | None = None
) -> str:
    category = primary_category(state)
    lines = [
        f"The CI run {state.pipeline_id} of `{state.repository}` on `{state.branch}` "
        f"(commit {state.head_sha}) failed and the orchestrator could not repair it.",
        "",
        f"- Category: **{category.value}**",
        f"- Failing jobs: {', '.join(f.job for f in state.failures) or '-'}",
        f"- Failed run: {state.links.failed_run or state.pipeline_id}",
    ]
    for failure in state.failures:
        role = "root cause" if failure.root_cause else f"symptom of {failure.symptom_of}"
        lines.extend(["", f"## Job `{failure.job}` ({failure.category.value}, {role})", ""])
        if failure.message:
            lines.append(failure.message)
        if failure.captures:
            names = ", ".join(f"{k}={v}" for k, v in sorted(failure.captures.items()))
            lines.append(f"Details: {names}")
        for excerpt in failure.excerpts[:2]:
            shown = "\n".join(excerpt.text.splitlines()[:25])
            lines.extend(["", f"Log lines {excerpt.start}-{excerpt.end}:", fence(shown)])
    ctx = state.context
    lines.extend(["", "## Culprit", ""])
    if ctx and ctx.culprit_sha:
        commit = next((c for c in ctx.commits if c.sha == ctx.culprit_sha), None)
        subject = commit.message.splitlines()[0] if commit and commit.message else ""
        lines.append(f"Culprit commit: {ctx.culprit_sha} {subject} ({ctx.culprit_reason})")
        if culprit_diff:
            lines.extend(["", fence("\n".join(culprit_diff.splitlines()[:200]), "diff")])
    else:
        lines.append("No culprit commit could be named.")
    if ctx:
        lines.append(f"Last green commit: {ctx.last_green_sha or 'unknown'}")
    lines.extend(["", "## What was tried", ""])
    for rec in state.attempt_history:
        tried = "; ".join(r.description for r in rec.repairs) or "no applicable repair"
        lines.append(
            f"- Attempt {rec.attempt} ({rec.strategy.value}): {tried}; "
            f"CI: {rec.ci_conclusion or 'n/a'}"
        )
        lines.extend(f"  - {u}" for u in rec.unrepaired)
        lines.extend(f"  - {n}" for n in rec.notes)
    lines.extend(
        [
            "",
            "## Reproduce locally",
            "",
            "```bash",
            f"git fetch origin {state.head_sha}",
            f"git checkout {state.head_sha}",
        ]
    )
    for path in workflow_paths or []:
        lines.append(f"# jobs are defined in {path}; run their `run:` steps in order")
    lines.append("```")
    return redact("\n".join(lines) + "\n")


def publish_issue(attempt: Attempt) -> Published:
    """Open (or update) the escalation issue with the full context package."""
    state = attempt.state
    diff = ""
    culprit = state.context.culprit_sha if state.context else None
    if culprit:
        with contextlib.suppress(WorkspaceError):
            diff = git(["show", "--stat", "--patch", culprit], attempt.mirror(culprit))
    mark = marker(key_of(attempt), state.session_id, "issue")
    text = issue_body(state, diff, [attempt.failed_run.workflow_path])
    body = mark + "\n" + safe_body(attempt, text)
    issue = attempt.provider.open_issue(
        attempt.repository, issue_title(state), body, mark, labels=list(LABELS)
    )
    paths = sorted(set(state.context.changed_files)) if state.context else []
    notes = assign_owners(attempt, issue.number, paths, review=False)
    return Published(kind=RepairKind.ISSUE, issue=issue, notes=notes)
