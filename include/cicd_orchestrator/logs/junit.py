"""JUnit XML test reports (pytest --junitxml, Maven Surefire, Gradle, jest-junit, go-junit).

Read incrementally (``iterparse``, elements cleared as they are done), so a large report is
read in bounded memory. Entity expansion is not resolved (the expat parser of the standard
library refuses external entities and caps internal expansion). A report that does not parse
yields what was read before the error, and the error in ``warnings``.
"""

from __future__ import annotations

import io
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_CASES = 10_000
MAX_MESSAGE = 2000


@dataclass
class TestCaseResult:
    """One failed (or erroring) test case."""

    __test__ = False  # not a pytest class

    id: str
    classname: str
    name: str
    file: str | None = None
    kind: str = "failure"  # failure | error
    message: str = ""
    text: str = ""


@dataclass
class JUnitReport:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: list[TestCaseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed_ids(self) -> list[str]:
        return [t.id for t in self.failed]


def _test_id(classname: str, name: str, file: str | None) -> str:
    """pytest-style ``path/to/test_x.py::test_y`` when the file is known, else ``Class.name``."""
    if file and file.endswith(".py"):
        parts = classname.split(".")
        cls = [p for p in parts if p[:1].isupper()]
        return "::".join([file, *cls[-1:], name])
    return f"{classname}.{name}" if classname else name


def _case(elem: ET.Element) -> TestCaseResult | None:
    bad = next((c for c in elem if c.tag in ("failure", "error")), None)
    if bad is None:
        return None
    classname = elem.get("classname", "") or ""
    name = elem.get("name", "") or ""
    file = elem.get("file")
    return TestCaseResult(
        id=_test_id(classname, name, file),
        classname=classname,
        name=name,
        file=file,
        kind=bad.tag,
        message=(bad.get("message") or "")[:MAX_MESSAGE],
        text=(bad.text or "").strip()[:MAX_MESSAGE],
    )


def read_junit(source: BinaryIO | str | Path | bytes) -> JUnitReport:
    """Failed test ids and messages of a JUnit XML report (file, path or bytes)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    report = JUnitReport()
    try:
        for _event, elem in ET.iterparse(source, events=("end",)):
            if elem.tag == "testcase":
                report.tests += 1
                case = _case(elem)
                if case is not None:
                    if case.kind == "failure":
                        report.failures += 1
                    else:
                        report.errors += 1
                    if len(report.failed) < MAX_CASES:
                        report.failed.append(case)
                elif any(c.tag == "skipped" for c in elem):
                    report.skipped += 1
                elem.clear()
    except (ET.ParseError, OSError) as exc:
        report.warnings.append(f"JUnit report does not parse: {exc}")
        log.warning("JUnit report does not parse: %s", exc)
    return report
