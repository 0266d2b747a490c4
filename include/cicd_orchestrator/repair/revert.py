"""Emergency rollback: revert exactly the culprit commit(s) on a fix branch."""

from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.models import FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext


class RevertFixer(Fixer):
    """``git revert`` of the culprit; never a history rewrite."""

    name = "revert"

    def propose(self, ctx: RepairContext) -> FixerResult:
        culprit = ctx.context.culprit_sha if ctx.context else None
        result = FixerResult(fixer=self.name, applicable=bool(culprit))
        if not culprit:
            result.unrepaired.append("no culprit commit is known: nothing to revert")
            return result
        with ctx.workspace() as ws:
            subject = ws.git("log", "-1", "--format=%s", culprit).strip()
            try:
                ws.git("revert", "--no-edit", "--no-commit", culprit)
            except WorkspaceError as exc:
                result.unrepaired.append(f"the revert of {culprit[:12]} does not apply: {exc}")
                return result
            patch = ws.diff()
            files = ws.changed_files()
        if not patch:
            result.unrepaired.append(f"reverting {culprit[:12]} changes nothing")
            return result
        category = ctx.failures[0].category if ctx.failures else FailureCategory.UNKNOWN
        result.repairs.append(
            Repair(
                fixer=self.name,
                kind=RepairKind.REVERT,
                category=category,
                description=f'revert {culprit[:12]} "{subject}"',
                jobs=sorted({f.job for f in ctx.failures}),
                patch=patch,
                files=files,
                commit_message=f'Revert "{subject}"\n\nThis reverts commit {culprit}.',
                confidence=0.8,
                revert_shas=[culprit],
                evidence=[ctx.context.culprit_reason] if ctx.context else [],
            )
        )
        return result
