"""The raw job log: GitHub's line format and the workflow commands a step prints.

Every line of a job log carries the time it was written (``2024-05-01T10:00:00.1234567Z``),
secrets and values added with ``::add-mask::`` are written as ``***``, and the workflow
commands of a step's output (``::group::``, ``::error::``, ``::set-output name=...::``) are
translated as GitHub's runner writes them, so the analysis code reads the same text as from
GitHub.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path


def log_timestamp() -> str:
    """``2024-05-01T10:00:00.1234567Z`` (GitHub's raw log timestamps, 7 fractional digits)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class JobLog:
    """A job log in GitHub's raw format: each line prefixed with its timestamp."""

    def __init__(self, path: str | os.PathLike[str], masks: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        self._masks = sorted({m for m in masks if m}, key=len, reverse=True)

    def add_mask(self, value: str) -> None:
        value = value.strip()
        if value and value not in self._masks:
            self._masks = sorted([*self._masks, value], key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._masks:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def write(self, text: str) -> int:
        """Write one or more lines (a trailing newline is not needed), each with the time of
        the write; returns the bytes written."""
        stamp = log_timestamp()
        masked = self.mask(text)
        data = "".join(f"{stamp} {line.rstrip(chr(13))}\n" for line in masked.split("\n"))
        raw = data.encode("utf-8", "replace")
        with self._lock:
            self._fh.write(raw)
            self._fh.flush()
        return len(raw)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


_COMMAND_RE = re.compile(r"^::([a-zA-Z-]+)(?:\s+([^:]*))?::(.*)$")
_ANNOTATIONS = frozenset({"error", "warning", "notice", "debug", "group"})


def translate_command(line: str, job_log: JobLog, outputs: dict[str, str]) -> str:
    """GitHub's workflow commands in a step's output, as they appear in the raw log."""
    m = _COMMAND_RE.match(line.strip())
    if m is None:
        return line
    cmd, props, value = m.group(1).lower(), m.group(2) or "", m.group(3)
    if cmd in _ANNOTATIONS:
        return f"##[{cmd}]{value}"
    if cmd == "endgroup":
        return "##[endgroup]"
    if cmd == "add-mask":
        job_log.add_mask(value)
        return "::add-mask::***"
    if cmd == "set-output":
        name = props.partition("name=")[2].split(",")[0].strip()
        if name:
            outputs[name] = value
    return line
