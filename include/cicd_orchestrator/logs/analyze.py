"""Analyse one job log: format, steps, failure excerpts, classification, in one streaming pass.

``analyze_log`` is the entry point that the CLI, the benchmark and the orchestrator's
discovery tasks share. It reads the (possibly multi-GB, possibly binary) log once in bounded
memory, optionally with the pass log of the same job as a baseline of noise, and returns a
:class:`LogAnalysis` of plain values.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.baseline import Baseline
from cicd_orchestrator.logs.categorize import categorize
from cicd_orchestrator.logs.excerpts import EXCERPT_LINES, ExcerptScanner, Region
from cicd_orchestrator.logs.formats import (
    FORMATS,
    LogStep,
    StepTracker,
    detect_format,
    is_full_github,
)
from cicd_orchestrator.logs.normalize import signature
from cicd_orchestrator.logs.patterns import PatternLibrary, PatternMatch, load_library
from cicd_orchestrator.logs.prefilter import Searcher, compile_prefilter
from cicd_orchestrator.logs.reader import DEFAULT_BLOCK_SIZE, LogReader, WindowScanner
from cicd_orchestrator.logs.scoring import GO_FAIL
from cicd_orchestrator.models import Excerpt

log = logging.getLogger(__name__)

MAX_TESTS = 200
_MARKUP = re.compile(r"^##\[(?:error|warning|notice)\]\s*")  # GitHub's annotation markers

_TEST_IDS = [
    re.compile(r"^(?:FAILED|ERROR) (\S+::\S+?)(?: - .*)?$"),
    re.compile(GO_FAIL + r"(\S+)"),
    re.compile(r"^([\w.$]+ > .+?) FAILED$"),
    re.compile(r"^test (\S+) \.\.\. FAILED"),
    re.compile("^\\s*\u25cf (.+ \u203a .+)$"),  # jest: bullet, suite, chevron, test
    re.compile(r"^(?:\[ERROR\] )?([\w.$]+\.[\w$]+)\s+Time elapsed: .*<<< (?:FAILURE|ERROR)!"),
    re.compile(r"^(?:\[ERROR\] )?Tests run: .*<<< (?:FAILURE|ERROR)! - in ([\w.$]+)"),
]


@dataclass
class LogAnalysis:
    """Everything the analysis of one job log found."""

    format: str
    steps: list[LogStep] = field(default_factory=list)
    excerpts: list[Excerpt] = field(default_factory=list)
    category: FailureCategory = FailureCategory.UNKNOWN
    confidence: float = 0.0
    signature: str = ""
    pattern: str | None = None
    recipe: str | None = None
    captures: dict[str, str] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: int = 0
    bytes: int = 0
    message: str = ""
    needs_person: bool = False
    evidence: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why the category

    @property
    def failed_step(self) -> LogStep | None:
        failed = [s for s in self.steps if s.conclusion in ("failure", "cancelled")]
        if failed:
            return failed[0]
        if self.excerpts:
            first = self.excerpts[0].start
            for step in self.steps:
                if step.start <= first <= step.end:
                    return step
        return None


@functools.lru_cache(maxsize=4)
def _searcher(alternation: str) -> Searcher:
    return compile_prefilter(alternation)


def warm() -> None:
    """Load the packaged pattern library and compile its prefilter now (about a tenth of a
    second), for the processes forked from this one to have them: the components that fork
    task processes call it once (``cicd_orchestrator.airflow.preload``)."""
    _searcher(load_library().prefilter_regex())


def _resolve_format(fmt: str, sample: str) -> tuple[str, bool]:
    if fmt == "auto":
        fmt = detect_format(sample)
    return fmt, fmt == "github" and is_full_github(sample)


def _failed_tests(regions: list[Region]) -> list[str]:
    seen: dict[str, None] = {}
    for region in regions:
        for text in region.all_lines:
            for rx in _TEST_IDS:
                m = rx.search(text)
                if m and len(seen) < MAX_TESTS:
                    seen.setdefault(m.group(1).strip(), None)
                    break
    return list(seen)


def _evidence(region: Region, rank: int) -> list[tuple[int, int | None, str]]:
    """The region's lines (head and tail) and its best-scored lines, for the patterns."""
    out: list[tuple[int, int | None, str]] = [
        (rank, region.start + i, t) for i, t in enumerate(region.lines)
    ]
    out += [(rank, None, t) for t in region.tail]
    out += [(rank, n, t) for _, n, t in region.key]
    return out


def _excerpt(
    region: Region, library: PatternLibrary, rank: int
) -> tuple[Excerpt, PatternMatch | None]:
    match = library.best_match(_evidence(region, rank))
    start, end, text = region.window(EXCERPT_LINES)
    ex = Excerpt(
        start=start,
        end=end,
        text=text,
        category=match.pattern.category if match else FailureCategory.UNKNOWN,
        pattern=match.pattern.id if match else None,
        score=round(region.final, 3),
    )
    return ex, match


def _shown(region: Region) -> list[str]:
    """What a person reads of a region: its excerpt's lines and its telling lines."""
    _, _, text = region.window(EXCERPT_LINES)
    return [*text.split("\n"), *(t for _, _, t in region.key)]


