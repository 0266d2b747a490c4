"""Failure excerpts: the few regions of a log that say why the job failed.

The scanner sees each block of the log once, through a window (a few lines of the previous
block, the block, the first lines of the next one). The prefilter finds the candidate lines;
each is cleaned, scored (:mod:`scoring`), checked against the baseline, extended over the
lines that continue it (stack frames, details, carets, what a line ending in ":" announces,
a test runner's indented failure block across its blank lines, the numbered name of the
failed test just above) and merged with its neighbours into a region. The lines just before
a step's failure marker (``##[error]Process completed with exit code``, ``Build step ...
marked build as failure``, Travis' ``The command "..." exited with N``) form a region of
their own. A line that only restates a failure (a runner's summary) scores low
(:data:`~cicd_orchestrator.logs.scoring.SUMMARY`). Regions are kept in bounded structures
(the best by score and the most recent), so memory does not grow with the log; at the end
they are ranked with what only the end knows: how close they are to the final failure
marker, to the end of the log, and whether they lie in a failed step. When the best region
is one of several failures of the same kind in that step, the first of them leads
(:func:`_first_of_its_kind`).
"""

from __future__ import annotations

import heapq
import logging
import math
import re
from collections import deque
from dataclasses import dataclass, field

from cicd_orchestrator.logs import scoring
from cicd_orchestrator.logs.baseline import Baseline
from cicd_orchestrator.logs.formats import LogStep, StepTracker
from cicd_orchestrator.logs.normalize import clean_line, strip_ansi
from cicd_orchestrator.logs.prefilter import Searcher
from cicd_orchestrator.logs.scoring import (
    DIFF_BODY,
    DIFF_FILE,
    DIFF_HUNK,
    FINAL_MARKER,
    STEP_END_MARKER,
    SUMMARY,
    is_continuation,
    score_line,
)

log = logging.getLogger(__name__)

MIN_SCORE = 0.9
GAP = 2
HEAD_KEEP = 40
TAIL_KEEP = 20
MAX_EXTENT = 400
BACK_LINES = 6
BACKWARD = re.compile(r'^(?:E\s+)?\s*File "|^E\s{3,}\S|^\s{2,}\S|^>\s')
GO_FAIL = re.compile(scoring.GO_FAIL)
#: what a go test logged (above its ``--- FAIL:`` line under ``-v``)
GO_TEST_LOG = re.compile(r"^\s+\S+_test\.go:\d+: ")
#: a test runner's numbered failure: "  1) Calc adds two numbers"
NUMBERED_HEADER = re.compile(r"^\s*\d+\) \S")
INDENTED = re.compile(r"^\s+\S")
BLOCK_HEADER = re.compile(scoring.BLOCK_HEADER)
EXCEPTION_LINE = re.compile(r"^(?:E\s+)?(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception)\b")
PRE_MARKER_LINES = 8
#: how far above a line the hunk header of the diff it may be in is looked for
DIFF_LOOKBACK = 400
#: the longest excerpt (lines), and how many lines above its first key line it starts
EXCERPT_LINES = 20
WINDOW_ABOVE = 2
KEEP_BEST = 48
KEEP_RECENT = 32
NOISE_FACTOR = 0.1
STRONG_BONUS = 0.25
END_BONUS = 1.2
#: where it failed comes first: a region in the failed step (command) outranks the others
FAILED_STEP_BONUS = 2.0
END_DECAY = 150.0


