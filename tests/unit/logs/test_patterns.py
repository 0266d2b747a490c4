from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import analyze_path
from cicd_orchestrator.logs.categorize import GENERIC_CAUSE
from cicd_orchestrator.logs.normalize import clean_line
from cicd_orchestrator.logs.patterns import (
    DEFAULT_LIBRARY,
    PatternLibraryError,
    load_library,
    load_library_data,
)
from cicd_orchestrator.logs.scoring import SUMMARY

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "logs" / "patterns"
LIBRARY = load_library()
IDS = [p.id for p in LIBRARY.patterns]


def test_library_is_broad() -> None:
    cats = {p.category.value for p in LIBRARY.patterns}
    assert cats == {
        "build",
        "test",
        "quality",
        "deployment",
        "configuration",
        "infrastructure",
        "flaky",
    }
    assert len(LIBRARY.patterns) >= 60


@pytest.mark.parametrize("pid", IDS)
def test_every_pattern_matches_its_fixture_and_wins(pid: str) -> None:
    path = FIXTURES / f"{pid}.log"
    assert path.is_file(), f"no fixture for {pid}"
    pattern = LIBRARY.by_id[pid]
    lines = [clean_line(line) for line in path.read_text().splitlines()]
    assert any(pattern.search(line) is not None for line in lines)
    prefilter = re.compile(LIBRARY.prefilter_regex(), re.I)
    assert any(prefilter.search(line) for line in lines if pattern.search(line) is not None)
    analysis = analyze_path(path)
    assert analysis.pattern == pid
    assert analysis.recipe == pattern.recipe
    matched = [line for line in lines if pattern.search(line) is not None]
    if pattern.confidence <= GENERIC_CAUSE or all(SUMMARY.search(line) for line in matched):
        # a tool's catch-all ("Failed to execute goal <any>") or its last words ("error
        # Command failed"): the evidence and the step decide
        assert analysis.category is not FailureCategory.UNKNOWN
    else:
        assert analysis.category is pattern.category


def test_captures_feed_the_message() -> None:
    a = analyze_path(FIXTURES / "missing-secret.log")
    assert a.captures["secret"] == "DOCS_TOKEN"
    assert "DOCS_TOKEN" in a.message and a.needs_person
    m = analyze_path(FIXTURES / "python-module-not-found.log")
    assert m.captures["module"] == "yaml"
    s = analyze_path(FIXTURES / "python-syntax-error.log")
    assert s.captures["file"].endswith("credit.py") and s.captures["line"] == "7"
    t = analyze_path(FIXTURES / "yaml-tab-indent.log")
    assert t.captures["line"] == "21" and t.recipe == "manifest-whitespace"
    d = analyze_path(FIXTURES / "deprecated-action.log")
    assert d.captures["action"] == "actions/upload-artifact" and d.captures["version"] == "v3"


def _data() -> dict:
    return yaml.safe_load(DEFAULT_LIBRARY.read_text())


def test_invalid_library_gives_a_clear_error() -> None:
    data = _data()
    data["patterns"][0]["category"] = "weather"
    with pytest.raises(PatternLibraryError, match=r"patterns/0/category"):
        load_library_data(data, "bad.yaml")
    data = _data()
    del data["patterns"][3]["recipe"]
    with pytest.raises(PatternLibraryError, match="recipe"):
        load_library_data(data, "bad.yaml")


def test_bad_regex_and_duplicate_ids_are_refused() -> None:
    data = _data()
    data["patterns"][1]["indications"] = ["(unclosed"]
    with pytest.raises(PatternLibraryError, match="not a valid regex"):
        load_library_data(data)
    data = _data()
    data["patterns"][1]["id"] = data["patterns"][0]["id"]
    with pytest.raises(PatternLibraryError, match="duplicate"):
        load_library_data(data)


@pytest.mark.parametrize(
    "rx", [r"(?P<package>[\w.-]+) [\d.]+ requires", r"\d+ fixable", r"[^\s:]+\.ts:", r".*boom"]
)
def test_a_regex_tried_at_every_character_of_a_long_run_is_refused(rx: str) -> None:
    """A log line is the attacker's to write: ``(?P<package>[\\w.-]+) requires`` against
    a line of 100,000 letters tries each start, each to the end of the line."""
    for where in ("indications", "extra"):
        data = _data()
        data["patterns"][1][where] = [rx]
        with pytest.raises(PatternLibraryError, match="begins with a repeated character class"):
            load_library_data(data)


@pytest.mark.parametrize(
    "rx", [r"(?<![\w.-])(?P<package>[\w.-]+) [\d.]+ requires", r"^\d+ fixable", r"\bx\d+ fixable"]
)
def test_an_anchored_run_loads(rx: str) -> None:
    data = _data()
    data["patterns"][1]["indications"] = [rx]
    assert load_library_data(data).patterns[1].indications[0].pattern == rx


def test_unreadable_library(tmp_path: Path) -> None:
    with pytest.raises(PatternLibraryError):
        load_library(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("patterns: [\n")
    with pytest.raises(PatternLibraryError, match="not valid YAML"):
        load_library(bad)


@pytest.mark.parametrize(
    "line",
    [
        "##[error]The job running on runner cicd-orchestrator-local has exceeded the maximum "
        "execution time of 0.05 minutes.",
        "##[error]The job running on runner GitHub Actions 3 has exceeded the maximum execution "
        "time of 15 minutes.",
        "##[error]The action has timed out.",
    ],
    ids=["fractional-minutes", "whole-minutes", "step-timeout"],
)
def test_a_job_or_step_past_its_time_limit_is_a_timeout(line: str) -> None:
    from cicd_orchestrator.logs.analyze import analyze_text

    log = (
        "2024-05-01T10:00:00.1234567Z ##[group]Run sleep 100000\n"
        "2024-05-01T10:00:00.1234567Z sleep 100000\n"
        "2024-05-01T10:00:00.1234567Z ##[endgroup]\n"
        f"2024-05-01T10:00:03.1234567Z {line}\n"
    )
    analysis = analyze_text(log)
    assert analysis.pattern == "job-timeout"
    assert analysis.message.startswith("The job timed out")


def test_the_packaged_library_holds_to_its_schema() -> None:
    """It is loaded without the schema check at each start: this is that check."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(DEFAULT_LIBRARY.read_text(encoding="utf-8"), Loader=loader)
    assert load_library_data(data, str(DEFAULT_LIBRARY)).prefilter == LIBRARY.prefilter
