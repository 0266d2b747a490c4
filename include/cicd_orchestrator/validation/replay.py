"""Validation of an attempt's repairs by replaying jobs locally: the failing jobs must fail on
the failing head (reproduced) and pass with the repairs; the rest of the workflow is the
regression run.

A job this machine cannot replay (its result says why: ``JobResult.not_replayable``) passes
nothing here: when it is all that still fails, the result is ``ci_verified`` (by the
deployment's ``ci_verified_fixes`` policy) and the real CI decides. A repaired job that fails
with a new failure goes back to the fixers (``validation.rounds``)."""

from __future__ import annotations

import os

from cicd_orchestrator.attempt import CODE_CHANGES, Attempt
from cicd_orchestrator.constants import RepairKind
from cicd_orchestrator.models import JobResult, Repair, ValidationResult
from cicd_orchestrator.session import settle_ci_verification
from cicd_orchestrator.validation.jobs import (
    JobTarget,
    all_passed,
    failing_targets,
    make_runner,
    run_event,
    run_jobs,
)
from cicd_orchestrator.validation.rounds import LogKeeper, RoundFixer, replay_in_rounds


def _targets(attempt: Attempt, jobs: set[str]) -> list[JobTarget]:
    """The failing jobs to replay, in the workflows that failed them (every failed workflow
    of the session's push)."""
    by_workflow = attempt.jobs_by_workflow(jobs)
    return [t for path in sorted(by_workflow) for t in failing_targets(path, by_workflow[path])]


def _failing_jobs(attempt: Attempt, repairs: list[Repair]) -> set[str]:
    return {f.job for f in attempt.state.failures} | {j for r in repairs for j in r.jobs}


def validate_fixes(
    attempt: Attempt, repairs: list[Repair], fix_round: RoundFixer | None = None
) -> ValidationResult:
    """Reproduce the failing jobs on the head, then run them with the repairs (must pass).
    A re-run is checked by running the jobs again as the re-run would. ``fix_round``: the
    fixers, for a new failure a repair reveals (none: no further repair round)."""
    result = ValidationResult()
    if not repairs:
        result.notes.append("nothing to validate: no repair was proposed")
        return result
    run = attempt.failed_run
    targets = _targets(attempt, _failing_jobs(attempt, repairs))
    mirror = attempt.mirror(attempt.head_sha)
    with LogKeeper(make_runner(attempt.config)) as runner:

        def replay(
            git_dir: str | os.PathLike[str], sha: str, run_attempt: int = 1
        ) -> list[JobResult]:
            return run_jobs(
                runner,
                git_dir,
                sha,
                targets,
                repository=attempt.repository,
                on=run_event(run),
                run_attempt=run_attempt,
            )

        result.failing_before = replay(mirror, attempt.head_sha, run.run_attempt)
        _reproduction(result)
        if any(r.kind is RepairKind.RERUN for r in repairs):
            result.after = replay(mirror, attempt.head_sha, run.run_attempt + 1)
            result.passed = True
            result.notes.append(
                "a local run as the re-run would execute it "
                + (
                    "passes"
                    if all_passed(result.after)
                    else "still fails; CI's environment may differ"
                )
            )
            return result
        before = (result.failing_before, dict(runner.logs))
        if any(r.kind is RepairKind.REVERT for r in repairs):
            fix_round = None  # a revert is published as it is, or not at all
        result.after, result.rounds = replay_in_rounds(
            attempt, repairs, replay, runner, fix_round, before
        )
    result.passed = all_passed(result.after)
    if result.round_repairs:
        _regression_of_rounds(attempt, repairs, result)
    settle_ci_verification(result, attempt.config.ci_verified_fixes)
    return result


def _reproduction(result: ValidationResult) -> None:
    replayed = [r for r in result.failing_before if not r.not_replayable]
    if not replayed:
        result.notes.append("the failing jobs cannot be replayed on this machine")
        return
    result.reproduced = not all_passed(replayed)
    if not result.reproduced:
        result.notes.append(
            "the failure does not reproduce locally: a sign of flakiness or of the CI environment"
        )


def _regression_of_rounds(
    attempt: Attempt, repairs: list[Repair], result: ValidationResult
) -> None:
    """The regression run with the repairs of every round (the regression task ran with the
    first round's only)."""
    regression = regression_run(attempt, [*repairs, *result.round_repairs])
    result.regression = regression.regression
    result.regression_passed = regression.regression_passed
    result.notes.extend(regression.notes)
    result.notes.append(
        f"{len(result.rounds)} repair rounds: the regression run was repeated with the "
        "repairs of every round"
    )


def regression_run(attempt: Attempt, repairs: list[Repair]) -> ValidationResult:
    """Run the rest of the workflow with the repairs as a regression check."""
    result = ValidationResult()
    if not any(r.kind in CODE_CHANGES for r in repairs):
        result.notes.append("no code change: no regression run needed")
        return result
    run = attempt.failed_run
    failing = _failing_jobs(attempt, repairs)
    others = [j.name for j in run.jobs if j.name not in failing]
    if not others:
        result.regression_passed = True
        result.notes.append("every job of the workflow was already validated")
        return result
    with attempt.fixed_workspace(repairs) as ws:
        result.regression = run_jobs(
            make_runner(attempt.config),
            ws.path,
            ws.head(),
            failing_targets(run.workflow_path, others),
            repository=attempt.repository,
            on=run_event(run),
        )
    result.regression_passed = all_passed(result.regression)
    settle_ci_verification(result, attempt.config.ci_verified_fixes)
    return result
