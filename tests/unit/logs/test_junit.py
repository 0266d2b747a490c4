from __future__ import annotations

from pathlib import Path

from cicd_orchestrator.logs.junit import read_junit


def test_junit_failed_ids_and_messages(log_fixtures: Path) -> None:
    report = read_junit(log_fixtures / "junit_report.xml")
    assert (report.tests, report.failures, report.errors, report.skipped) == (4, 1, 1, 1)
    assert report.failed_ids == [
        "tests/test_totals.py::test_line_total_rounds_half_up",
        "tests/test_cache.py::TestCache::test_fresh",
    ]
    assert "Decimal('1.01')" in report.failed[0].message


def test_junit_without_file_attribute_uses_class_name() -> None:
    xml = (
        b'<testsuite><testcase classname="org.acme.FooTest" name="bar">'
        b'<failure message="x"/></testcase></testsuite>'
    )
    assert read_junit(xml).failed_ids == ["org.acme.FooTest.bar"]


def test_junit_broken_report_is_survived() -> None:
    report = read_junit(b"<testsuite><testcase name='a'><failure/></testcase><testcase")
    assert report.failed_ids == ["a"]
    assert report.warnings
