from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Context, Failure
from cicd_orchestrator.repair.revert import RevertFixer

CLEAN = "def total(items):\n    return sum(items)\n"


def test_revert_exactly_the_culprit(repo):
    repo.commit({"a.py": CLEAN}, "initial")
    culprit = repo.commit({"a.py": CLEAN.replace("sum", "max")}, "use max")
    head = repo.commit({"b.py": "X = 1\n"}, "unrelated")
    failure = Failure(
        job="test",
        job_id=1,
        run_id=1,
        step=None,
        category=FailureCategory.TEST,
        confidence=0.9,
        signature="s",
    )
    ctx = Context(failing_sha=head, culprit_sha=culprit, culprit_reason="bisect")
    result = RevertFixer().propose(repo.context([failure], head, ctx))
    repair = result.repairs[0]
    assert repair.kind is RepairKind.REVERT and repair.revert_shas == [culprit]
    assert repair.files == ["a.py"]
    assert repair.commit_message.startswith('Revert "use max"')
    assert culprit in repair.commit_message


def test_revert_without_culprit_says_so(repo):
    sha = repo.commit({"a.py": CLEAN}, "x")
    result = RevertFixer().propose(repo.context([], sha, Context(failing_sha=sha)))
    assert not result.repairs and "no culprit" in result.unrepaired[0]
