"""Real output of the toolchains (compilers, test runners, linters, package managers), run on
small projects that each fail in one way, read as a Travis CI and a GitHub Actions job print
it: the first excerpt holds the lines a person would paste, and the category is theirs.

A case the reader still gets wrong says so in the manifest; it is expected to fail, and the
test fails when it stops failing, so that the manifest stays true."""

from __future__ import annotations

import pytest
from cicd_devkit import datasets

from cicd_orchestrator.logs.analyze import analyze_text

CASES = datasets.toolchain_cases()


def test_the_corpus_is_whole() -> None:
    assert len(CASES) >= 100
    for case in CASES:
        lines = case.output.read_text(encoding="utf-8").splitlines()
        assert 1 <= case.first <= case.last <= len(lines), case.id
        assert case.last - case.first < 25, case.id
        assert case.category in {"build", "test", "quality", "configuration", "infrastructure"}


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        pytest.param(
            c,
            kind,
            id=f"{c.id}-{kind}",
            marks=[pytest.mark.xfail(strict=True, reason=c.misses(kind))] if c.misses(kind) else [],
        )
        for c in CASES
        for kind in datasets.WRAPPERS
    ],
)
def test_a_real_failure_is_read_as_a_person_reads_it(
    case: datasets.ToolchainCase, kind: str
) -> None:
    text, before = datasets.wrap_output(kind, case.command, case.output.read_text("utf-8"))
    analysis = analyze_text(text)
    assert analysis.excerpts, "no excerpt"
    first = analysis.excerpts[0]
    start, end = first.start - before, first.end - before
    assert case.read_well(start, end), (
        f"first excerpt {start}-{end}, the person's lines {case.first}-{case.last}"
    )
    assert str(analysis.category) == case.category, analysis.reasons
