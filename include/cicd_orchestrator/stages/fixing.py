"""Fixing: the fixers propose repairs; the parallel strategies merge them on one workspace,
the sequential one keeps those that pass alone on top of the previous ones; the hand-over
strategies prepare an issue or a rollback."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from cicd_orchestrator.attempt import CODE_CHANGES, Attempt
from cicd_orchestrator.constants import RepairKind
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult, Repair, SessionState, ValidationResult
from cicd_orchestrator.repair.base import Fixer, RepairContext, WorkspaceFactory
from cicd_orchestrator.repair.registry import (
    FIXERS,
    FIXING_GROUPS,
    fixers_for_category,
    fixers_for_group,
)
from cicd_orchestrator.session import primary_category
from cicd_orchestrator.validation import replay
from cicd_orchestrator.validation.jobs import (
    all_passed,
    failing_targets,
    make_runner,
    run_event,
    run_jobs,
)

log = logging.getLogger(__name__)


@dataclass
class FixingOutcome:
    """The repairs an attempt keeps and what it says of those it dropped."""

    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RollbackPlan:
    """The state to come back to: the branch head and the culprit to revert."""

    branch: str
    head_sha: str
    revert: list[str]
    last_green_sha: str | None
    default_branch: str


# --------------------------------------------------------------------------- proposing
def repair_context(
    attempt: Attempt, failures: list[Failure], workspace: WorkspaceFactory | None = None
) -> RepairContext:
    """What a fixer is given: the failures, the context, a workspace at the failing head
    (or the one ``workspace`` makes: the head with earlier repairs on it)."""
    return RepairContext(
        repository=attempt.repository,
        workflow_path=attempt.failed_run.workflow_path,
        workflow_jobs=attempt.job_needs(),
        head_sha=attempt.head_sha,
        failures=failures,
        context=attempt.state.context,
        config=attempt.config,
        workspace=workspace or attempt.workspace,
        agent_factory=attempt.agent_factory,
    )


def run_fixers(
    attempt: Attempt,
    fixers: list[Fixer],
    failures: list[Failure],
    workspace: WorkspaceFactory | None = None,
) -> list[FixerResult]:
    """Every fixer's proposals; a fixer that breaks is reported, the others still run."""
    ctx = repair_context(attempt, failures, workspace)
    results = []
    for fixer in fixers:
        try:
            results.append(fixer.propose(ctx))
        except Exception as exc:  # one broken fixer must not cost the others their repairs
            log.exception("fixer %s failed", fixer.name)
            results.append(
                FixerResult(
                    fixer=fixer.name,
                    applicable=True,
                    unrepaired=[f"{fixer.name} failed: {type(exc).__name__}: {exc}"],
                )
            )
    return results


def fix_group(attempt: Attempt, group: str) -> list[FixerResult]:
    """The proposals of one group of fixers, for the failures of the group's categories."""
    categories = set(FIXING_GROUPS[group])
    failures = [f for f in attempt.state.failures if f.category in categories]
    if not failures:
        return []
    return run_fixers(attempt, fixers_for_group(group), failures)


def prepare_rollback(attempt: Attempt) -> list[FixerResult]:
    """The revert of the culprit, as a repair to validate."""
    return run_fixers(attempt, [FIXERS["revert"]], attempt.state.failures)


# --------------------------------------------------------------------------- keeping
def ordered_repairs(state: SessionState, results: list[FixerResult]) -> list[Repair]:
    """Repairs in the dependency mapping's order (root causes first); the repairs of one
    fixer keep their own order, since each patch may build on the one before it."""
    order = state.dependency_map.repair_order if state.dependency_map else []

    def rank(result: FixerResult) -> int:
        jobs = [j for r in result.repairs for j in r.jobs if j in order]
        return min((order.index(j) for j in jobs), default=len(order))

    ranked = sorted(results, key=rank)
    return [r for res in ranked for r in res.repairs]


def merge_repairs(attempt: Attempt, results: list[FixerResult]) -> FixingOutcome:
    """Apply every proposed patch in order on one workspace; a patch that does not apply
    over the others is a conflict and is dropped. Without a code change, the first CI action
    (a re-run) is kept."""
    repairs = ordered_repairs(attempt.state, results)
    changes = [r for r in repairs if r.kind in CODE_CHANGES]
    if not changes:
        return FixingOutcome([r for r in repairs if r.kind is RepairKind.RERUN][:1])
    outcome = FixingOutcome()
    with attempt.workspace() as ws:
        _apply_in_order(ws, changes, outcome)
    return outcome


