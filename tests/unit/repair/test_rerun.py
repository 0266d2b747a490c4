from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure
from cicd_orchestrator.repair.rerun import RerunFixer

CLEAN = "def total(items):\n    return sum(items)\n"


def test_rerun_for_infrastructure_but_not_after_the_same_error_repeated(repo):
    sha = repo.commit({"a.py": CLEAN}, "x")
    infra = Failure(
        job="fetch",
        job_id=1,
        run_id=1,
        step=None,
        recipe="rerun",
        category=FailureCategory.INFRASTRUCTURE,
        confidence=0.8,
        signature="s",
    )
    result = RerunFixer().propose(repo.context([infra], sha))
    assert result.repairs[0].kind is RepairKind.RERUN and result.repairs[0].jobs == ["fetch"]
    infra.repeated_after_rerun = True
    again = RerunFixer().propose(repo.context([infra], sha))
    assert not again.repairs and "repeated" in again.unrepaired[0]
