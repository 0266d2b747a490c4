"""LogChunks (real Travis CI logs with a person's labelled failure chunk) scored in process.

    .venv/bin/python bench/logchunks.py [--root ../shared/datasets/logchunks]
        [--half dev|held-out|all] [--by-language] [--labels FILE] [--misses N]

hit@1 as the dataset's ``evaluate.py`` defines it: the first excerpt overlaps a labelled range
and is at most 25 lines long; lines are counted on ``\\n`` only. The logs are split into two
halves by repository (:func:`half_of`: a hash of ``owner@repo``), so no repository is in
both: patterns are developed on ``dev`` and measured on ``held-out``. The two trivial
baselines of ``evaluate.py`` run beside the analyser in the same pass. With ``--labels``,
category accuracy against the committed labels (one category per log, with its reason).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from cicd_devkit import datasets  # noqa: E402

from cicd_orchestrator.logs.analyze import analyze_path  # noqa: E402

MAX_LEN = 25
DEFAULT_ROOT = datasets.LOGCHUNKS
DEFAULT_LABELS = datasets.LOGCHUNKS_LABELS
Ranges = list[tuple[int, int]]


@dataclass(frozen=True)
class Case:
    id: str  # <language>/<owner>@<repo>/<build>
    lang: str
    repo: str
    log: Path
    ranges: tuple[tuple[int, int], ...]


def half_of(repo: str) -> str:
    """``dev`` or ``held-out``: a fixed split of the repositories."""
    digest = hashlib.sha256(repo.encode()).digest()
    return "dev" if digest[0] % 2 == 0 else "held-out"


def load(root: Path, half: str = "all") -> list[Case]:
    cases = []
    for label in sorted(root.glob("*/*/*/label.json")):
        folder = label.parent
        lang, repo, _build = folder.relative_to(root).parts
        if half != "all" and half_of(repo) != half:
            continue
        data = json.loads(label.read_text(encoding="utf-8"))
        cases.append(
            Case(
                id=f"{lang}/{repo}/{_build}",
                lang=lang,
                repo=repo,
                log=folder / "fail.log",
                ranges=tuple((int(a), int(b)) for a, b in data["chunk_lines"]),
            )
        )
    return cases


def hit(first: tuple[int, int] | None, ranges: Iterable[tuple[int, int]]) -> bool:
    if first is None:
        return False
    s, e = first
    return e - s + 1 <= MAX_LEN and any(s <= b and e >= a for a, b in ranges)


# --------------------------------------------------------------------------- the systems
def _lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def last10(case: Case) -> tuple[int, int] | None:
    n = len(_lines(case.log))
    return (max(1, n - 9), n) if n else None


def before_error(case: Case) -> tuple[int, int] | None:
    lines = _lines(case.log)
    for i in range(len(lines) - 1, -1, -1):
        if b"error" in lines[i].lower():
            return (max(1, i - 9), i) if i else None
    return None


@dataclass
class Analysed:
    first: tuple[int, int] | None
    category: str
    seconds: float


def analyser(case: Case) -> Analysed:
    started = time.perf_counter()
    try:
        a = analyze_path(case.log)
    except Exception as exc:  # a crash is a miss, and said
        print(f"  crash on {case.id}: {exc}", file=sys.stderr)
        return Analysed(None, "crash", time.perf_counter() - started)
    first = (a.excerpts[0].start, a.excerpts[0].end) if a.excerpts else None
    return Analysed(first, str(a.category), time.perf_counter() - started)


# --------------------------------------------------------------------------- scoring
@dataclass
class Tally:
    hits: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.hits += ok
        self.total += 1

    @property
    def rate(self) -> float:
        return self.hits / self.total if self.total else 0.0


@dataclass
class Result:
    systems: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    by_lang: dict[tuple[str, str], Tally] = field(
        default_factory=lambda: collections.defaultdict(Tally)
    )
    categories: collections.Counter[str] = field(default_factory=collections.Counter)
    agree: Tally = field(default_factory=Tally)
    #: category accuracy per language, and as the first excerpt hit or missed
    agree_by_lang: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    agree_by_hit: dict[bool, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    confusion: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    misses: list[str] = field(default_factory=list)
    seconds: float = 0.0


def read_labels(path: Path) -> dict[str, str]:
    """``id -> category`` of the committed labels file (id, category, reason per line)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            parts = line.split("\t")
            out[parts[0]] = parts[1]
    return out


