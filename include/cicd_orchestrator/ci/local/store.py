"""A small JSON file store shared by processes: fcntl locks, atomic writes, locked counters."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive lock on ``<path>.lock`` (held across processes until the block ends)."""
    lock_path = Path(f"{os.fspath(path)}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_json(path: str | os.PathLike[str], default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def write_json(path: str | os.PathLike[str], data: Any, mode: int = 0o644) -> None:
    """Write JSON atomically: a temporary file in the same folder, then ``os.replace``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def update_json(
    path: str | os.PathLike[str], fn: Callable[[Any], T], default: Any = None, mode: int = 0o644
) -> T:
    """Read-modify-write under the file's lock. ``fn`` changes the data in place (or returns
    a value); the data is written back and ``fn``'s result returned."""
    with file_lock(path):
        data = read_json(path, default)
        result = fn(data)
        write_json(path, data, mode)
        return result


def next_counter(path: str | os.PathLike[str], name: str) -> int:
    """The next value of a named counter (1, 2, ...) kept in the JSON file ``path``."""

    def bump(data: dict[str, int]) -> int:
        data[name] = int(data.get(name, 0)) + 1
        return data[name]

    return update_json(path, bump, default={})
