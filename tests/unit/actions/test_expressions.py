"""GitHub Actions expressions: literals, operators, functions, conditions, interpolation."""

from __future__ import annotations

import pytest

from cicd_orchestrator.actions.expressions import (
    ExpressionError,
    evaluate,
    evaluate_condition,
    interpolate,
)
from cicd_orchestrator.exceptions import WorkflowError

CTX = {
    "github": {"ref": "refs/heads/main", "event_name": "push", "run_attempt": "2"},
    "env": {"GREETING": "Hello", "EMPTY": ""},
    "matrix": {"python": "3.11", "os": "ubuntu"},
    "needs": {"build": {"result": "success", "outputs": {"version": "1.2.3"}}},
    "secrets": {"TOKEN": "s3cr3t"},
    "steps": {"meta": {"outputs": {"tags": "a,b"}, "outcome": "success"}},
    "list": ["alpha", "Beta", 3],
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("'it''s'", "it's"),
        ("42", 42.0),
        ("-1" if False else "0x10", 16.0),
        ("1.5", 1.5),
        ("true", True),
        ("FALSE", False),
        ("null", None),
        ("github.ref", "refs/heads/main"),
        ("GITHUB.REF", "refs/heads/main"),
        ("github['event_name']", "push"),
        ("needs.build.outputs.version", "1.2.3"),
        ("steps.meta.outputs.tags", "a,b"),
        ("github.missing.deeper", None),
        ("list[1]", "Beta"),
        ("'abc' == 'ABC'", True),
        ("'1' == 1", True),
        ("github.run_attempt == 2", True),
        ("null == 0", True),
        ("true == 1", True),
        ("'a' != 'b'", True),
        ("1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 4", False),
        ("'' || 'fallback'", "fallback"),
        ("'a' && 'b'", "b"),
        ("env.EMPTY && 'x'", ""),
        ("!env.EMPTY", True),
        ("!(1 == 1)", False),
        ("contains('Hello world', 'WORLD')", True),
        ("contains(list, 'beta')", True),
        ("contains(list, 'gamma')", False),
        ("startsWith(github.ref, 'refs/heads/')", True),
        ("endsWith(github.ref, 'MAIN')", True),
        ("format('{0} {1}!', env.GREETING, 'you')", "Hello you!"),
        ("format('{{0}} {0}', 'x')", "{0} x"),
        ("join(list, '-')", "alpha-Beta-3"),
        ("join(matrix.python)", "3.11"),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2),
        ("toJSON(matrix)", '{\n  "python": "3.11",\n  "os": "ubuntu"\n}'),
        ("${{ matrix.os == 'ubuntu' }}", True),
    ],
)
def test_evaluate(expr: str, expected: object) -> None:
    assert evaluate(expr, CTX) == expected


def test_status_functions_ask_the_caller() -> None:
    def failed(name: str) -> bool:
        return name == "failure"

    assert evaluate("failure()", CTX, failed) is True
    assert evaluate("success()", CTX, failed) is False
    assert evaluate("always()", CTX, failed) is True
    assert evaluate("cancelled()", CTX, failed) is False


@pytest.mark.parametrize(
    ("condition", "job_failed", "expected"),
    [
        (None, False, True),
        (None, True, False),
        ("", True, False),
        ("github.ref == 'refs/heads/main'", False, True),
        ("github.ref == 'refs/heads/main'", True, False),  # implicit success() &&
        ("${{ github.event_name == 'push' }}", False, True),
        ("failure()", True, True),
        ("failure()", False, False),
        ("${{ always() }}", True, True),
        ("always() && github.ref == 'refs/heads/other'", True, False),
        ("success() || failure()", True, True),
        ("cancelled()", False, False),
        ("env.EMPTY", False, False),
        ("true", False, True),
    ],
)
def test_conditions(condition: str | None, job_failed: bool, expected: bool) -> None:
    def status(name: str) -> bool:
        return {"success": not job_failed, "failure": job_failed}.get(name, False)

    assert evaluate_condition(condition, CTX, status) is expected


def test_interpolate_replaces_every_expression_and_missing_values_are_empty() -> None:
    text = "${{ env.GREETING }}, ${{ matrix.python }} on ${{ matrix.os }} [${{ secrets.NOPE }}]"
    assert interpolate(text, CTX) == "Hello, 3.11 on ubuntu []"
    assert interpolate("no expressions", CTX) == "no expressions"
    assert interpolate("${{ 1 == 1 }} ${{ 3 }} ${{ 1.5 }}", CTX) == "true 3 1.5"
    assert interpolate("${{ github.nothing }}", CTX) == ""


@pytest.mark.parametrize(
    "bad", ["1 ==", "(1", "unknown(1)", "a.", "'unterminated", "1 @ 2", "success(1)"]
)
def test_bad_expressions_raise(bad: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(bad, CTX)
    assert issubclass(ExpressionError, WorkflowError)