def score(
    cases: list[Case],
    labels: dict[str, str] | None = None,
    run: Callable[[Case], Analysed] = analyser,
) -> Result:
    result = Result()
    for case in cases:
        got = run(case)
        result.seconds += got.seconds
        ok = hit(got.first, case.ranges)
        for name, first in (
            ("analyser", got.first),
            ("last-10", last10(case)),
            ("before-error", before_error(case)),
        ):
            good = ok if name == "analyser" else hit(first, case.ranges)
            result.systems[name].add(good)
            result.by_lang[(case.lang, name)].add(good)
        if not ok:
            result.misses.append(f"{case.id} got={got.first} want={list(case.ranges)[:3]}")
        result.categories[got.category] += 1
        if labels is not None and case.id in labels:
            right = got.category == labels[case.id]
            result.agree.add(right)
            result.agree_by_lang[case.lang].add(right)
            result.agree_by_hit[ok].add(right)
            result.confusion[(labels[case.id], got.category)] += 1
    return result


def report(name: str, result: Result, by_language: bool) -> list[str]:
    out = [f"LogChunks {name}: {result.systems['analyser'].total} logs"]
    for system in ("analyser", "before-error", "last-10"):
        t = result.systems[system]
        out.append(f"  {system:<14} hit@1 {t.rate:.3f} ({t.hits}/{t.total})")
    n = sum(result.categories.values()) or 1
    unknown = result.categories.get("unknown", 0)
    out.append(f"  unknown category {unknown}/{n} ({unknown / n:.1%})")
    if result.agree.total:
        agree = result.agree
        out.append(f"  category accuracy {agree.rate:.3f} ({agree.hits}/{agree.total})")
        for ok, what in ((True, "hit"), (False, "missed")):
            t = result.agree_by_hit[ok]
            out.append(f"    where the first excerpt {what:<6} {t.rate:.3f} ({t.hits}/{t.total})")
    if by_language:
        langs = sorted({lang for lang, _ in result.by_lang})
        head = f"  {'language':<14} {'analyser':>9} {'before-err':>10} {'last-10':>8}"
        out.append(head + (f" {'category':>9}" if result.agree.total else "") + "  logs")
        for lang in langs:
            row = [result.by_lang[(lang, s)] for s in ("analyser", "before-error", "last-10")]
            category = f" {result.agree_by_lang[lang].rate:9.2f}" if result.agree.total else ""
            out.append(
                f"  {lang:<14} {row[0].rate:9.2f} {row[1].rate:10.2f} {row[2].rate:8.2f}"
                f"{category}  {row[0].total}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--half", choices=("dev", "held-out", "all"), default="dev")
    p.add_argument("--by-language", action="store_true")
    p.add_argument("--labels", type=Path, default=None)
    p.add_argument("--misses", type=int, default=0, help="print this many misses")
    p.add_argument("--only", default="", help="only the logs whose id contains this")
    ns = p.parse_args(argv)
    cases = [c for c in load(ns.root, ns.half) if ns.only in c.id]
    labels = read_labels(ns.labels) if ns.labels and ns.labels.is_file() else None
    result = score(cases, labels)
    print("\n".join(report(ns.half, result, ns.by_language)))
    for miss in result.misses[: ns.misses]:
        print("  miss", miss)
    if labels:
        wrong = sorted(
            ((k, v) for k, v in result.confusion.items() if k[0] != k[1]), key=lambda kv: -kv[1]
        )
        for (want, got), count in wrong[:15]:
            print(f"  labelled {want:<15} analysed {got:<15} {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