@dataclass
class Region:
    """Consecutive log lines (1-based, inclusive) with their scores."""

    start: int
    end: int
    lines: list[str]
    score: float
    key: list[tuple[float, int, str]] = field(default_factory=list)
    marker: bool = False
    noise: int = 0
    seq: int = 0
    final: float = 0.0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_KEEP))
    dropped: int = 0
    #: the line a region stands for when it is not its last: a failed step's marker, for
    #: the head of the diff that the step printed last
    anchor: int | None = None

    def add(self, line: str) -> None:
        """Keep the first :data:`HEAD_KEEP` and the last :data:`TAIL_KEEP` lines."""
        if not self.tail and not self.dropped and len(self.lines) < HEAD_KEEP:
            self.lines.append(line)
            return
        if len(self.tail) == TAIL_KEEP:
            self.dropped += 1
        self.tail.append(line)

    @property
    def all_lines(self) -> list[str]:
        return [*self.lines, *self.tail]

    @property
    def text(self) -> str:
        gap = [f"... ({self.dropped} more lines)"] if self.dropped else []
        return "\n".join([*self.lines, *gap, *self.tail])

    def window(self, size: int) -> tuple[int, int, str]:
        """At most ``size`` lines of the region (start, end, text): all of it when it is that
        short, else from just above its first line that says most (the first key line
        scoring near the best), as a person would paste it."""
        if self.end - self.start + 1 <= size or not self.key:
            return self.start, min(self.end, self.start + size - 1), "\n".join(self.lines[:size])
        best = max(k[0] for k in self.key)
        first = min(n for score, n, _ in self.key if score >= 0.8 * best)
        start = max(self.start, min(first - WINDOW_ABOVE, self.end - size + 1))
        # the line that says most is shown, with the line under it (the exception at the
        # foot of a long traceback, below its frames)
        top = min(n for score, n, _ in self.key if score == best)
        start = max(start, min(top + 1, self.end) - size + 1)
        end = start + size - 1
        offset = start - self.start
        if offset + size <= len(self.lines):  # inside the head that the region keeps
            return start, end, "\n".join(self.lines[offset : offset + size])
        picked = [t for _, n, t in sorted(self.key, key=lambda k: k[1]) if start <= n <= end]
        return start, end, "\n".join(picked)

    @property
    def restates_only(self) -> bool:
        """Whether the region's telling lines only restate that something failed (a
        runner's summary, a tool's exit line). A step's last words before its failure marker,
        with nothing telling among them, are evidence of their own, not a restatement."""
        said = [t for _, _, t in self.key if not STEP_END_MARKER.search(t)]
        return bool(said) and all(SUMMARY.search(t) for t in said)

    def key_lines(self, n: int = 3) -> list[str]:
        best = sorted(self.key, key=lambda k: (-k[0], k[1]))[:n]
        return [t for _, _, t in sorted(best, key=lambda k: k[1])]

    def merge(self, other: Region, gap_lines: list[str]) -> None:
        if other.start > self.end + 1:
            fill = gap_lines if len(gap_lines) == other.start - self.end - 1 else []
            fill = fill or [""] * (other.start - self.end - 1)
            self._append(fill)
        skip = max(0, self.end - other.start + 1)
        self._append(other.all_lines[skip:])
        self.end = max(self.end, other.end)
        self.key = sorted(self.key + other.key, key=lambda k: -k[0])[:8]
        strong = sum(1 for k in self.key if k[0] >= 2.5)
        self.score = max(k[0] for k in self.key) + STRONG_BONUS * min(strong, 3)
        self.marker = self.marker or other.marker
        self.noise += other.noise

    def _append(self, lines: list[str]) -> None:
        for line in lines:
            self.add(line)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _decode(raw: bytes) -> str:
    return clean_line(raw.decode("utf-8", errors="replace"))


#: a region this telling is a failure of its own (a test's FAIL line, an assertion), not
#: noise or a progress line that mentions errors
FAILURE_SCORE = 2.5


def _lead(region: Region) -> str:
    """A region's most telling line."""
    return max(region.key, key=lambda k: k[0])[2] if region.key else ""


def _kind(region: Region) -> tuple[str, str]:
    """What a region's most telling line is, numbers masked: its shape (the first two words,
    a long word, one that joins words (a path, a name) or a linter's code (``E501``) masked:
    ``--- FAIL:``, ``not ok``, ``FAILED *``, ``* *``) and what it says (its first 48
    characters)."""
    words = re.sub(r"\d+", "0", " ".join(_lead(region).split()))
    shape = [
        w if len(w) <= 8 and not re.search(r"[\w]\W+\w|[A-Za-z]0", w) else "*"
        for w in words.split(" ")
    ]
    return " ".join(shape[:2]), words[:48]


