"""The markdown report of a session (the seed's report: summary, stages, fixes, validation,
next steps), rebuilt from the session state whenever it changes."""

from __future__ import annotations

import datetime
import re

from cicd_orchestrator.constants import FailureCategory, Outcome, RepairKind, SessionStatus
from cicd_orchestrator.models import AttemptRecord, Repair, SessionState
from cicd_orchestrator.redact import redact
from cicd_orchestrator.session import CLOSED_BECAUSE, NOT_FOUND, STAGES, primary_category
from cicd_orchestrator.strategies import load_strategies

#: the categories the seed's report always lists
_SEED_CATEGORIES = (
    FailureCategory.BUILD,
    FailureCategory.TEST,
    FailureCategory.QUALITY,
    FailureCategory.DEPLOYMENT,
)
_NEXT_STEPS = {
    Outcome.FIXED: "Review and merge the pull request; CI is green on the fix branch.",
    Outcome.RERUN_GREEN: "Nothing to merge: the failed jobs passed when re-run on the same commit.",
    Outcome.ROLLED_BACK: "Merge the revert pull request, then fix the reverted change and land "
    "it again.",
    Outcome.ESCALATED: "A person must act: see the issue, which has the full context.",
    Outcome.FAILED: "No repair turned CI green; investigate with the excerpts below.",
    Outcome.ALREADY_GREEN: "CI became green without a repair; nothing to do.",
    Outcome.PUBLISHED: "Review the pull request and watch its CI: the orchestrator does not "
    "(monitor_until_green is false).",
    Outcome.SUPERSEDED: "A newer commit, or the branch going green by itself, made the "
    "failure moot; the session's fix pull requests were closed.",
}


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s"


def _attempt_lines(rec: AttemptRecord) -> list[str]:
    lines = [
        f"### Attempt {rec.attempt}: {rec.strategy.value} ({rec.status})",
        "",
        f"- adds: {load_strategies()[rec.strategy].adds}",
    ]
    for stage in STAGES:
        if stage in rec.stage_timings:
            lines.append(f"- {stage}: {_fmt_seconds(rec.stage_timings[stage])}")
    for repair in rec.repairs:
        mark = {True: "validated", False: "failed validation", None: "not validated"}[
            repair.validated
        ]
        lines.append(
            f"- repair `{repair.fixer}` ({repair.kind.value}, {mark}): {repair.description}"
        )
    lines.extend(f"- not repaired: {item}" for item in rec.unrepaired)
    lines.extend(_round_lines(rec))
    lines.extend(_validation_lines(rec))
    pub = rec.published
    if pub:
        if pub.pull_request:
            lines.append(f"- pull request: {pub.pull_request.url} (branch `{pub.branch}`)")
        if pub.rerun_run_id:
            lines.append(f"- re-run: run {pub.rerun_run_id} attempt {pub.rerun_attempt}")
        if pub.issue:
            lines.append(f"- issue: {pub.issue.url}")
        lines.extend(f"- {note}" for note in pub.notes)
    if rec.ci_conclusion:
        lines.append(f"- CI after this attempt: {rec.ci_conclusion}")
    lines.extend(f"- {note}" for note in rec.notes)
    lines.append("")
    return lines


def _validation_lines(rec: AttemptRecord) -> list[str]:
    v = rec.validation
    if v is None:
        return []
    lines = [
        f"- validation: reproduced={v.reproduced} passed={v.passed} "
        f"regression={v.regression_passed}"
    ]
    lines.extend(f"  - {note}" for note in v.notes)
    if v.ci_verified:
        lines.append("  - verified by the real CI: published as a draft pull request")
    lines.extend(f"  - not replayable here: {item}" for item in v.not_replayable)
    return lines


def _round_lines(rec: AttemptRecord) -> list[str]:
    """The repair rounds of an attempt: what each found and what it repaired."""
    if not rec.rounds:
        return []
    lines = [f"- repair rounds: {len(rec.rounds)}"]
    for rnd in rec.rounds:
        found = "; ".join(
            f"{f.job}: {f.category.value} `{f.pattern or '-'}` "
            f"({' '.join(f.message.split())[:160]})"
            for f in rnd.failures
        )
        repaired = ", ".join(f"`{r.fixer}` ({r.description})" for r in rnd.repairs) or "nothing"
        lines.append(f"  - round {rnd.number}: found {found or 'nothing new'}; repaired {repaired}")
        lines.extend(f"    - not repaired: {item}" for item in rnd.unrepaired)
        lines.extend(f"    - {note}" for note in rnd.notes)
    return lines


