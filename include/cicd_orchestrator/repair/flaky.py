"""Test failures: confirm flakiness by re-running the failing job locally on the same commit.

A test that passes in some of the local runs and fails in others is flaky: the repair is a CI
re-run (no code change) and the report names the test; one that fails every time is a
deterministic regression, left to the bisect and the culprit's revert.
"""

from __future__ import annotations

import logging
import time

from cicd_orchestrator.analysis.classify import mark_flaky
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.validation.jobs import JobTarget, all_passed, make_runner, run_jobs

log = logging.getLogger(__name__)


class FlakyTestFixer(Fixer):
    """Re-runs failing test jobs locally; flaky ones get a CI re-run and a quarantine note."""

    name = "flaky-test"
    categories = frozenset({FailureCategory.TEST, FailureCategory.FLAKY})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or not ctx.workflow_path or "rerun" not in ctx.config.enabled_fixers:
            return result
        runs = max(1, ctx.config.flaky_local_reruns)
        for failure in relevant:
            if failure.category is FailureCategory.FLAKY:
                confirmed: Failure | None = failure
            else:
                confirmed = self._confirm(ctx, failure, runs)
            if confirmed is None:
                result.unrepaired.append(
                    f"{failure.job}: failed in all {runs} local re-runs on the same commit: "
                    "a deterministic failure, not a flaky one"
                )
                continue
            if confirmed.repeated_after_rerun:
                result.unrepaired.append(
                    f"{failure.job}: flaky, but it failed again after "
                    f"{ctx.config.max_ci_reruns} CI re-run(s); quarantine the test(s): "
                    + ", ".join(confirmed.tests or ["(unknown test)"])
                )
                continue
            result.repairs.append(self._rerun(confirmed))
        result.seconds = round(time.monotonic() - start, 3)
        return result

    def _confirm(self, ctx: RepairContext, failure: Failure, runs: int) -> Failure | None:
        target = [JobTarget(ctx.workflow_path, frozenset({failure.job}))]
        outcomes: list[bool] = []
        with ctx.workspace() as ws:
            runner = make_runner(ctx.config)
            for _ in range(runs):
                outcomes.append(
                    all_passed(
                        run_jobs(runner, ws.path, ctx.head_sha, target, repository=ctx.repository)
                    )
                )
                if any(outcomes) and not all(outcomes):
                    break
        log.info("local re-runs of %s: %s", failure.job, outcomes)
        if not any(outcomes):
            return None
        passed = sum(outcomes)
        return mark_flaky(
            failure,
            f"{failure.job} passed {passed} of {len(outcomes)} local re-run(s) on the same "
            f"commit {ctx.head_sha[:12]}",
        )

    @staticmethod
    def _rerun(failure: Failure) -> Repair:
        tests = failure.tests or []
        return Repair(
            fixer="flaky-test",
            kind=RepairKind.RERUN,
            category=FailureCategory.FLAKY,
            description=(
                f"re-run {failure.job}: flaky test(s) {', '.join(tests) or '(unnamed)'}; "
                "quarantine them (a skip marker or the repository's skip list) if it repeats"
            ),
            jobs=[failure.job],
            confidence=0.7,
            evidence=[*failure.evidence[:3], *failure.notes[-1:]],
            notes=[f"flaky test: {t}" for t in tests],
        )