def _first_of_its_kind(regions: list[Region], failed: list[LogStep]) -> list[Region]:
    """When the best region is one of several failures of the same kind in the same step
    (``--- FAIL: TestA`` ... ``--- FAIL: TestB``), the first of them leads, as a person reads
    the first failure first. A region whose words are like the best one's but not the same
    (a summary repeating the failure) is not another failure. One that holds the very line
    the best one leads with, among other lines, is where it was first said (Maven repeats a
    compiler's errors under "Failed to execute goal", TeX an error at each of its
    consequences), and leads; the same output twice over (a test run again) keeps the later,
    next to where the step failed."""
    top = regions[0] if regions else None
    if top is None or top.score < FAILURE_SCORE:
        return regions
    step = next((s for s in failed if s.start <= top.start <= s.end), None)
    shape, said = _kind(top)
    line = _lead(top)
    earlier = [
        r
        for r in regions[1:]
        if r.end < top.start
        and r.score >= top.score
        and (step is None or step.start <= r.start <= step.end)
        and (
            (any(k[2] == line for k in r.key) and r.all_lines != top.all_lines)
            or ((kind := _kind(r))[0] == shape and kind[1] != said)
        )
    ]
    if not earlier:
        return regions
    first = min(earlier, key=lambda r: r.start)
    return [first, *(r for r in regions if r is not first)]


