from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Context, Failure
from cicd_orchestrator.repair.rerun import RerunFixer
from cicd_orchestrator.repair.revert import RevertFixer
from cicd_orchestrator.repair.ruff import RuffFixer
from cicd_orchestrator.repair.workspace import checkout

CLEAN = "def total(items):\n    return sum(items)\n"
UNUSED = 'import os\nimport sys\n\n\ndef name():\n    return f"report"\n'
UGLY = 'def  f( a,b ):\n    return {"a":a,"b":b}\n'


def lint_failure(evidence, recipe="ruff-fix", job="lint"):
    return Failure(
        job=job,
        job_id=1,
        run_id=1,
        step="Lint",
        category=FailureCategory.QUALITY,
        confidence=0.9,
        signature="s",
        recipe=recipe,
        evidence=evidence,
    )


def test_ruff_fix_repairs_only_the_reported_file(repo):
    sha = repo.commit(
        {"pkg/clean.py": CLEAN, "pkg/report.py": UNUSED, "pkg/other.py": "import json\n"},
        "add report",
    )
    failure = lint_failure(["F401 [*] `os` imported but unused", " --> pkg/report.py:1:8"])
    result = RuffFixer().propose(repo.context([failure], sha))
    assert result.applicable and len(result.repairs) == 1
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.files == ["pkg/report.py"]
    assert "-import os" in repair.patch and "other.py" not in repair.patch
    with checkout(repo.path, sha) as ws:
        assert ws.apply(repair.patch)
        text = (ws.path / "pkg/report.py").read_text()
    assert "import os" not in text and 'return "report"' in text


def test_ruff_reports_rules_without_a_safe_fix(repo):
    sha = repo.commit({"a.py": "def f():\n    x = 1\n    return undefined_name\n"}, "bad")
    failure = lint_failure(["a.py:3:12: F821 Undefined name `undefined_name`"])
    result = RuffFixer().propose(repo.context([failure], sha))
    assert not result.repairs
    assert any("F821" in line and "a.py:3" in line for line in result.unrepaired)


def test_ruff_format_and_lint_in_one_go_without_conflict(repo):
    sha = repo.commit({"lint_me.py": UNUSED, "format_me.py": UGLY}, "both")
    failures = [
        lint_failure(["lint_me.py:1:8: F401 [*] `os` imported but unused"]),
        lint_failure(
            ["Would reformat: format_me.py", "1 file would be reformatted"],
            recipe="ruff-format",
            job="format",
        ),
    ]
    result = RuffFixer().propose(repo.context(failures, sha))
    assert [r.fixer for r in result.repairs] == ["ruff-fix", "ruff-format"]
    assert result.repairs[1].files == ["format_me.py"]
    with checkout(repo.path, sha) as ws:
        for repair in result.repairs:
            assert ws.apply(repair.patch)
            ws.commit(repair.commit_message)
        assert (ws.path / "format_me.py").read_text() == (
            'def f(a, b):\n    return {"a": a, "b": b}\n'
        )


def test_ruff_ignores_other_categories(repo):
    sha = repo.commit({"a.py": CLEAN}, "x")
    failure = Failure(
        job="test",
        job_id=1,
        run_id=1,
        step=None,
        category=FailureCategory.TEST,
        confidence=0.5,
        signature="s",
    )
    assert not RuffFixer().propose(repo.context([failure], sha)).applicable


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
    infra.notes.append("repeated-after-rerun")
    again = RerunFixer().propose(repo.context([infra], sha))
    assert not again.repairs and "repeated" in again.unrepaired[0]


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