def render_report(state: SessionState) -> str:
    """Markdown report; every secret the redactor knows is masked."""
    category = primary_category(state)
    fixes = [r for rec in state.attempt_history for r in rec.repairs if r.validated]
    outcome = state.outcome.value if state.status is SessionStatus.CLOSED else "in progress"
    workflow = f" / {state.workflow}" if state.workflow else ""
    lines = [
        "# CI/CD orchestration report",
        "",
        f"- Session: `{state.session_id}`",
        f"- Pipeline: {state.repository}{workflow} run {state.pipeline_id} on `{state.branch}` "
        f"({state.head_sha[:12]})",
        f"- Trigger: {trigger_line(state)}",
        f"- Priority: {state.priority.value}",
        f"- Outcome: **{outcome}** after {state.current_attempt} attempt(s)",
        f"- Strategy: {state.current_strategy.value if state.current_strategy else '-'}",
        f"- Category: {category.value}",
        "",
        "## Summary",
        "",
        f"- Started: {state.start_time or '-'}; ended: {state.end_time or '-'}",
        f"- Total duration: {total_duration(state)}",
        f"- Stages completed: {stages_completed(state)}",
        f"- Failures: {state.total_failures} CI failure(s) after repairs; "
        f"{len(fixes)} validated fix(es)",
        f"- Success rate: {success_rate(state)}",
        f"- Links: failed run {state.links.failed_run or '-'}; pull requests "
        f"{', '.join(state.links.pull_requests) or '-'}; issues "
        f"{', '.join(state.links.issues) or '-'}",
        "",
        "## Failures",
        "",
    ]
    for f in state.failures:
        role = "root cause" if f.root_cause else f"symptom of {f.symptom_of}"
        lines.append(
            f"- **{f.job}** ({role}): {f.category.value}, confidence {f.confidence:.2f}, "
            f"pattern `{f.pattern or '-'}`, signature `{f.signature[:12]}`"
        )
        if f.message:
            lines.append(f"  - {f.message}")
        lines.extend(f"  - {note}" for note in f.notes)
        if f.repeated_after_rerun:
            lines.append("  - failed again after a CI re-run")
        if f.category is FailureCategory.FLAKY and f.tests:
            lines.append(f"  - flaky tests: {', '.join(f.tests)}")
        if f.excerpts:
            ex = f.excerpts[0]
            shown = ex.text.splitlines()[:15]
            ticks = _fence_for(shown)
            lines.extend(["", f"  Excerpt (lines {ex.start}-{ex.end}):", "", f"  {ticks}"])
            lines.extend(f"  {t}" for t in shown)
            lines.extend([f"  {ticks}", ""])
    if not state.failures:
        lines.append("- (not analysed yet)")
    lines.extend(["", "## Fixes by category", ""])
    lines.extend(fixes_by_category(state))
    lines.extend(["", "## Context", ""])
    lines.extend(_context_lines(state))
    lines.extend(["", "## Stage breakdown and fixes", ""])
    for rec in state.attempt_history:
        lines.extend(_attempt_lines(rec))
    lines.extend(["## Learned patterns", ""])
    lines.extend(learned_lines(state))
    lines.append("")
    lines.extend(_closing_lines(state))
    return redact("\n".join(lines) + "\n")


def trigger_line(state: SessionState) -> str:
    """The event that started the failed run, and its pull request (the seed's trigger)."""
    event = state.event or "unknown event"
    pr = f"pull request #{state.pull_request_number}" if state.pull_request_number else "no PR"
    return f"{event} ({pr})"


