"""The labelled log datasets beside the project (``../shared/datasets``), read for tests and
benchmarks.

cidiff's groundtruth numbers the lines of a log as Java's ``readLine`` does (a lone ``\\r``
ends a line too); the analyser numbers them as the file does (on ``\\n`` only).
:func:`readline_numbers` converts the one into the other.
"""

from __future__ import annotations

from dataclasses import dataclass
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


#: real output of the toolchains, run here on small projects that fail in one way each
#: (``<family>/<id>.txt``), with ``manifest.tsv``: id, the CI command, the file, the category
#: and the lines a person would paste (``a-b``), why, and, for a case the reader still gets
#: wrong, where and what (``travis,github: ...``)
TOOLCHAINS = PROJECT / "tests" / "fixtures" / "toolchains"
#: how a CI job prints a command's output around it
WRAPPERS = ("travis", "github")


@dataclass(frozen=True)
class ToolchainCase:
    id: str
    command: str
    output: Path
    category: str
    first: int
    last: int
    reason: str
    #: "travis,github: what the reader gets wrong", for a case it still gets wrong
    known_miss: str = ""

    def read_well(self, start: int, end: int) -> bool:
        """Whether an excerpt of the output's lines ``start``..``end`` holds the person's
        lines, and is short enough to paste (hit@1 as LogChunks' ``evaluate.py`` counts it)."""
        return start <= self.last and end >= self.first and end - start < 25

    def misses(self, kind: str) -> str:
        """What the reader still gets wrong in this case, printed as ``kind`` prints it."""
        kinds, _, why = self.known_miss.partition(": ")
        return why if kind in kinds.split(",") else ""


def toolchain_cases(root: Path = TOOLCHAINS) -> list[ToolchainCase]:
    cases = []
    for row in (root / "manifest.tsv").read_text(encoding="utf-8").splitlines():
        if not row.strip() or row.startswith("#"):
            continue
        cid, command, output, category, lines, reason, *miss = row.split("\t")
        first, _, last = lines.partition("-")
        cases.append(
            ToolchainCase(
                cid, command, root / output, category, int(first), int(last or first), reason,
                miss[0] if miss else "",
            )
        )  # fmt: skip
    return cases


def wrap_output(kind: str, command: str, output: str) -> tuple[str, int]:
    """A command's output as a job log of ``kind`` (``travis``: the fold and timer markers, the
    echoed command and its exit line; ``github``: timestamps, the step's group with its echoed
    script, the error annotation), and how many lines come before the output's first."""
    body = output.splitlines()
    if kind == "github":
        ts = "2024-05-01T10:00:00.1234567Z "
        head = [
            "##[group]Run actions/checkout@v4",
            "Syncing repository: acme/app",
            "##[endgroup]",
            f"##[group]Run {command}",
            command,
            "shell: /usr/bin/bash -e {0}",
            "##[endgroup]",
        ]
        tail = ["##[error]Process completed with exit code 1."]
        lines = [ts + line for line in [*head, *body, *tail]]
    elif kind == "travis":
        head = [
            "travis_fold:start:git.checkout\r\x1b[0Ktravis_time:start:0a1b2c3d\r\x1b[0K"
            "$ git clone --depth=50 https://github.com/acme/app.git acme/app",
            "travis_time:end:0a1b2c3d:start=1,finish=2,duration=1\r\x1b[0K"
            "travis_fold:end:git.checkout\r\x1b[0K",
            f"travis_time:start:1b2c3d4e\r\x1b[0K$ {command}",
        ]
        tail = [
            "travis_time:end:1b2c3d4e:start=3,finish=4,duration=1\r\x1b[0K",
            f'\x1b[31;1mThe command "{command}" exited with 1.\x1b[0m',
            "",
            "Done. Your build exited with 1.",
        ]
        lines = [*head, *body, *tail]
    else:
        raise ValueError(f"unknown wrapper {kind!r} (one of {', '.join(WRAPPERS)})")
    return "\n".join(lines) + "\n", len(head)
