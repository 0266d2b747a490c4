"""Streaming reader of CI logs: blocks of whole lines, in constant memory.

A log is read once, in blocks of ``block_size`` bytes. Each block holds whole lines only. A
line is what lies between two ``\\n`` (as ``grep -n``, ``sed -n`` and editors count them):
a ``\\r\\n`` ends a line as ``\\n`` does, and a lone ``\\r`` (a progress update, a Travis
fold marker) stays inside its line, so line numbers (1-based) are the log file's own. Lines
longer than ``max_line`` are cut (the rest of the line is skipped, the line still counts
once); lines that are mostly binary (NUL bytes, control characters) are blanked; bytes that
are not UTF-8 are counted. Nothing here ever raises on content.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

log = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 1 << 20
DEFAULT_MAX_LINE = 64 << 10
BINARY_PLACEHOLDER = b"<binary>"
_CONTROL = bytes(range(0, 9)) + bytes(range(14, 27)) + bytes(range(28, 32))


@dataclass
class Block:
    """Whole lines of the log, ``\\n``-terminated; ``first_line`` is 1-based."""

    data: bytes
    first_line: int
    lines: int

    @property
    def last_line(self) -> int:
        return self.first_line + self.lines - 1


@dataclass
class ReadStats:
    """What the reader saw and survived."""

    bytes: int = 0
    lines: int = 0
    binary_lines: int = 0
    invalid_utf8: int = 0
    truncated_lines: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        out = list(self.warnings)
        if self.binary_lines:
            out.append(f"{self.binary_lines} binary line(s) blanked")
        if self.invalid_utf8:
            out.append(f"{self.invalid_utf8} invalid UTF-8 sequence(s) replaced")
        if self.truncated_lines:
            out.append(f"{self.truncated_lines} over-long line(s) truncated")
        return out


def _is_binary_line(line: bytes) -> bool:
    if not line:
        return False
    if b"\x00" in line:
        return True
    junk = len(line) - len(line.translate(None, _CONTROL))
    return junk * 10 > len(line)


def _blank_binary(data: bytes, stats: ReadStats, continues_blank: bool = False) -> bytes:
    """Blank the binary lines of ``data`` (only called when it holds a NUL).

    With ``continues_blank``, ``data`` goes on with a line whose start was blanked already (a
    binary line longer than a block): its binary first part is dropped, not counted again."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if _is_binary_line(line):
            if i == 0 and continues_blank:
                lines[0] = b""
                continue
            stats.binary_lines += 1
            lines[i] = BINARY_PLACEHOLDER
    return b"\n".join(lines)


def _count_invalid(data: bytes) -> int:
    if data.isascii():
        return 0
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        return max(1, text.count("\ufffd") - data.count("\ufffd".encode()))
    return 0


