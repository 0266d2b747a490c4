"""One classifier: a category for every failure, from the toolchains' output and names."""

from __future__ import annotations

import pytest
from cicd_devkit import datasets

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import analyze_text
from cicd_orchestrator.logs.categorize import categorize

C = FailureCategory


@pytest.mark.parametrize(
    ("lines", "category"),
    [
        (["src/main.c:12:5: error: 'x' undeclared (first use in this function)"], C.BUILD),
        (["error[E0425]: cannot find value `y` in this scope"], C.BUILD),
        (["[error] /w/src/Foo.scala:3:8: object bar is not a member of package foo"], C.BUILD),
        (
            ["npm ERR! code ERESOLVE", "npm ERR! ERESOLVE unable to resolve dependency tree"],
            C.BUILD,
        ),
        (["  AssertionError: expected 1 to equal 2"], C.TEST),
        (["not ok 3 - adds two numbers"], C.TEST),
        (["--- FAIL: TestParse (0.01s)"], C.TEST),
        (
            ["app/models/user.rb:4:3: C: Style/StringLiterals: Prefer single-quoted strings."],
            C.QUALITY,
        ),
        (["would reformat src/app.py", "1 file would be reformatted"], C.QUALITY),
        (["src/a.py:1:1: F401 'os' imported but unused"], C.QUALITY),
        (["./ci/run.sh: line 3: ./scripts/setup.sh: No such file or directory"], C.CONFIGURATION),
        (["bash: rake: command not found"], C.CONFIGURATION),
        (
            ["curl: (7) Failed to connect to example.org port 443: Connection refused"],
            C.INFRASTRUCTURE,
        ),
        (
            ["No output has been received in the last 10m0s, this potentially indicates"],
            C.INFRASTRUCTURE,
        ),
        (['The command "bin/test" failed. Retrying, 2 of 3.', "flaky test detected"], C.FLAKY),
    ],
)
def test_the_shapes_of_the_toolchains(lines: list[str], category: FailureCategory) -> None:
    verdict = categorize([lines])
    assert verdict.category is category, verdict
    assert 0 < verdict.confidence <= 0.95 and verdict.reasons


def test_names_decide_when_the_lines_say_nothing_and_summaries_never_vote() -> None:
    assert categorize([["something odd"]], ["bundle exec rubocop"]).category is C.QUALITY
    assert categorize([["something odd"]], ["Deploy to production"]).category is C.DEPLOYMENT
    assert categorize([["something odd"]], ["npm test"]).category is C.TEST
    summary_only = categorize([["npm ERR! Test failed.  See above for more details."]])
    assert summary_only.category is C.UNKNOWN  # it says that something failed, not what
    assert categorize([[]], []).category is C.UNKNOWN


def test_a_known_cause_decides_unless_it_is_only_a_summary() -> None:
    lines = [["src/a.py:1:1: F401 'os' imported but unused"]]
    known = categorize(lines, [], (C.BUILD, 0.9, "some-cause", "ModuleNotFoundError: x"))
    assert known.category is C.BUILD and known.reasons[0] == "the known cause 'some-cause'"
    last_words = categorize(lines, [], (C.BUILD, 0.5, "npm-error", "npm ERR! Exit status 1"))
    assert last_words.category is C.QUALITY


def test_the_cli_and_the_sessions_share_the_names() -> None:
    """The failed step the log shows counts; the job's name given by the caller too."""
    log = (
        "2024-05-01T10:00:00.0000000Z ##[group]Run ./ci.sh\n"
        "2024-05-01T10:00:00.0000000Z something odd happened\n"
        "2024-05-01T10:00:01.0000000Z ##[error]Process completed with exit code 1.\n"
    )
    assert analyze_text(log).category is C.UNKNOWN
    assert analyze_text(log, names=["lint"]).category is C.QUALITY


def test_the_logchunks_labels_cover_the_dataset_with_a_reason_each() -> None:
    path = datasets.LOGCHUNKS_LABELS
    rows = [ln.split("\t") for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert len(rows) == 778 and len({r[0] for r in rows}) == 778
    allowed = {c.value for c in FailureCategory}
    for row in rows:
        assert len(row) == 3 and row[1] in allowed and row[2].strip(), row
    assert sum(r[1] == "unknown" for r in rows) == 0
    if datasets.LOGCHUNKS.is_dir():
        on_disk = {
            str(p.parent.relative_to(datasets.LOGCHUNKS))
            for p in datasets.LOGCHUNKS.glob("*/*/*/label.json")
        }
        assert on_disk == {r[0] for r in rows}