def _classify(
    analysis: LogAnalysis, regions: list[Region], library: PatternLibrary, names: list[str]
) -> None:
    evidence: list[tuple[int, int | None, str]] = []
    for rank, region in enumerate(regions):
        evidence.extend(_evidence(region, rank))
    match = library.best_match(evidence)
    top = regions[0] if regions else None
    matched = None
    if match is not None and match.rank == 0:  # a known cause decides where the job failed
        pat = match.pattern
        matched = (pat.category, pat.confidence, pat.id, match.text)
    verdict = categorize([_shown(r) for r in regions], names, matched)
    analysis.category, analysis.confidence = verdict.category, verdict.confidence
    analysis.reasons = verdict.reasons
    if match is not None:
        pat = match.pattern
        analysis.pattern = pat.id
        analysis.recipe = pat.recipe
        analysis.captures = dict(match.captures)
        analysis.message = match.message
        analysis.needs_person = pat.needs_person
        analysis.evidence = [match.text] + [
            t for t in (top.key_lines() if top else []) if t != match.text
        ]
        analysis.signature = signature([match.text], salt=pat.id)
    elif top is not None:
        analysis.evidence = top.key_lines()
        analysis.message = _MARKUP.sub("", analysis.evidence[0]) if analysis.evidence else ""
        analysis.signature = signature(analysis.evidence, salt="unknown")
    else:
        analysis.signature = signature([], salt="empty")


def analyze_log(
    stream: BinaryIO,
    baseline: BinaryIO | None = None,
    fmt: str = "auto",
    *,
    library: PatternLibrary | None = None,
    max_excerpts: int = 5,
    block_size: int = DEFAULT_BLOCK_SIZE,
    names: Sequence[str] = (),
) -> LogAnalysis:
    """Read ``stream`` once (bounded memory) and say why the job failed.

    ``baseline`` is the pass log of the same job (optional). ``fmt`` is ``auto`` or one of
    ``github``, ``gitlab``, ``jenkins``, ``travis``, ``plain``. ``names``: the job's name
    (and any other name the caller knows), for the category
    (:func:`~cicd_orchestrator.logs.categorize.categorize`) after the failed step's. Never
    raises on the log's content; bad bytes and binary lines are counted in ``warnings``.
    """
    if fmt not in ("auto", *FORMATS):
        raise ValueError(f"unknown log format {fmt!r} (github, gitlab, jenkins, plain or auto)")
    library = library or load_library()
    searcher = _searcher(library.prefilter_regex())
    base = Baseline.from_stream(baseline, searcher) if baseline is not None else None
    reader = LogReader(stream, block_size=block_size)
    state: dict[str, Any] = {}

    def scan(buf: bytes, first_line: int, lo: int, hi: int) -> int:
        scanner = state.get("scanner")
        if scanner is None:
            fmt_, step_column = _resolve_format(fmt, buf[:65536].decode("utf-8", "replace"))
            tracker = StepTracker(fmt_)
            tracker.column_steps = step_column
            scanner = ExcerptScanner(searcher, tracker, base, step_column=step_column)
            state.update(scanner=scanner, tracker=tracker, fmt=fmt_)
        return int(scanner.feed(buf, first_line, lo, hi))

    total = WindowScanner(reader).run(scan)
    if "scanner" not in state:  # an empty log
        scan(b"", 1, 0, 0)
    scanner, tracker, fmt = state["scanner"], state["tracker"], state["fmt"]
    steps = tracker.finish(total)
    regions = scanner.finish(total, steps, limit=max(max_excerpts, 1))
    analysis = LogAnalysis(format=fmt, steps=steps, lines=total, bytes=reader.stats.bytes)
    analysis.warnings = reader.stats.summary() + (base.warnings if base else [])
    if tracker.overflow:
        analysis.warnings.append("too many steps: the last ones are merged")
    for rank, region in enumerate(regions[:max_excerpts]):
        ex, _ = _excerpt(region, library, rank)
        analysis.excerpts.append(ex)
    failed = analysis.failed_step
    _classify(
        analysis, regions[:max_excerpts], library, [*([failed.name] if failed else []), *names]
    )
    analysis.tests = _failed_tests(regions)
    log.debug("analysed %d lines (%s): %s", total, fmt, analysis.pattern)
    return analysis


def analyze_path(
    path: str | Path,
    baseline: str | Path | None = None,
    fmt: str = "auto",
    names: Sequence[str] = (),
) -> LogAnalysis:
    """``analyze_log`` over files (raises OSError when a file cannot be opened)."""
    with open(path, "rb") as fh:
        if baseline is None:
            return analyze_log(fh, None, fmt, names=names)
        with open(baseline, "rb") as bh:
            return analyze_log(fh, bh, fmt, names=names)


def analyze_text(
    text: str, baseline: str | None = None, fmt: str = "auto", names: Sequence[str] = ()
) -> LogAnalysis:
    """``analyze_log`` over strings (for tasks that already hold the log)."""
    base = io.BytesIO(baseline.encode("utf-8", "replace")) if baseline is not None else None
    return analyze_log(io.BytesIO(text.encode("utf-8", "replace")), base, fmt, names=names)
