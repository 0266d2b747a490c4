"""Infrastructure and flaky failures: re-run the failed jobs (no code change)."""

from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext


class RerunFixer(Fixer):
    """Proposes a CI re-run of the failed jobs unless the same error already survived one."""

    name = "rerun"
    categories = frozenset({FailureCategory.INFRASTRUCTURE})

    def propose(self, ctx: RepairContext) -> FixerResult:
        relevant = [
            f for f in self.relevant(ctx.failures) if f.recipe in (None, "rerun", "quarantine-test")
        ]
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or "rerun" not in ctx.config.enabled_fixers:
            return result
        repeated = [f for f in relevant if f.repeated_after_rerun]
        if repeated:
            result.unrepaired.extend(
                f"{f.job}: the same error repeated after {ctx.config.max_ci_reruns} re-run(s); "
                "not re-running again"
                for f in repeated
            )
            return result
        result.repairs.append(
            Repair(
                fixer=self.name,
                kind=RepairKind.RERUN,
                category=relevant[0].category,
                description="re-run the failed jobs: "
                + ", ".join(sorted({f.job for f in relevant})),
                jobs=sorted({f.job for f in relevant}),
                confidence=max(f.confidence for f in relevant),
                evidence=[e for f in relevant for e in f.evidence[:3]],
            )
        )
        return result
