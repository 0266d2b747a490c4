"""One-pass candidate-line search over raw log blocks.

The prefilter is a case-insensitive alternation of simple regexes (the pattern library's
``prefilter`` list). With the optional ``google-re2`` package it runs on RE2's DFA (several
hundred MB/s); without it, Python's ``re`` does the same work more slowly, on a lower-cased
copy of the block (faster than ``re.IGNORECASE``; ``bytes.lower`` keeps every offset).
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger(__name__)

try:  # optional accelerator
    import re2 as _re2  # type: ignore[import-not-found,import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

_UPPER_ESCAPE = re.compile(r"\\[A-Z]")


def engine_name() -> str:
    return "re2" if _re2 is not None else "re"


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
    """Compile the (case-insensitive) alternation for :class:`Searcher` use."""
    return Searcher(alternation, use_re2)
