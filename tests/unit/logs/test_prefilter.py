from __future__ import annotations

from pathlib import Path

import pytest

from cicd_orchestrator.logs.analyze import analyze_path


def test_prefilter_engines_agree(monkeypatch: pytest.MonkeyPatch, log_fixtures: Path) -> None:
    from cicd_orchestrator.logs import analyze as analyze_mod
    from cicd_orchestrator.logs import prefilter
    from cicd_orchestrator.logs.patterns import load_library

    text = (log_fixtures / "github_fail.log").read_bytes() + b"Some ERROR here\nnothing\n"
    alternation = load_library().prefilter_regex()

    def hits(searcher: prefilter.Searcher) -> list[int]:
        hay, out, i = searcher.prepare(text), [], 0
        while (m := searcher.search(hay, i, len(hay))) is not None:
            out.append(text.count(b"\n", 0, m.start()))
            i = text.find(b"\n", m.start()) + 1
        return out

    plain = prefilter.compile_prefilter(alternation, use_re2=False)
    assert plain.engine == "re"
    fastest = prefilter.compile_prefilter(alternation)
    assert fastest.engine == prefilter.engine_name()
    assert hits(plain) == hits(fastest) == hits(prefilter.Searcher(alternation))  # re2 or re
    expected = analyze_path(log_fixtures / "github_fail.log")
    monkeypatch.setattr(prefilter, "_re2", None)
    monkeypatch.setattr(prefilter, "_hs", None)
    analyze_mod._searcher.cache_clear()
    try:
        again = analyze_path(log_fixtures / "github_fail.log")
    finally:
        analyze_mod._searcher.cache_clear()
    assert [(e.start, e.end) for e in again.excerpts] == [
        (e.start, e.end) for e in expected.excerpts
    ]


@pytest.mark.parametrize(
    "line",
    [
        "tests/unit/test_api.py::test_get_session PASSED                        [ 42%]",
        "test_parse (tests.test_parser.ParserTest) ... ok",
        "[ RUN      ] spec/stack_spec.lua @ 5: a stack starts empty",
        "Compiling ShellCheck.Data  ( src/ShellCheck/Data.hs, dist/build/ShellCheck/Data.o )",
        "Downloading https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
    ],
)
def test_a_line_that_says_nothing_of_a_failure_is_no_candidate(line: str) -> None:
    """The prefilter is what keeps reading fast: the lines of a passing run stay out of it."""
    from cicd_orchestrator.logs import prefilter
    from cicd_orchestrator.logs.patterns import load_library

    searcher = prefilter.compile_prefilter(load_library().prefilter_regex())
    data = line.encode() + b"\n"
    assert searcher.search(searcher.prepare(data), 0, len(data)) is None
