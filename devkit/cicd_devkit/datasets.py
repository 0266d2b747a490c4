"""The labelled log datasets beside the project (``../shared/datasets``), read for tests and
benchmarks.

cidiff's groundtruth numbers the lines of a log as Java's ``readLine`` does (a lone ``\\r``
ends a line too); the analyser numbers them as the file does (on ``\\n`` only).
:func:`readline_numbers` converts the one into the other.
"""

from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
DATASETS = PROJECT.parent / "shared" / "datasets"
CIDIFF = DATASETS / "cidiff" / "breakages"
LOGCHUNKS = DATASETS / "logchunks"
#: the LogChunks failures labelled with the product's categories (id, category, reason)
LOGCHUNKS_LABELS = PROJECT / "tests" / "fixtures" / "logchunks" / "categories.tsv"


def readline_numbers(path: Path) -> list[tuple[int, int]]:
    """For each line of ``path`` (counted on ``\\n``), its first and last line as ``readLine``
    counts them."""
    out: list[tuple[int, int]] = []
    n = 1
    for raw in path.read_bytes().split(b"\n"):
        pieces = raw.rstrip(b"\r").count(b"\r") + 1
        out.append((n, n + pieces - 1))
        n += pieces
    return out


def cidiff_groundtruth(case: Path) -> set[int]:
    """The ``E`` (error) lines of a cidiff case, in ``readLine`` numbers."""
    lines: set[int] = set()
    for row in (case / "groundtruth").read_text().splitlines()[1:]:
        if row.startswith("E "):
            a, _, b = row.split()[1].partition("-")
            lines.update(range(int(a), int(b or a) + 1))
    return lines


def cidiff_lines(case: Path, start: int, end: int) -> set[int]:
    """The ``readLine`` numbers of the lines ``start``..``end`` of the case's fail log."""
    numbers = readline_numbers(case / "fail.log")
    return set(range(numbers[start - 1][0], numbers[end - 1][1] + 1))