def _normalise_breaks(data: bytes) -> bytes:
    """``\\r\\n`` as ``\\n``; a lone ``\\r`` is kept (it does not end a line)."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n")


def _after_long_line(chunk: bytes) -> bytes | None:
    """``chunk`` from the end of a line being skipped on (None: the line goes on past it)."""
    cut = chunk.find(b"\n")
    return None if cut < 0 else chunk[cut:]


def _hold_cr(data: bytes) -> tuple[bytes, bytes]:
    """``data`` without a final ``\r``, which may be the first half of a ``\r\n`` pair."""
    return (data[:-1], b"\r") if data.endswith(b"\r") else (data, b"")


class LogReader:
    """Iterate over a binary stream as :class:`Block` objects of whole lines."""

    def __init__(
        self,
        stream: BinaryIO,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.stream = stream
        self.block_size = max(1024, block_size)
        self.max_line = max(256, max_line)
        self.stats = ReadStats()
        self._next_line = 1

    def _finish(self, data: bytes) -> Block:
        stats = self.stats
        if b"\x00" in data:
            data = _blank_binary(data, stats)
        stats.invalid_utf8 += _count_invalid(data)
        n = data.count(b"\n")
        block = Block(data=data, first_line=self._next_line, lines=n)
        self._next_line += n
        stats.lines += n
        return block

    def _read(self) -> bytes:
        try:
            chunk = self.stream.read(self.block_size)
        except OSError as exc:  # a broken pipe or a truncated archive member
            self.stats.warnings.append(f"read error after {self.stats.bytes} bytes: {exc}")
            log.warning("log read error after %d bytes: %s", self.stats.bytes, exc)
            return b""
        if isinstance(chunk, str):  # a text stream passed by mistake: survive it
            chunk = chunk.encode("utf-8", errors="replace")
        self.stats.bytes += len(chunk)
        return chunk or b""

    def blocks(self) -> Iterator[Block]:
        carry = b""
        skipping = False
        while True:
            chunk = self._read()
            if not chunk:
                break
            if skipping:
                rest = _after_long_line(chunk)
                if rest is None:
                    continue
                chunk, skipping = rest, False
            data, held = _hold_cr(carry + chunk if carry else chunk)
            data = _normalise_breaks(data)
            end = data.rfind(b"\n")
            tail = data[end + 1 :]
            if len(tail) > self.max_line:
                self.stats.truncated_lines += 1
                tail = tail[: self.max_line]
                skipping = not held
            carry = tail + held
            if end >= 0:
                yield self._finish(data[: end + 1])
        last = _normalise_breaks(carry)
        if last:
            yield self._finish(last if last.endswith(b"\n") else last + b"\n")


ScanFn = Callable[[bytes, int, int, int], int]
"""``fn(buf, first_line, lo, hi) -> line number at hi``: scan the lines starting in
``buf[lo:hi]``; ``buf[0]`` starts line ``first_line``; ``buf[:lo]`` and ``buf[hi:]`` are
context (a few lines before, up to :data:`HEAD_LINES` whole lines after)."""

TAIL_LINES = 8
HEAD_LINES = 64


def _back_lines(buf: bytes, start: int, end: int, n: int) -> tuple[int, int]:
    """Offset of the line that starts ``n`` lines before ``end`` (not before ``start``)."""
    off, count = end, 0
    while count < n and off > start:
        p = buf.rfind(b"\n", start, off - 1)
        off = p + 1 if p >= 0 else start
        count += 1
    return off, count


class WindowScanner:
    """Drive a :data:`ScanFn` over a stream with one copy of the data per block.

    Each window is ``context + new data``: the scan function sees the lines that start in
    ``[lo, hi)`` with a few lines of context on each side, and returns the line number at
    ``hi`` (it counts the lines, so the data is counted once).
    """

    def __init__(self, reader: LogReader) -> None:
        self.reader = reader

    def _utf8(self, buf: bytes, lo: int, hi: int) -> None:
        if not buf.isascii():
            self.reader.stats.invalid_utf8 += _count_invalid(buf[lo:hi])

    def _window(self, left: bytes, chunk: bytes) -> tuple[bytes, bytes, int, bool]:
        """The carried bytes and the new chunk as one buffer of normalised line breaks:
        (buffer, held ``\r``, end of its last whole line, whether a long line is skipped on)."""
        reader, stats = self.reader, self.reader.stats
        if b"\x00" in chunk:
            chunk = _blank_binary(chunk, stats, left.endswith(BINARY_PLACEHOLDER))
        buf, hold = _hold_cr(left + chunk if left else chunk)
        if b"\r" in chunk or left.endswith(b"\r"):
            buf = _normalise_breaks(buf)
        end = buf.rfind(b"\n") + 1  # end of the last whole line
        if len(buf) - end <= reader.max_line:
            return buf, hold, end, False
        stats.truncated_lines += 1
        return buf[: end + reader.max_line], hold, end, not hold

    def _last(self, fn: ScanFn, left: bytes, ctx: int, first: int) -> int:
        """Scan what is left after the last block; the line number at its end."""
        last = _normalise_breaks(left)
        if len(last) <= ctx:
            return first + last.count(b"\n", 0, ctx)
        if not last.endswith(b"\n"):
            last += b"\n"
        self._utf8(last, ctx, len(last))
        return fn(last, first, ctx, len(last))

    def run(self, fn: ScanFn) -> int:
        """Scan the whole stream; returns the number of lines."""
        reader = self.reader
        left, ctx, first = b"", 0, 1  # carried bytes, bytes of scanned context, line of left[0]
        skipping = False
        while chunk := reader._read():
            if skipping:
                rest = _after_long_line(chunk)
                if rest is None:
                    continue
                chunk = rest
            buf, hold, end, skipping = self._window(left, chunk)
            hi, _ = _back_lines(buf, ctx, end, HEAD_LINES)
            if hi <= ctx:  # not enough whole lines yet: read more
                left = buf + hold
                continue
            self._utf8(buf, ctx, hi)
            at_hi = fn(buf, first, ctx, hi)
            start, n = _back_lines(buf, 0, hi, TAIL_LINES)
            left, ctx, first = buf[start:] + hold, hi - start, at_hi - n
        reader.stats.lines = self._last(fn, left, ctx, first) - 1
        return reader.stats.lines


def iter_lines(stream: BinaryIO, block_size: int = DEFAULT_BLOCK_SIZE) -> Iterator[tuple[int, str]]:
    """Every line of a (small) log as ``(line number, text)``; for tools, not for GB logs."""
    reader = LogReader(stream, block_size=block_size)
    for block in reader.blocks():
        text = block.data.decode("utf-8", errors="replace")
        for i, line in enumerate(text.split("\n")[:-1]):
            yield block.first_line + i, line