def _apply_in_order(ws: Workspace, changes: list[Repair], outcome: FixingOutcome) -> None:
    """Commit each change that applies over the ones before it; note each conflict."""
    for repair in changes:
        if ws.apply(repair.patch):
            ws.commit(repair.commit_message or repair.description)
            outcome.repairs.append(repair)
        else:
            kept = ", ".join(k.fixer for k in outcome.repairs) or "the earlier repairs"
            outcome.notes.append(f"{repair.fixer}: its change conflicts with {kept}")


# --------------------------------------------------------------------------- repair rounds
def repair_round(
    attempt: Attempt, repairs: list[Repair], failures: list[Failure]
) -> tuple[list[Repair], list[str]]:
    """A further repair round: the fixers of the new ``failures``' categories run on the
    failing head with ``repairs`` committed; the code changes that apply over them are kept,
    in order. Returns them and what could not be repaired."""

    def stacked() -> contextlib.AbstractContextManager[Workspace]:
        return attempt.fixed_workspace(repairs)

    fixers: list[Fixer] = []
    for failure in failures:
        fixers.extend(f for f in fixers_for_category(failure.category) if f not in fixers)
    results = run_fixers(attempt, fixers, failures, stacked)
    unrepaired = [u for r in results for u in r.unrepaired]
    changes = [r for res in results for r in res.repairs if r.kind is RepairKind.CHANGE]
    outcome = FixingOutcome()
    if changes:
        with stacked() as ws:
            _apply_in_order(ws, changes, outcome)
    if not fixers:
        unrepaired.extend(f"no fixer for {f.job} ({f.category.value})" for f in failures)
    return outcome.repairs, unrepaired + outcome.notes


def validate_in_rounds(attempt: Attempt, repairs: list[Repair]) -> ValidationResult:
    """Validation of the repairs, with further repair rounds for the new failures they
    reveal (at most ``repair_rounds`` rounds in all)."""
    return replay.validate_fixes(attempt, repairs, repair_round)


def sequential_repairs(attempt: Attempt, results: list[FixerResult]) -> FixingOutcome:
    """One fix per commit in dependency order, each validated alone on top of the previous."""
    repairs = ordered_repairs(attempt.state, results)
    outcome = FixingOutcome()
    runner = make_runner(attempt.config)
    run = attempt.failed_run
    for repair in (r for r in repairs if r.kind in CODE_CHANGES):
        try:
            with attempt.fixed_workspace([*outcome.repairs, repair]) as ws:
                after = run_jobs(
                    runner,
                    ws.path,
                    ws.head(),
                    failing_targets(run.workflow_path, repair.jobs),
                    repository=attempt.repository,
                    on=run_event(run),
                )
        except WorkspaceError as exc:
            outcome.notes.append(
                f"{repair.fixer}: does not apply on top of the previous fixes: {exc}"
            )
            continue
        repair.validated = all_passed(after)
        if repair.validated:
            outcome.repairs.append(repair)
        else:
            outcome.notes.append(
                f"{repair.fixer}: {', '.join(repair.jobs)} still fail with this fix "
                "alone; not committed"
            )
    if not outcome.repairs:
        outcome.repairs = [r for r in repairs if r.kind is RepairKind.RERUN][:1]
    return outcome


# --------------------------------------------------------------------------- hand-over
def prepare_issue(attempt: Attempt) -> Repair:
    """The hand-over to a person, as the repair of the manual-intervention strategy."""
    state = attempt.state
    return Repair(
        fixer="issue",
        kind=RepairKind.ISSUE,
        category=primary_category(state),
        description="hand over to a person with the full context package",
        jobs=sorted({f.job for f in state.failures}),
        confidence=1.0,
    )


def context_package(attempt: Attempt) -> list[str]:
    """What a person needs besides the failures: the culprit and how to reproduce."""
    ctx = attempt.state.context
    notes = []
    if ctx and ctx.culprit_sha:
        notes.append(f"culprit {ctx.culprit_sha[:12]}: {ctx.culprit_reason}")
    else:
        notes.append("no culprit commit is known")
    run = attempt.failed_run
    notes.append(
        f"reproduce: check out {attempt.head_sha[:12]} and run the jobs of "
        f"{run.workflow_path}: {', '.join(j.name for j in run.failed_jobs)}"
    )
    return notes


def rollback_plan(attempt: Attempt) -> RollbackPlan:
    ctx = attempt.state.context
    return RollbackPlan(
        branch=attempt.branch,
        head_sha=attempt.head_sha,
        revert=[ctx.culprit_sha] if ctx and ctx.culprit_sha else [],
        last_green_sha=ctx.last_green_sha if ctx else None,
        default_branch=attempt.provider.default_branch(attempt.repository),
    )
