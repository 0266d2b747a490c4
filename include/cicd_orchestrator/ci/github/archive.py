"""Bounded extraction of a run's log archive (a zip that GitHub builds, or anyone could forge).

A zip bomb (a tiny archive that inflates to gigabytes), an oversized member, too many
members or a member path leaving the destination are refused with a clear ProviderError
before anything large is written. Sizes are checked against the central directory and again
while inflating, since the declared sizes can lie.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from cicd_orchestrator.exceptions import ProviderError

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


class Readable(Protocol):
    """A stream of bytes (a file, a response's raw stream)."""

    def read(self, size: int = -1, /) -> bytes: ...


class ArchiveError(ProviderError):
    """A log archive is malformed, too big or a zip bomb."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int = 512 * 1024 * 1024
    max_member_bytes: int = 128 * 1024 * 1024
    max_members: int = 2000
    max_ratio: float = 200.0  # inflated size / compressed size, per member and overall
    max_archive_bytes: int = 256 * 1024 * 1024


def _safe_name(name: str) -> str | None:
    """A relative member path inside the destination, or None for a directory entry."""
    if name.endswith("/"):
        return None
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArchiveError(f"log archive member {name!r} escapes the destination")
    return str(path)


def _check_declared(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_members:
        raise ArchiveError(
            f"log archive has {len(infos)} members, more than the limit of {limits.max_members}"
        )
    total = 0
    packed = 0
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _CHUNK and ratio > limits.max_ratio:  # first: say it is a bomb
            raise ArchiveError(
                f"log archive member {info.filename!r} inflates {ratio:.0f}x to "
                f"{info.file_size} bytes (limit {limits.max_ratio:.0f}x): refusing a zip bomb"
            )
        if info.file_size > limits.max_member_bytes:
            raise ArchiveError(
                f"log archive member {info.filename!r} is {info.file_size} bytes, more than "
                f"the limit of {limits.max_member_bytes}"
            )
        total += info.file_size
        packed += info.compress_size
    if total > limits.max_total_bytes:
        raise ArchiveError(
            f"log archive inflates to {total} bytes, more than the limit of "
            f"{limits.max_total_bytes}: refusing a zip bomb"
        )
    if total > _CHUNK and total / max(packed, 1) > limits.max_ratio:
        raise ArchiveError(
            f"log archive inflates {total / max(packed, 1):.0f}x overall (limit "
            f"{limits.max_ratio:.0f}x): refusing a zip bomb"
        )


def extract_zip(
    source: str | os.PathLike[str] | BinaryIO,
    dest: str | os.PathLike[str],
    limits: ArchiveLimits | None = None,
    select: Callable[[str], bool] | None = None,
) -> list[Path]:
    """Extract ``source`` into ``dest`` within ``limits``; returns the files written.

    ``select`` (a member's path -> bool) extracts only some members; the limits are checked
    on the whole archive all the same (a bomb anywhere in it refuses it). On any refusal,
    what was written so far is removed."""
    limits = limits or ArchiveLimits()
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            _check_declared(infos, limits)
            total = 0
            for info in infos:
                name = _safe_name(info.filename)
                if name is None or (select is not None and not select(name)):
                    continue
                out_path = target / name
                out_path.parent.mkdir(parents=True, exist_ok=True)
                written.append(out_path)
                total = _copy_member(zf, info, out_path, total, limits)
    except zipfile.BadZipFile as exc:
        _cleanup(written)
        raise ArchiveError(f"the log archive is not a valid zip file: {exc}") from exc
    except ArchiveError:
        _cleanup(written)
        raise
    return written


def _copy_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, out_path: Path, total: int, limits: ArchiveLimits
) -> int:
    """Inflate one member, counting the real bytes (declared sizes may lie)."""
    size = 0
    with zf.open(info) as src, open(out_path, "wb") as dst:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            total += len(chunk)
            if size > limits.max_member_bytes:
                dst.close()
                out_path.unlink(missing_ok=True)
                raise ArchiveError(
                    f"log archive member {info.filename!r} inflates beyond the limit of "
                    f"{limits.max_member_bytes} bytes"
                )
            if total > limits.max_total_bytes:
                dst.close()
                out_path.unlink(missing_ok=True)
                raise ArchiveError(
                    f"log archive inflates beyond the limit of {limits.max_total_bytes} bytes: "
                    "refusing a zip bomb"
                )
            dst.write(chunk)
    return total


def _cleanup(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def copy_limited(src: Readable, dst: BinaryIO, limit: int, what: str) -> int:
    """Copy a stream, refusing more than ``limit`` bytes; returns the bytes copied."""
    size = 0
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            return size
        size += len(chunk)
        if size > limit:
            raise ArchiveError(f"{what} is larger than the limit of {limit} bytes")
        dst.write(chunk)
