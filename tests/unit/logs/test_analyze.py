from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from cicd_orchestrator.logs.analyze import analyze_log, analyze_path


class _Generated(io.RawIOBase):
    """A generated GitHub Actions log of ``size`` bytes, produced on the fly."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self._buf = b""
        self._lines = self._gen()

    def _gen(self) -> Iterator[bytes]:
        i = 0
        while True:
            i += 1
            ts = b"2024-05-01T10:%02d:%02d.%07dZ " % (i // 60 % 60, i % 60, i % 10_000_000)
            if i % 5000 == 0:
                yield ts + b"##[group]Run step %d\n" % i
            elif i % 997 == 0:
                yield ts + b"npm WARN something failed to fetch, retrying %d\n" % i
            else:
                yield (
                    ts
                    + b"tests/test_mod_%d.py ........................................ [ 42%%]\n" % i
                )

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        want = min(len(b), self.size - self.sent)
        while len(self._buf) < want:
            self._buf += b"".join(next(self._lines) for _ in range(2000))
        if want <= 0:
            tail = b"2024-05-01T11:00:00.0000000Z ##[error]Process completed with exit code 1.\n"
            if self.sent == self.size:
                self.sent += 1
                b[: len(tail)] = tail
                return len(tail)
            return 0
        b[:want] = self._buf[:want]
        self._buf = self._buf[want:]
        self.sent += want
        return want


@pytest.mark.slow
def test_50mb_log_is_read_in_bounded_memory() -> None:
    size = 50 * 1024 * 1024
    stream: BinaryIO = io.BufferedReader(_Generated(size), buffer_size=1 << 20)
    tracemalloc.start()
    try:
        a = analyze_log(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert a.bytes > size
    assert a.lines > 500_000
    assert peak < 20 * 1024 * 1024, peak  # a few 1 MiB blocks, never the 50 MB log
    assert a.excerpts[0].end == a.lines


def test_binary_and_non_utf8_input_never_crash(tmp_path: Path) -> None:
    junk = os.urandom(300_000)
    path = tmp_path / "junk.log"
    path.write_bytes(b"start\n" + junk + b"\nError: something broke \xff\xfe here\n" + junk)
    a = analyze_path(path)
    assert a.lines > 2
    assert any("binary" in w or "UTF-8" in w for w in a.warnings)
    assert any("something broke" in e.text for e in a.excerpts)


def test_nul_only_stream() -> None:
    a = analyze_log(io.BytesIO(b"\x00" * 100_000))
    assert a.lines == 1 and a.warnings


def test_a_binary_line_longer_than_a_block_is_blanked_once(tmp_path: Path) -> None:
    path = tmp_path / "sparse.log"
    tail = b"2024-05-01T10:00:00.0000000Z ##[error]Process completed with exit code 1.\n"
    with open(path, "wb") as fh:
        fh.write(b"2024-05-01T10:00:00.0000000Z start\n")
        fh.seek(64 << 20)  # a hole of 64 MiB: one NUL line spanning 64 blocks
        fh.write(b"\n" + tail)
    a = analyze_path(path)
    assert a.lines == 3
    assert "1 binary line(s) blanked" in a.warnings
    assert a.excerpts[0].end == 3 and "\n<binary>\n" in a.excerpts[0].text


def test_the_script_a_github_step_echoes_is_not_its_output() -> None:
    """The group a "Run" step opens with holds its script and environment, echoed before it
    runs: their words ("--output-on-failure", "ERROR_LOG") say nothing of how it failed."""
    ts = "2024-05-01T10:00:00.1234567Z "
    lines = [
        "##[group]Run ./ci/build.sh && ctest --output-on-failure",
        "./ci/build.sh && ctest --output-on-failure",
        "shell: /usr/bin/bash -e {0}",
        "env:",
        "  ERROR_LOG: build/errors.txt",
        "##[endgroup]",
        "Compiling app v0.1.0",
        "error: linker `cc` not found",
        "##[error]Process completed with exit code 1.",
    ]
    text = "".join(ts + line + "\n" for line in lines)
    analysis = analyze_log(io.BytesIO(text.encode()))
    assert analysis.failed_step is not None
    assert analysis.failed_step.name.startswith("Run ./ci/build.sh")
    assert all("ctest" not in e.text and "ERROR_LOG" not in e.text for e in analysis.excerpts)
    assert analysis.excerpts[0].text.startswith("error: linker `cc` not found")
