from __future__ import annotations

from cicd_orchestrator.analysis.depmap import (
    error_location,
    find_conflicts,
    map_dependencies,
    precedence,
)
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Excerpt, Failure, Repair


def _f(job: str, cat: FailureCategory, sig: str, **caps: str) -> Failure:
    return Failure(
        job=job,
        job_id=0,
        run_id=0,
        step=None,
        category=cat,
        confidence=0.9,
        signature=sig,
        captures=dict(caps),
        excerpts=[Excerpt(1, 1, "x")],
        evidence=["x"],
    )


def test_same_error_in_build_lint_and_test_has_one_root() -> None:
    fs = [
        _f("lint", FailureCategory.BUILD, "s-lint", file="src/invoice/credit.py", line="7"),
        _f(
            "test",
            FailureCategory.BUILD,
            "s-test",
            file="/home/runner/work/a/src/invoice/credit.py",
            line="7",
        ),
        _f("build", FailureCategory.BUILD, "s-build", location="src/invoice/credit.py:7"),
    ]
    dm = map_dependencies(fs, {"build": [], "lint": [], "test": []})
    assert dm.root_causes == ["build"] or dm.root_causes in (["lint"], ["test"])
    # ties broken by name among equal categories: the build job wins when its category is more basic
    fs[0].category = FailureCategory.QUALITY
    fs[1].category = FailureCategory.TEST
    dm = map_dependencies(fs, {})
    assert dm.root_causes == ["build"]
    assert dm.symptoms == {"lint": "build", "test": "build"}
    assert dm.repair_order == ["build", "lint", "test"]
    assert [f.root_cause for f in fs] == [False, False, True]
    assert fs[0].symptom_of == "build"


def test_job_failing_because_a_needed_job_failed_is_a_symptom() -> None:
    test = _f("test", FailureCategory.TEST, "a")
    deploy = _f("deploy", FailureCategory.UNKNOWN, "b")
    publish = _f("publish", FailureCategory.CONFIGURATION, "c")  # its own error: a root
    dm = map_dependencies(
        [deploy, test, publish], {"deploy": ["test"], "publish": ["deploy"], "test": []}
    )
    assert dm.symptoms == {"deploy": "test"}
    assert dm.root_causes == ["publish", "test"]  # configuration before test
    assert dm.repair_order == ["publish", "test", "deploy"]


def test_transitive_needs_resolve_to_the_root() -> None:
    a = _f("a", FailureCategory.BUILD, "same")
    b = _f("b", FailureCategory.BUILD, "same")
    c = _f("c", FailureCategory.BUILD, "same")
    dm = map_dependencies([a, b, c], {"b": ["a"], "c": ["b"]})
    assert dm.symptoms == {"b": "a", "c": "a"} and dm.root_causes == ["a"]


def test_precedence_and_location() -> None:
    order = sorted(FailureCategory, key=precedence)
    assert order[:3] == [
        FailureCategory.CONFIGURATION,
        FailureCategory.BUILD,
        FailureCategory.QUALITY,
    ]
    assert precedence(FailureCategory.INFRASTRUCTURE) > precedence(FailureCategory.FLAKY)
    assert (
        error_location(_f("x", FailureCategory.BUILD, "s", file="C:\\w\\src\\a.py", line="3"))
        == "a.py:3"
    )
    assert error_location(_f("x", FailureCategory.BUILD, "s")) is None


def test_find_conflicts() -> None:
    r1 = Repair(
        "ruff-fix",
        RepairKind.CHANGE,
        FailureCategory.QUALITY,
        "lint",
        files=["src/a.py", "src/b.py"],
    )
    r2 = Repair(
        "ruff-format", RepairKind.CHANGE, FailureCategory.QUALITY, "fmt", files=["src/b.py"]
    )
    r3 = Repair("rerun", RepairKind.RERUN, FailureCategory.INFRASTRUCTURE, "rerun")
    assert find_conflicts([r1, r2, r3]) == ["ruff-fix and ruff-format both change src/b.py"]
    dm = map_dependencies([], {}, repairs=[r1, r2])
    assert dm.conflicts == ["ruff-fix and ruff-format both change src/b.py"]