class ExcerptScanner:
    """Feed windows in order; ``finish`` ranks the regions."""

    def __init__(
        self,
        searcher: Searcher,
        tracker: StepTracker,
        baseline: Baseline | None = None,
        step_column: bool = False,
    ) -> None:
        self.searcher = searcher
        self.tracker = tracker
        self.baseline = baseline
        self.step_column = step_column
        self.markers: deque[int] = deque(maxlen=16)
        self._diff_memo: tuple[bytes | None, int, bool] = (None, -1, False)
        self._best: list[tuple[float, int, Region]] = []
        self._recent: deque[Region] = deque(maxlen=KEEP_RECENT)
        self._open: Region | None = None
        self._open_end_off = -1
        self._seq = 0
        self._consumed = 0
        self._consumed_before = 0
        self._last_window = b""
        self._last_first = 1
        self._hay = b""

    # ------------------------------------------------------------------ scoring
    def _score(self, text: str) -> tuple[float, bool]:
        score = score_line(text)
        if score and self.baseline is not None and self.baseline.contains(text):
            return score * NOISE_FACTOR, True
        return score, False

    # ------------------------------------------------------------------ regions
    def _store(self, region: Region) -> None:
        self._recent.append(region)
        # of regions that score the same, the earliest stay (the first failure of a kind
        # leads); the latest are in ``_recent``
        item = (region.score, -region.seq, region)
        if len(self._best) < KEEP_BEST:
            heapq.heappush(self._best, item)
        elif item[:2] > self._best[0][:2]:
            heapq.heapreplace(self._best, item)

    def _emit(self, region: Region, window: bytes, start_off: int, end_off: int) -> None:
        """Merge ``region`` (lines from ``start_off`` to ``end_off`` of ``window``) or open it."""
        self._seq += 1
        region.seq = self._seq
        cur = self._open
        if cur is not None and region.start <= cur.end + GAP + 1:
            gap: list[str] = []
            if region.start > cur.end + 1 and 0 <= self._open_end_off <= start_off:
                gap = [_decode(r) for r in window[self._open_end_off : start_off].split(b"\n")[:-1]]
            cur.merge(region, gap)
            self._open_end_off = max(self._open_end_off, end_off)
            return
        if cur is not None:
            self._store(cur)
        self._open = region
        self._open_end_off = end_off

    # ------------------------------------------------------------------ feeding
    def feed(self, window: bytes, first_line: int, lo: int, hi: int) -> int:
        """Scan the lines starting in ``window[lo:hi]``; ``first_line`` numbers ``window[0:]``.

        Returns the line number of the line that starts at ``hi``.
        """
        self._open_end_off = -1  # offsets of an earlier window mean nothing here
        self._last_window, self._last_first = window, first_line
        hay = self._hay = self.searcher.prepare(window)
        if self.step_column:
            self._step_columns(window, first_line, lo, hi)
        pos, line_no, i = 0, first_line, lo
        while i < hi:
            m = self.searcher.search(hay, i, hi)
            if m is None:
                break
            p = m.start()
            ls = window.rfind(b"\n", 0, p) + 1
            le = window.find(b"\n", p)
            le = len(window) if le < 0 else le
            line_no += window.count(b"\n", pos, ls)
            pos = ls
            if line_no <= self._consumed:
                i = le + 1
                continue
            pos, line_no = self._handle(window, ls, le, line_no)
            i = max(le + 1, pos)
        if pos <= hi:
            return line_no + window.count(b"\n", pos, hi)
        return line_no - window.count(b"\n", hi, pos)

    def _step_columns(self, window: bytes, first_line: int, lo: int, hi: int) -> None:
        line_no = first_line + window.count(b"\n", 0, lo)
        off = lo
        while off < hi:
            e = window.find(b"\n", off)
            e = hi if e < 0 else e
            cols = window[off : min(e, off + 400)].split(b"\t", 2)
            if len(cols) == 3:
                self.tracker.observe_step_column(line_no, cols[1].decode("utf-8", "replace"))
            off, line_no = e + 1, line_no + 1

    def _handle(self, window: bytes, ls: int, le: int, line_no: int) -> tuple[int, int]:
        """Process the candidate line ``window[ls:le]``; return offset and number of the next."""
        raw = window[ls:le].decode("utf-8", errors="replace")
        text = clean_line(raw)
        self._consumed_before = self._consumed
        self._consumed = line_no
        # the step markers may hide behind a lone \r (GitLab's sections, Travis' folds)
        if self.tracker.observe(line_no, strip_ansi(raw) if "\r" in raw else text):
            return le + 1, line_no + 1
        if FINAL_MARKER.search(text):
            self.markers.append(line_no)
            if STEP_END_MARKER.search(text):
                self._pre_marker(window, ls, le, line_no, text)
            return le + 1, line_no + 1
        if text and DIFF_BODY.match(text) and self._in_diff(window, ls):
            return le + 1, line_no + 1  # the code a diff shows, not a message
        score, noise = self._score(text)
        if score < MIN_SCORE:
            return le + 1, line_no + 1
        return self._extend(window, ls, le, line_no, text, score, noise)

    def _in_diff(self, window: bytes, off: int) -> bool:
        """Whether the lines above ``off`` reach a diff's hunk header through lines a diff
        shows. The answer for the last offset asked about is kept, so that a long block of
        such lines is walked once, not once per line."""
        memo_window, memo_off, memo = self._diff_memo
        start, n, found = off, 0, False
        while off > 0 and n < DIFF_LOOKBACK:
            s = window.rfind(b"\n", 0, off - 1) + 1
            prev = _decode(window[s : off - 1])
            n, off = n + 1, s
            if DIFF_HUNK.match(prev):
                found = True
                break
            if not DIFF_BODY.match(prev):
                break
            if off == memo_off and memo_window is window:
                found = memo
                break
        self._diff_memo = (window, start, found)
        return found

    @staticmethod
    def _diff_head(window: bytes, off: int) -> tuple[int, int] | None:
        """The unified diff whose lines run down to ``off``: the offset of its first file
        header, and how many lines above ``off`` it is."""
        head: tuple[int, int] | None = None
        n = 0
        while off > 0 and n < DIFF_LOOKBACK:
            s = window.rfind(b"\n", 0, off - 1) + 1
            prev = _decode(window[s : off - 1])
            n, off = n + 1, s
            if DIFF_FILE.match(prev):
                head = (off, n)
            elif not (DIFF_HUNK.match(prev) or DIFF_BODY.match(prev)):
                break
        return head

    def _back(
        self, window: bytes, ls: int, line_no: int, belongs: re.Pattern[str] = BACKWARD
    ) -> tuple[list[str], int]:
        """Lines just above a line that belong to it (``belongs``: the frames above an
        exception, ``File "x.py", line 7``, ...)."""
        back: list[str] = []
        off = ls
        while (
            off > 0 and len(back) < BACK_LINES and line_no - len(back) - 1 > self._consumed_before
        ):
            s = window.rfind(b"\n", 0, off - 1) + 1
            prev = _decode(window[s : off - 1])
            if not belongs.match(prev):
                break
            back.append(prev)
            off = s
        back.reverse()
        return back, off

    def _numbered_header(
        self, window: bytes, ls: int, line_no: int, depth: int
    ) -> tuple[list[str], int]:
        """A test runner's numbered failure (``  1) test adds (CalcTest)``) a few lines above
        a line indented deeper, with the lines between (its place): those lines, else none."""
        back, off = self._back(window, ls, line_no, INDENTED)
        for i in range(len(back) - 1, -1, -1):
            if _indent(back[i]) < depth and NUMBERED_HEADER.match(back[i]):
                for _ in range(i):  # past the lines above the header
                    off = window.find(b"\n", off) + 1
                return back[i:], off
            if _indent(back[i]) < depth:
                break
        return [], ls

    def _extend(
        self, window: bytes, ls: int, le: int, line_no: int, text: str, score: float, noise: bool
    ) -> tuple[int, int]:
        back: list[str] = []
        if EXCEPTION_LINE.match(text):
            back, ls = self._back(window, ls, line_no)
        elif GO_FAIL.match(text):  # go test -v logs a test's messages before its result
            back, ls = self._back(window, ls, line_no, GO_TEST_LOG)
        else:  # the numbered name of the failed test above its details (RSpec, ExUnit)
            back, ls = self._numbered_header(window, ls, line_no, _indent(text))
        region = Region(line_no - len(back), line_no, [*back, text], 0.0, [(score, line_no, text)])
        n_noise = int(noise)
        off, last = le + 1, line_no
        depth, prev = _indent(text), text
        block = bool(BLOCK_HEADER.match(text))  # its details run to the next blank line
        while off < len(window) and last - line_no < MAX_EXTENT:
            e = window.find(b"\n", off)
            if e < 0:
                break
            nxt = _decode(window[off:e])
            # a line continues the one above (a line ending in ":" announces what follows),
            # or it is a blank line inside a runner's indented failure block (RSpec's)
            inner = depth or _indent(prev)  # under a header at the margin: the block's own
            blank_inside = not nxt.strip() and inner > 0 and self._indented_after(window, e, inner)
            said = bool(nxt.strip())
            continues = is_continuation(nxt) or ((prev.endswith(":") or block) and said)
            if not (blank_inside or continues) or FINAL_MARKER.search(nxt) or "##[" in nxt:
                break
            prev = nxt.rstrip() or prev
            found = self.searcher.search(self._hay, off, e)
            s, is_noise = self._score(nxt) if found else (0.0, False)
            region.add(nxt)
            last += 1
            n_noise += int(is_noise)
            if s >= MIN_SCORE:
                region.key.append((s, last, nxt))
            off = e + 1
        self._consumed = last
        region.key = sorted(region.key, key=lambda k: -k[0])[:8]
        strong = sum(1 for k in region.key if k[0] >= 2.5)
        region.score = max(k[0] for k in region.key) + STRONG_BONUS * min(strong, 3)
        region.end, region.noise = last, n_noise
        self._emit(region, window, ls, off)
        return off, last + 1

    @staticmethod
    def _indented_after(window: bytes, e: int, depth: int) -> bool:
        """Whether the line after the one ending at ``e`` is indented ``depth`` or deeper."""
        nxt_end = window.find(b"\n", e + 1)
        if nxt_end < 0:
            return False
        after = _decode(window[e + 1 : nxt_end])
        return bool(after.strip()) and _indent(after) >= depth

    def _pre_marker(self, window: bytes, ls: int, le: int, line_no: int, text: str) -> None:
        """The last lines of the failed step, just before its failure marker."""
        before: list[str] = []
        start_off = ls
        off = ls
        in_diff: int | None = None  # the offset just under the step's last line of a diff
        while off > 0 and len(before) < PRE_MARKER_LINES:
            s = window.rfind(b"\n", 0, off - 1) + 1
            prev = _decode(window[s : off - 1])
            if "##[endgroup]" in prev or "##[group]" in prev or self._is_step_header(prev):
                break
            if in_diff is None and prev.strip() and DIFF_BODY.match(prev):
                in_diff = off
            before.append(prev)
            start_off = off = s
        if in_diff is not None and self._in_diff(window, in_diff):
            head = self._diff_head(window, in_diff)
            if head is not None:
                self._diff_region(window, head, line_no, ls)
                return
        before.reverse()
        while before and not before[0].strip():
            before.pop(0)
        lines = [*before, text]
        start = line_no - len(before)
        key: list[tuple[float, int, str]] = []
        for i, t in enumerate(before):
            sc, _ = self._score(t)
            if sc >= MIN_SCORE:
                key.append((sc, start + i, t))
        best = max((k[0] for k in key), default=0.0)
        region = Region(
            start, line_no, lines, 1.2 + 0.5 * best, key or [(1.0, line_no, text)], True
        )
        self._emit(region, window, start_off, le + 1)

    def _diff_region(
        self, window: bytes, head: tuple[int, int], marker: int, marker_off: int
    ) -> None:
        """The head of the diff a failed step printed last (its first file and hunk), standing
        for the step's last words."""
        off, _ = head
        above = window.count(b"\n", off, marker_off)
        lines: list[str] = []
        while len(lines) < PRE_MARKER_LINES + 4:
            e = window.find(b"\n", off)
            if e < 0:
                break
            lines.append(_decode(window[off:e]))
            off = e + 1
        start = marker - above
        region = Region(start, start + len(lines) - 1, lines, 2.2, [(2.0, start, lines[0])], True)
        region.anchor = marker
        if self._open is not None:
            self._store(self._open)
            self._open = None
        self._seq += 1
        region.seq = self._seq
        self._store(region)

    @staticmethod
    def _is_step_header(text: str) -> bool:
        return text.startswith(("[Pipeline]", "$ ")) or (
            " $ " in text[:200] and text.startswith("[")
        )

    # ------------------------------------------------------------------ ranking
    def _tail_region(self, n: int = 10) -> Region | None:
        window = self._last_window
        if not window:
            return None
        total = self._last_first + window.count(b"\n") - 1
        lines = [_decode(r) for r in window[-(n * 400) :].split(b"\n")[:-1]][-n:]
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            return None
        return Region(total - len(lines) + 1, total, lines, 0.5, [(0.5, total, lines[-1])])

    def finish(self, total_lines: int, steps: list[LogStep], limit: int = 8) -> list[Region]:
        if self._open is not None:
            self._store(self._open)
            self._open = None
        pool = {r.seq: r for r in self._recent}
        pool.update({item[2].seq: item[2] for item in self._best})
        regions = list(pool.values())
        if not regions:
            tail = self._tail_region()
            regions = [tail] if tail else []
        failed = [s for s in steps if s.conclusion in ("failure", "cancelled")]
        last_marker = self.markers[-1] if self.markers else None
        for r in regions:
            r.final = self._final_score(r, total_lines, failed, last_marker)
        regions.sort(key=lambda r: (-r.final, -r.end))
        regions = _first_of_its_kind(regions, failed)
        return regions[:limit]

    def _final_score(
        self, r: Region, total: int, failed: list[LogStep], last_marker: int | None
    ) -> float:
        # when several commands failed, the first is where the job went wrong (Travis runs
        # every ``script`` command; a later one often fails because the first did): its
        # lines come first, its last words are those before its own end
        first_failed = bool(failed) and failed[0].start <= r.start <= failed[0].end
        if first_failed:
            end = failed[0].end
        else:
            end = last_marker if last_marker is not None and last_marker >= r.start else total
        distance = max(0, end - (r.anchor or r.end))
        score = r.score + END_BONUS * math.exp(-distance / END_DECAY)
        score += 0.3 * (r.end / max(total, 1)) ** 2
        restates = r.restates_only
        if first_failed and not restates:
            score += FAILED_STEP_BONUS
        if r.marker and not restates:
            score += 0.3
        if r.noise and r.noise >= len(r.key):
            score *= 0.3
        return score
