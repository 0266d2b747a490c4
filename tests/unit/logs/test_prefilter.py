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
