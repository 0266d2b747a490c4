"""The baseline: the normalised lines of a passing log of the same job, as a bounded hash set.

A line of the failing log that, once normalised (timestamps, durations, hashes, temporary
paths, ids...), also appears in the pass log is noise. The pass log is read once; the set
keeps 64-bit hashes only: of every line while the log is small, of its candidate lines (the
prefilter's hits, the only ones the excerpt scorer looks at) beyond that, and of at most
``max_entries`` lines in all.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from cicd_orchestrator.logs.normalize import clean_line, line_hash
from cicd_orchestrator.logs.prefilter import Searcher
from cicd_orchestrator.logs.reader import LogReader

log = logging.getLogger(__name__)

FULL_HASH_LINES = 60_000
MAX_ENTRIES = 400_000


class Baseline:
    """A bounded set of normalised-line hashes."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.hashes: set[int] = set()
        self.full = False
        self.lines = 0
        self.warnings: list[str] = []

    def __len__(self) -> int:
        return len(self.hashes)

    def add(self, text: str) -> None:
        if len(self.hashes) >= self.max_entries:
            if not self.full:
                self.full = True
                self.warnings.append(f"baseline capped at {self.max_entries} distinct lines")
            return
        self.hashes.add(line_hash(text))

    def contains(self, text: str) -> bool:
        return line_hash(text) in self.hashes

    @classmethod
    def from_lines(cls, lines: list[str], max_entries: int = MAX_ENTRIES) -> Baseline:
        base = cls(max_entries)
        for text in lines:
            base.add(text)
        base.lines = len(lines)
        return base

    @classmethod
    def from_stream(
        cls, stream: BinaryIO, searcher: Searcher, max_entries: int = MAX_ENTRIES
    ) -> Baseline:
        base = cls(max_entries)
        reader = LogReader(stream)
        for block in reader.blocks():
            data = block.data
            if block.first_line <= FULL_HASH_LINES:
                for raw in data.decode("utf-8", errors="replace").split("\n")[:-1]:
                    base.add(clean_line(raw))
                continue
            pos = 0
            hay = searcher.prepare(data)
            while True:
                m = searcher.search(hay, pos, len(data))
                if m is None:
                    break
                ls = data.rfind(b"\n", 0, m.start()) + 1
                le = data.find(b"\n", m.start())
                base.add(clean_line(data[ls:le].decode("utf-8", errors="replace")))
                pos = le + 1
        base.lines = reader.stats.lines
        base.warnings.extend(f"baseline: {w}" for w in reader.stats.summary())
        log.debug("baseline: %d lines, %d hashes", base.lines, len(base.hashes))
        return base
