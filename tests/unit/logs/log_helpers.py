"""Helpers shared by the log tests (the cidiff dataset beside the project)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "logs"
CIDIFF = ROOT.parent / "shared" / "datasets" / "cidiff" / "breakages"


def cidiff_cases() -> list[str]:
    return sorted(p.name for p in CIDIFF.iterdir()) if CIDIFF.is_dir() else []


def groundtruth(case: str) -> set[int]:
    lines: set[int] = set()
    for row in (CIDIFF / case / "groundtruth").read_text().splitlines()[1:]:
        if row.startswith("E "):
            a, _, b = row.split()[1].partition("-")
            lines.update(range(int(a), int(b or a) + 1))
    return lines
