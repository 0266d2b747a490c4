"""One-pass candidate-line search over raw log blocks.

The prefilter is a case-insensitive alternation of simple regexes (the pattern library's
``prefilter`` list). It runs on hyperscan when the ``hyperscan`` package is there (SIMD,
several GB/s), else on RE2's DFA (``google-re2``, several hundred MB/s); without either,
Python's ``re`` does the same work more slowly, on a lower-cased copy of the block (faster
than ``re.IGNORECASE``; ``bytes.lower`` keeps every offset).
"""

from __future__ import annotations

import bisect
import logging
import re
from typing import Any, cast

log = logging.getLogger(__name__)

try:  # optional accelerators
    import hyperscan as _hs  # type: ignore[import-not-found,import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _hs = None  # type: ignore[assignment,unused-ignore]
try:
    import re2 as _re2  # type: ignore[import-not-found,import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

_UPPER_ESCAPE = re.compile(r"\\[A-Z]")


def engine_name() -> str:
    if _hs is not None:
        return "hyperscan"
    return "re2" if _re2 is not None else "re"


class _Hit:
    """Where a hyperscan match ends (a position inside the candidate line)."""

    __slots__ = ("_at",)

    def __init__(self, at: int) -> None:
        self._at = at

    def start(self) -> int:
        return self._at


class _HyperscanSearcher:
    """The prefilter on Intel's hyperscan (SIMD, several GB/s): one scan of each block
    records where matches end; ``search`` then finds the next one by bisection."""

    engine = "hyperscan"

    def __init__(self, alternation: str) -> None:
        self.alternation = alternation
        self._db = _hs.Database()
        self._db.compile(
            expressions=[alternation.encode()],
            ids=[0],
            elements=1,
            flags=[_hs.HS_FLAG_CASELESS],
        )
        self._ends: list[int] = []

    def prepare(self, data: bytes) -> bytes:
        ends: list[int] = []

        def found(_id: int, _from: int, to: int, _flags: int, _ctx: Any) -> None:
            ends.append(to - 1)

        self._db.scan(data, match_event_handler=found)
        self._ends = ends
        return data

    def search(self, hay: bytes, pos: int, endpos: int) -> Any:
        i = bisect.bisect_left(self._ends, pos)
        if i < len(self._ends) and self._ends[i] < endpos:
            return _Hit(self._ends[i])
        return None


class Searcher:
    """Search candidate lines in bytes: ``hay = prepare(data)``, then ``search(hay, i, j)``."""

    def __init__(self, alternation: str, use_re2: bool = True) -> None:
        if _UPPER_ESCAPE.search(alternation):
            raise ValueError(
                "prefilter regexes must not use upper-case escapes (\\S, \\W, \\D, \\B)"
            )
        self.alternation = alternation
        self.lower = True
        self.engine = "re"
        self._rx: Any = None
        if use_re2 and _re2 is not None:
            try:
                opts = _re2.Options()
                opts.max_mem = 64 << 20
                opts.case_sensitive = False
                self._rx = _re2.compile(f"(?:{alternation})".encode(), opts)
                self.lower, self.engine = False, "re2"
            except Exception as exc:
                log.warning("RE2 refused the prefilter (%s); using re", exc)
        if self._rx is None:
            self._rx = re.compile(f"(?:{alternation.lower()})".encode())

    def prepare(self, data: bytes) -> bytes:
        return data.lower() if self.lower else data

    def search(self, hay: bytes, pos: int, endpos: int) -> Any:
        return self._rx.search(hay, pos, endpos)


def compile_prefilter(alternation: str, use_re2: bool = True) -> Searcher:
    """Compile the (case-insensitive) alternation: on hyperscan, else RE2, else ``re``
    (``use_re2=False``: ``re`` only)."""
    if use_re2 and _hs is not None:
        if _UPPER_ESCAPE.search(alternation):
            raise ValueError(
                "prefilter regexes must not use upper-case escapes (\\S, \\W, \\D, \\B)"
            )
        try:
            return cast(Searcher, _HyperscanSearcher(alternation))
        except Exception as exc:  # an expression hyperscan cannot compile
            log.warning("hyperscan refused the prefilter (%s); using RE2 or re", exc)
    return Searcher(alternation, use_re2)
