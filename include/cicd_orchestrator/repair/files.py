"""Reading and writing the files of a checkout in the orchestrator's own process.

A repository may hold symbolic links, and the repository's commands (run in the work tree
before a fixer reads it) may have added more, or hard links: a fixer that followed one would
read a file outside the clone into a patch, a note or a prompt, or write over one. So every
in-process read or write of a repository file goes through here:

- a path is taken relative to the clone's root and must stay inside it;
- it is opened one component at a time from the root, never through a link (``O_NOFOLLOW``),
  so a link swapped in meanwhile is refused too;
- what is read or written must be a regular file with no other hard link.

A link is never followed: it is left alone and reported. :func:`refusals` gathers the paths
refused while a fixer works and adds them to the fixer's result (``unrepaired``); a direct
read or write of a refused path raises :class:`RefusedPathError` (an ``OSError`` as well, so
code that skips an unreadable file skips it).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fnmatch
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from cicd_orchestrator.exceptions import RepairError
from cicd_orchestrator.models import FixerResult

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
LINK = "is a symbolic link: left alone (links in a repository are never followed)"
OUTSIDE = "is outside the repository: left alone"
HARD_LINK = "has other hard links: left alone"
NOT_REGULAR = "is not a regular file: left alone"

_refused: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "cicd_refused_paths", default=None
)


class RefusedPathError(RepairError, OSError):
    """A path of the repository that the orchestrator does not follow, read or write."""


def _refuse(rel: PurePosixPath | str, why: str) -> RefusedPathError:
    """Record ``rel`` as refused (for :func:`refusals`) and return the error to raise."""
    note = f"{rel} {why}"
    found = _refused.get()
    if found is None or note not in found:
        log.warning("repository file %s", note)
    if found is not None and note not in found:
        found.append(note)
    return RefusedPathError(note)


@contextlib.contextmanager
def refusals(result: FixerResult) -> Iterator[None]:
    """Note in ``result.unrepaired`` every path refused inside the block; a
    :class:`RefusedPathError` ends the block (the fixer's work stops there) and is noted."""
    token = _refused.set([])
    try:
        yield
    except RefusedPathError:
        pass  # already recorded
    finally:
        found = _refused.get() or []
        _refused.reset(token)
        result.unrepaired.extend(n for n in found if n not in result.unrepaired)


# --------------------------------------------------------------------------- paths
def _relative(root: PathLike, path: PathLike) -> PurePosixPath | None:
    raw = os.fspath(path)
    if os.path.isabs(raw):
        inside = [
            base
            for base in (os.path.normpath(root), os.path.realpath(root))
            if os.path.commonpath([base, os.path.normpath(raw)]) == base
        ]
        if not inside:
            return None
        raw = os.path.relpath(os.path.normpath(raw), inside[0])
    clean = PurePosixPath(os.path.normpath(raw).replace(os.sep, "/"))
    if clean.parts[:1] == ("..",):
        return None
    return PurePosixPath() if str(clean) == "." else clean


def relative(root: PathLike, path: PathLike) -> PurePosixPath:
    """``path`` (relative to ``root``, or absolute under it) as a clean relative path;
    RefusedPathError when it leads outside ``root``."""
    rel = _relative(root, path)
    if rel is None:
        raise _refuse(os.fspath(path), OUTSIDE)
    return rel


def _is_link(fd: int, name: str) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    return False


def _open_dir(root: PathLike, parts: Iterable[str]) -> int:
    """A descriptor of the folder ``root/parts``, reached without any link."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    done: list[str] = []
    try:
        for name in parts:
            done.append(name)
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, name):
                    raise _refuse(PurePosixPath(*done), LINK) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_file(root: PathLike, path: PathLike, flags: int) -> tuple[int, PurePosixPath]:
    """A descriptor of the regular file ``path`` of ``root`` (see the module docstring)."""
    rel = relative(root, path)
    if not rel.parts:
        raise _refuse(".", NOT_REGULAR)
    folder = _open_dir(root, rel.parts[:-1])
    try:
        try:
            fd = os.open(rel.name, flags | _FILE_FLAGS, 0o666, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP and _is_link(folder, rel.name):
                raise _refuse(rel, LINK) from None
            raise
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, "a folder", str(rel))
    why = None if stat.S_ISREG(info.st_mode) else NOT_REGULAR
    if why is None and info.st_nlink > 1:
        why = HARD_LINK
    if why is not None:
        os.close(fd)
        raise _refuse(rel, why)
    os.set_blocking(fd, True)
    return fd, rel


# --------------------------------------------------------------------------- reading
def read_bytes(root: PathLike, path: PathLike, limit: int = -1) -> bytes:
    """The bytes of the file (its first ``limit`` bytes when ``limit`` is not negative)."""
    fd, _ = _open_file(root, path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit)


def read_text(root: PathLike, path: PathLike, errors: str = "strict") -> str:
    """The file as text (UTF-8, universal newlines, as ``Path.read_text`` reads it)."""
    fd, _ = _open_file(root, path, os.O_RDONLY)
    with os.fdopen(fd, "r", encoding="utf-8", errors=errors) as handle:
        return handle.read()


def read_lines(root: PathLike, path: PathLike) -> list[str]:
    """The file's lines with their own line endings (so a rewrite keeps every other byte)."""
    text = read_bytes(root, path).decode("utf-8", errors="surrogateescape")
    return text.splitlines(keepends=True)


# --------------------------------------------------------------------------- writing
def write_bytes(root: PathLike, path: PathLike, data: bytes) -> None:
    """Replace the content of the file (created when missing; its folder must exist)."""
    try:
        fd, _ = _open_file(root, path, os.O_WRONLY)
    except FileNotFoundError:
        fd, _ = _open_file(root, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "wb") as handle:
        handle.truncate(0)
        handle.write(data)


def write_text(root: PathLike, path: PathLike, text: str) -> None:
    write_bytes(root, path, text.encode("utf-8"))


def write_lines(root: PathLike, path: PathLike, lines: list[str]) -> None:
    write_bytes(root, path, "".join(lines).encode("utf-8", errors="surrogateescape"))


# --------------------------------------------------------------------------- questions
def is_file(root: PathLike, path: PathLike) -> bool:
    """Whether ``path`` is a regular file of the repository reached without a link (a link
    is reported, and is no file)."""
    try:
        fd, _ = _open_file(root, path, os.O_RDONLY)
    except OSError:
        return False
    os.close(fd)
    return True


def is_dir(root: PathLike, path: PathLike) -> bool:
    """Whether ``path`` is a folder of the repository reached without a link."""
    try:
        os.close(_open_dir(root, relative(root, path).parts))
    except OSError:
        return False
    return True


def exists(root: PathLike, path: PathLike) -> bool:
    """Whether something is at ``path``; a link on the way counts (it is there) and is
    reported, not followed."""
    rel = _relative(root, path)
    if rel is None or not rel.parts:
        return True  # outside the repository: it cannot be told, so it is not missing
    try:
        folder = _open_dir(root, rel.parts[:-1])
    except RefusedPathError:
        return True
    except OSError:
        return False
    try:
        os.stat(rel.name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    finally:
        os.close(folder)
    return True


# --------------------------------------------------------------------------- listing
def entries(root: PathLike, folder: PathLike = "") -> list[tuple[str, str]]:
    """``(name, kind)`` of each entry of ``folder``, kind one of ``dir``, ``file``, ``link``,
    ``folder link`` and ``other``, sorted by name; empty when the folder cannot be read."""
    try:
        fd = _open_dir(root, relative(root, folder).parts)
    except OSError:
        return []
    try:
        with os.scandir(fd) as listing:
            found = [(e.name, _kind(e)) for e in listing]
    except OSError:
        found = []
    finally:
        os.close(fd)
    return sorted(found)


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        with contextlib.suppress(OSError):
            if entry.is_dir():  # the target's type only: its content is never read
                return "folder link"
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    return "file" if entry.is_file(follow_symlinks=False) else "other"


def walk(
    root: PathLike, skip: Iterable[str] = (), wanted: Callable[[str], bool] = lambda _: True
) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` of the repository, top-down in name order, that never follows a link:
    ``(folder, folders, files)`` with only real folders and regular files (the caller may
    prune ``folders``, as with ``os.walk``); a link to a folder, and a link whose name is
    ``wanted``, is reported."""
    skipped = frozenset(skip)
    stack = [PurePosixPath()]
    while stack:
        rel = stack.pop()
        folders: list[str] = []
        names: list[str] = []
        for name, kind in entries(root, rel):
            if kind == "folder link" or (kind == "link" and wanted(name)):
                _refuse(rel / name, LINK)
            elif kind == "dir" and name not in skipped:
                folders.append(name)
            elif kind == "file":
                names.append(name)
        yield Path(root, rel), folders, names
        stack.extend(rel / d for d in reversed(folders))


def glob(root: PathLike, pattern: str) -> list[Path]:
    """The regular files of the repository matching ``pattern`` (``*``, ``?``, ``[...]`` in a
    segment, ``**`` for any number of folders), sorted; no link is followed, and a link that
    matches is reported."""
    found: list[Path] = []
    _match(root, PurePosixPath(), pattern.split("/"), found)
    return sorted(set(found))


def _match(root: PathLike, rel: PurePosixPath, segments: list[str], found: list[Path]) -> None:
    head, rest = segments[0], segments[1:]
    listing = entries(root, rel)
    if head == "**":
        if rest:
            _match(root, rel, rest, found)
        for name, kind in listing:
            if kind == "dir":
                _match(root, rel / name, segments, found)
        return
    for name, kind in listing:
        if not fnmatch.fnmatchcase(name, head):
            continue
        if kind.endswith("link"):
            _refuse(rel / name, LINK)
        elif rest and kind == "dir":
            _match(root, rel / name, rest, found)
        elif not rest and kind == "file":
            found.append(Path(root, rel, name))
