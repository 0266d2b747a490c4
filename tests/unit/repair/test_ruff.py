from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import checkout
from cicd_orchestrator.models import Failure
from cicd_orchestrator.repair.ruff import RuffFixer

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
