from __future__ import annotations

from pathlib import Path

from cicd_orchestrator.analysis.classify import (
    FlakyEvidence,
    classify,
    mark_flaky,
)
from cicd_orchestrator.analysis.learning import record
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import analyze_path, analyze_text

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
TS = "2024-05-01T10:00:00.0000000Z "


def _gh(*lines: str) -> str:
    body = [
        "##[group]Run step",
        "step",
        "##[endgroup]",
        *lines,
        "##[error]Process completed with exit code 1.",
    ]
    return "".join(f"{TS}{line}\n" for line in body)


def test_classify_fills_the_failure() -> None:
    a = analyze_path(FIX / "github_fail.log")
    f = classify("test", None, a, job_id=7, run_id=3)
    assert (f.job, f.job_id, f.run_id) == ("test", 7, 3)
    assert f.step == "Run python -m pytest -q"
    assert f.category is FailureCategory.TEST and f.pattern == "pytest-failed"
    assert f.tests == ["tests/test_totals.py::test_line_total_rounds_half_up"]
    assert f.signature == a.signature and f.evidence and f.excerpts


def test_same_syntax_error_in_build_lint_and_test_is_build_with_same_location() -> None:
    build = _gh(
        "*** Error compiling 'src/invoice/credit.py'...",
        '  File "src/invoice/credit.py", line 7',
        "    def credit_note(lines, share) -> Decimal",
        "SyntaxError: expected ':'",
    )
    lint = _gh(
        "invalid-syntax: Expected `:`, found newline",
        " --> src/invoice/credit.py:7:69",
        "Found 1 error.",
    )
    test = _gh(
        "tests/test_credit.py:3: in <module>",
        "    from invoice.credit import credit_note",
        'E     File "/home/runner/work/app/app/src/invoice/credit.py", line 7',
        "E   SyntaxError: expected ':'",
        "ERROR tests/test_credit.py",
        "!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!",
    )
    failures = [
        classify(job, None, analyze_text(text))
        for job, text in (("build", build), ("lint", lint), ("test", test))
    ]
    assert [f.category for f in failures] == [FailureCategory.BUILD] * 3
    assert {f.pattern for f in failures} == {"python-syntax-error"}
    assert {f.captures["location"].rsplit("/", 1)[-1] for f in failures} == {"credit.py:7"}


def test_scenario_like_failures() -> None:
    cases = {
        "ruff": (
            _gh(
                "F401 [*] `json` imported but unused",
                " --> src/a.py:4:8",
                "Found 1 error.",
                "[*] 1 fixable with the `--fix` option.",
            ),
            "ruff-check",
            "ruff-fix",
        ),
        "format": (
            _gh(
                "Would reformat: src/a.py", "1 file would be reformatted, 5 files already formatted"
            ),
            "ruff-format",
            "ruff-format",
        ),
        "dep": (
            _gh(
                "E   ModuleNotFoundError: No module named 'yaml'",
                "ERROR tests/test_export.py",
                "Interrupted: 1 error during collection",
            ),
            "python-module-not-found",
            "add-requirement",
        ),
        "net": (
            _gh(
                "Fetching https://rates.example.org/v1/latest.json (try 3/3)",
                "  urllib3.exceptions.ProtocolError: ('Connection aborted.', "
                "ConnectionResetError(104, 'Connection reset by peer'))",
                "requests.exceptions.ConnectionError: ('Connection aborted.', "
                "ConnectionResetError(104, 'Connection reset by peer'))",
            ),
            "network-reset",
            "rerun",
        ),
        "secret": (
            _gh(
                "::error title=Missing secret::DOCS_TOKEN is empty. "
                "Add the repository secret DOCS_TOKEN."
            ),
            "missing-secret",
            "escalate-secret",
        ),
        "tab": (
            _gh(
                "yaml.scanner.ScannerError: while scanning for the next token",
                "found character '\\t' that cannot start any token",
                '  in "<unicode string>", line 21, column 1:',
            ),
            "yaml-tab-indent",
            "manifest-whitespace",
        ),
        "regression": (
            _gh(
                "E       AssertionError: assert Decimal('1.00') == Decimal('1.01')",
                "tests/test_totals.py:7: AssertionError",
                "FAILED tests/test_totals.py::test_line_total_rounds_half_up - AssertionError",
                "1 failed, 2 passed in 0.02s",
            ),
            "pytest-failed",
            "revert-culprit",
        ),
    }
    for job, (text, pattern, recipe) in cases.items():
        f = classify(job, None, analyze_text(text))
        assert (f.pattern, f.recipe) == (pattern, recipe), job


def test_a_failure_the_log_says_little_of_takes_the_step_and_job_names() -> None:
    a = analyze_text(_gh("something odd happened"), names=["Lint", "ci"])
    f = classify("ci", "Lint", a)
    assert f.category is FailureCategory.QUALITY and f.confidence >= 0.4
    assert any("the command or name 'Lint'" in note for note in f.notes)
    deploy = analyze_text(_gh("something odd happened"), names=["Deploy to prod"])
    assert deploy.category is FailureCategory.DEPLOYMENT
    assert analyze_text(_gh("something odd happened"), names=["whatever"]).category is (
        FailureCategory.UNKNOWN
    )


def test_learned_patterns_are_consulted_first() -> None:
    a = analyze_text(_gh("something odd happened"))
    store = record({}, a.signature, "infrastructure", None, "rerun", True)
    f = classify("ci", None, a, learned=store)
    assert f.category is FailureCategory.INFRASTRUCTURE and f.recipe == "rerun"
    assert f.confidence >= 0.95 and any("learned" in n for n in f.notes)


def test_mark_flaky_by_evidence() -> None:
    a = analyze_text(
        _gh(
            "FAILED tests/test_cache.py::test_cache_returns_fresh_value - assert None == 1.08",
            "1 failed, 4 passed",
        )
    )
    f = classify("test", None, a)
    assert f.category is FailureCategory.TEST
    assert mark_flaky(f, FlakyEvidence()) is f
    same = mark_flaky(
        f, FlakyEvidence(passed_same_commit=True, failed_signatures_same_commit={f.signature})
    )
    assert same.category is FailureCategory.FLAKY and same.confidence == 0.9
    assert same.recipe == "quarantine-test"
    known = mark_flaky(
        f, FlakyEvidence(known_flaky_tests={"tests/test_cache.py::test_cache_returns_fresh_value"})
    )
    assert known.category is FailureCategory.FLAKY
    assert "test_cache_returns_fresh_value" in known.captures["flaky_tests"]
    said = mark_flaky(f, "job test passed on the same commit in attempt 2")
    assert said.category is FailureCategory.FLAKY and f.category is FailureCategory.TEST