def _instant(stamp: str | None) -> datetime.datetime | None:
    if not stamp:
        return None
    try:
        moment = datetime.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def total_duration(state: SessionState) -> str:
    """From the session's start to its end, or, while it runs, to the last thing it
    recorded ("so far"); the report is rebuilt from the state alone (no clock)."""
    start = _instant(state.start_time)
    stamps = (
        [state.end_time]
        if state.end_time
        else [s for rec in state.attempt_history for s in (rec.started_at, rec.finished_at)]
    )
    ends = [t for t in (_instant(s) for s in stamps) if t is not None]
    if start is None or not ends:
        return "-"
    seconds = max(0, int((max(ends) - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    shown = (f"{hours}h " if hours else "") + f"{rest // 60}m {rest % 60}s"
    return shown if state.end_time else f"{shown} so far"


def stages_completed(state: SessionState) -> str:
    """The seed's four stages (discovery, classification, fixing, validation) the current
    attempt completed, as ``n/4``."""
    n = max(state.current_attempt, 1)
    done = [s for s in STAGES[:4] if f"attempt_{n}.{s}" in state.completed_stages]
    return f"{len(done)}/4 (attempt {n})"


def _tried(state: SessionState) -> list[Repair]:
    """The repairs the session tried (a hand-over to a person is none)."""
    return [
        r for rec in state.attempt_history for r in rec.repairs if r.kind is not RepairKind.ISSUE
    ]


def success_rate(state: SessionState) -> str:
    """The share of the repairs tried that validation confirmed."""
    tried = _tried(state)
    if not tried:
        return "- (no repair tried)"
    good = sum(1 for r in tried if r.validated)
    return f"{round(100 * good / len(tried))}% ({good} of {len(tried)} repair(s) validated)"


def fixes_by_category(state: SessionState) -> list[str]:
    """Validated fixes by failure category: the seed's four always, the others when any."""
    counts: dict[FailureCategory, list[str]] = {}
    for repair in _tried(state):
        if repair.validated:
            counts.setdefault(repair.category, []).append(repair.fixer)
    lines = []
    for category in FailureCategory:
        fixers = counts.get(category, [])
        if fixers or category in _SEED_CATEGORIES:
            named = f" ({', '.join(f'`{f}`' for f in sorted(set(fixers)))})" if fixers else ""
            lines.append(f"- {category.value.capitalize()} fixes: {len(fixers)}{named}")
    return lines


def learned_lines(state: SessionState) -> list[str]:
    """The failure signatures the session learned, and whether their repair worked."""
    if not state.learned_patterns:
        return ["- none yet"]
    worked = {True: "worked", False: "did not work", None: "untried"}
    return [
        f"- `{p.signature[:12]}` {p.category.value} `{p.pattern or '-'}`: repair "
        f"`{p.repair or '-'}` {worked[p.worked]} (seen {p.seen}x)"
        for p in state.learned_patterns
    ]


def _fence_for(lines: list[str]) -> str:
    """A code fence no line of ``lines`` can close: longer than any run of backticks."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _context_lines(state: SessionState) -> list[str]:
    lines: list[str] = []
    ctx = state.context
    if ctx:
        lines.append(f"- Last green commit: {ctx.last_green_sha or 'unknown'}")
        lines.append(f"- Commits since: {len(ctx.commits)}")
        if ctx.culprit_sha:
            lines.append(f"- Culprit: `{ctx.culprit_sha}` ({ctx.culprit_reason})")
        for change in ctx.dependency_changes:
            lines.append(f"- Dependency {change.name}: {change.before} -> {change.after}")
        lines.extend(f"- {n}" for n in ctx.notes)
    if state.dependency_map and state.dependency_map.symptoms:
        for job, root in state.dependency_map.symptoms.items():
            lines.append(f"- {job} is a symptom of {root}")
    return lines


def _closing_lines(state: SessionState) -> list[str]:
    lines: list[str] = []
    if state.errors:
        lines.extend(["## Errors", ""])
        lines.extend(f"- {e}" for e in state.errors)
        lines.append("")
    lines.extend(["## Next steps", ""])
    if state.status is SessionStatus.CLOSED and state.extra.get(CLOSED_BECAUSE) == NOT_FOUND:
        lines.append(
            "Nothing to do here: the repository or run is gone from the CI provider (see the "
            "errors). A new failed run of a repository that comes back gets a new session."
        )
    elif state.status is SessionStatus.CLOSED:
        lines.append(_NEXT_STEPS.get(state.outcome, "-"))
    else:
        lines.append("The session is still running; this report is updated after every stage.")
    published_kinds = {r.published.kind for r in state.attempt_history if r.published is not None}
    if RepairKind.ISSUE in published_kinds and state.outcome is not Outcome.ESCALATED:
        lines.append("An escalation issue was opened during the session; close it once resolved.")
    return lines
