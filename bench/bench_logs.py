"""Benchmark of the log analysis: LogChunks and cidiff excerpts, categories, throughput and memory.

    .venv/bin/python bench/bench_logs.py [--cidiff PATH] [--logchunks PATH] [--size-mb 1024]
        [--skip-logchunks] [--skip-toolchains] [--skip-cidiff] [--skip-throughput]

1. On LogChunks (778 real Travis CI logs of 29 languages, a person's labelled failure chunk;
   :mod:`logchunks`): hit@1 on both halves (split by repository: ``dev`` for development,
   ``held-out`` for measuring), per language, with the two trivial baselines of the
   dataset's ``evaluate.py`` beside it; the share of ``unknown`` categories and the accuracy
   against the committed category labels (``tests/fixtures/logchunks/categories.tsv``).
2. On the toolchains' own output (``tests/fixtures/toolchains``: compilers, test runners,
   linters and package managers run here on small projects that fail in one way each, with
   the lines a person would paste and the category; the material the rules were developed
   on, not a measure of unseen logs): hit@1 and category accuracy per family, each case
   read as Travis CI and as GitHub Actions print it.
3. On the cidiff dataset (pass/fail pairs with labelled error lines): hit@1 (the first
   excerpt overlaps an ``E`` line), line precision and recall of all excerpts against the
   ``E`` lines, with and without the pass log as baseline (in the groundtruth's numbering,
   which counts a lone ``\\r`` as a line break).
4. On a generated GitHub Actions log of ``--size-mb`` MB: throughput (MB/s) and peak memory
   (max RSS of the ``cicd analyze`` child process), side by side with ``grep -E -i -c`` over
   the same prefilter patterns on the same file, and peak memory at a second, smaller size
   to show that it does not grow with the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("bench_logs")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

import logchunks  # noqa: E402
from cicd_devkit import datasets  # noqa: E402
from cicd_devkit.datasets import cidiff_groundtruth, readline_numbers  # noqa: E402

from cicd_orchestrator.logs.analyze import analyze_path, analyze_text  # noqa: E402
from cicd_orchestrator.logs.patterns import load_library  # noqa: E402
from cicd_orchestrator.logs.prefilter import engine_name  # noqa: E402


# --------------------------------------------------------------------------- toolchains
def toolchain_rows() -> list[list[str]]:
    """hit@1 and category accuracy on the toolchains' own output, per family and in all."""
    tally: dict[str, list[int]] = {}
    for case in datasets.toolchain_cases():
        output = case.output.read_text(encoding="utf-8")
        for kind in datasets.WRAPPERS:
            text, before = datasets.wrap_output(kind, case.command, output)
            analysis = analyze_text(text)
            ex = analysis.excerpts[0] if analysis.excerpts else None
            hit = bool(ex and case.read_well(ex.start - before, ex.end - before))
            right = str(analysis.category) == case.category
            for key in (case.id.split("/")[0], "all"):
                t = tally.setdefault(key, [0, 0, 0])
                t[0], t[1], t[2] = t[0] + 1, t[1] + hit, t[2] + right
    rows = [["toolchain outputs", "reads", "hit@1", "category accuracy"]]
    for key in sorted(tally, key=lambda k: (k == "all", k)):
        n, hits, right = tally[key]
        rows.append([key, str(n), f"{hits / n:.3f}", f"{right / n:.3f}"])
    return rows


# --------------------------------------------------------------------------- cidiff
def cidiff_scores(root: Path, baseline: bool) -> dict[str, float]:
    cases = sorted(p for p in root.iterdir() if (p / "fail.log").is_file())
    hits = tp = reported = truth = 0
    started = time.perf_counter()
    for case in cases:
        gt = cidiff_groundtruth(case)
        a = analyze_path(case / "fail.log", case / "pass.log" if baseline else None)
        numbers = readline_numbers(case / "fail.log")  # the groundtruth's line numbers
        for e in a.excerpts:  # the groundtruth's numbers
            e.start, e.end = numbers[e.start - 1][0], numbers[e.end - 1][1]
        got: set[int] = set()
        for e in a.excerpts:
            got.update(range(e.start, e.end + 1))
        first = a.excerpts[0] if a.excerpts else None
        hits += bool(first and gt & set(range(first.start, first.end + 1)))
        tp += len(got & gt)
        reported += len(got)
        truth += len(gt)
    return {
        "cases": len(cases),
        "hit@1": hits / max(len(cases), 1),
        "precision": tp / max(reported, 1),
        "recall": tp / max(truth, 1),
        "seconds": time.perf_counter() - started,
    }


# --------------------------------------------------------------------------- generated log
_STEPS = [
    "Run actions/checkout@v4",
    "Run actions/setup-python@v5",
    "Run python -m pip install -r requirements.txt",
    "Run python -m pytest -q",
    "Run npm ci",
    "Run go test ./...",
]


def _line(rng: random.Random, i: int) -> str:
    r = rng.random()
    n = rng.randint(0, 99999)
    if r < 0.30:
        return (
            f"tests/unit/test_module_{n % 700}.py::test_case_{n} PASSED{' ' * 20}[ {n % 100:2d}%]"
        )
    if r < 0.45:
        return f"Collecting package-{n % 300}=={n % 9}.{n % 17}.{n % 5}"
    if r < 0.55:
        return f"  Downloading package_{n % 300}-{n % 9}.{n % 17}-py3-none-any.whl ({n % 900} kB)"
    if r < 0.65:
        return f"ok  \tgithub.com/acme/service/pkg/mod{n % 80}\t0.{n % 1000:03d}s"
    if r < 0.75:
        return f"   Compiling crate-{n % 120} v0.{n % 30}.{n % 7}"
    if r < 0.85:
        return (
            f"[INFO] Compiling {n % 400} source files to /home/runner/work/app/app/target/classes"
        )
    if r < 0.93:
        return f"#12 [build {n % 9}/9] RUN make -j4 target_{n % 50}"
    if r < 0.995:
        return f"\x1b[36;1mecho building part {i} of {n}\x1b[0m"
    return f"npm WARN deprecated helper-{n % 40}@1.0.{n % 9}: use something newer"


def generate_log(path: Path, size_mb: int, seed: int = 7) -> int:
    """A GitHub Actions job log of about ``size_mb`` MB ending in a pytest failure."""
    rng = random.Random(seed)
    block: list[str] = []
    i = total = 0
    while total < 4 << 20:
        if i % 20000 == 0:
            step = _STEPS[(i // 20000) % len(_STEPS)]
            block += [f"##[group]{step}", "shell: /usr/bin/bash -e {0}", "##[endgroup]"]
        sec = i % 86400
        hms = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        ts = f"2024-05-01T{hms}.{i % 10_000_000:07d}Z"
        block.append(f"{ts} {_line(rng, i)}\n")
        total += len(block[-1])
        i += 1
    body = "".join(s if s.endswith("\n") else f"2024-05-01T10:00:00.0000000Z {s}\n" for s in block)
    chunk = body.encode()
    target = size_mb * 1024 * 1024
    written = 0
    with open(path, "wb") as fh:
        while written + len(chunk) <= target:
            fh.write(chunk)
            written += len(chunk)
        tail = [
            "=================================== FAILURES ===================================",
            "E       AssertionError: assert Decimal('1.00') == Decimal('1.01')",
            "tests/test_totals.py:7: AssertionError",
            "FAILED tests/test_totals.py::test_line_total_rounds_half_up - AssertionError",
            "1 failed, 2411 passed in 31.02s",
            "##[error]Process completed with exit code 1.",
        ]
        end = "".join(f"2024-05-01T23:59:59.0000000Z {t}\n" for t in tail).encode()
        fh.write(end)
        written += len(end)
    return written


def _run_child(cmd: list[str]) -> tuple[float, int, str, int]:
    """Wall seconds, max RSS (KiB) of the child, its stdout, its exit status."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, int(usage.ru_maxrss), out, proc.returncode


def _cicd_cmd(path: Path) -> list[str]:
    code = "import sys; from cicd_orchestrator.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, "analyze", str(path), "--format", "github", "--json"]


def throughput(path: Path, size: int) -> dict[str, float | str]:
    pattern = load_library().prefilter_regex()
    grep = shutil.which("grep")
    if grep:
        _run_child([grep, "-E", "-i", "-c", pattern, str(path)])  # warm the page cache
    secs, rss, out, rc = _run_child(_cicd_cmd(path))
    if rc != 0:
        raise SystemExit(f"cicd analyze failed on {path} (exit {rc})")
    first = json.loads(out)["excerpts"][0]
    result: dict[str, float | str] = {
        "mb": size / 1e6,
        "cicd_s": secs,
        "cicd_mb_s": size / 1e6 / secs,
        "cicd_rss_mb": rss / 1024,
        "first_excerpt": f"{first['start']}-{first['end']} {first['pattern']}",
    }
    if grep:
        gsecs, grss, _, _ = _run_child([grep, "-E", "-i", "-c", pattern, str(path)])
        result.update(
            {"grep_s": gsecs, "grep_mb_s": size / 1e6 / gsecs, "grep_rss_mb": grss / 1024}
        )
        result["ratio"] = float(result["cicd_mb_s"]) / float(result["grep_mb_s"])
    return result


# --------------------------------------------------------------------------- main
def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cidiff", type=Path, default=ROOT.parent / "shared" / "datasets" / "cidiff")
    ap.add_argument("--size-mb", type=int, default=1024, help="generated log size (default 1024)")
    ap.add_argument(
        "--small-mb", type=int, default=0, help="second size for memory (default size/8)"
    )
    ap.add_argument("--logchunks", type=Path, default=logchunks.DEFAULT_ROOT)
    ap.add_argument("--labels", type=Path, default=logchunks.DEFAULT_LABELS)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-toolchains", action="store_true")
    ap.add_argument("--skip-cidiff", action="store_true")
    ap.add_argument("--skip-logchunks", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the generated log")
    ns = ap.parse_args(argv)
    print(f"prefilter engine: {engine_name()}")
    if not ns.skip_logchunks:
        if not ns.logchunks.is_dir():
            print(f"LogChunks not found at {ns.logchunks}", file=sys.stderr)
            return 2
        labels = logchunks.read_labels(ns.labels) if ns.labels.is_file() else None
        for half in ("dev", "held-out"):
            result = logchunks.score(logchunks.load(ns.logchunks, half), labels)
            print("\n" + "\n".join(logchunks.report(half, result, by_language=True)))
    if not ns.skip_toolchains:
        print("\n" + _table(toolchain_rows()))
    if not ns.skip_cidiff:
        root = ns.cidiff / "breakages" if (ns.cidiff / "breakages").is_dir() else ns.cidiff
        if not root.is_dir():
            print(f"cidiff dataset not found at {ns.cidiff}", file=sys.stderr)
            return 2
        rows = [["cidiff", "cases", "hit@1", "precision", "recall", "seconds"]]
        for baseline in (True, False):
            s = cidiff_scores(root, baseline)
            rows.append(
                [
                    "with baseline" if baseline else "without baseline",
                    str(int(s["cases"])),
                    f"{s['hit@1']:.3f}",
                    f"{s['precision']:.3f}",
                    f"{s['recall']:.3f}",
                    f"{s['seconds']:.1f}",
                ]
            )
        print("\n" + _table(rows))
    if ns.skip_throughput:
        return 0
    small = ns.small_mb or max(1, ns.size_mb // 8)
    with tempfile.TemporaryDirectory(dir=ns.workdir) as tmp:
        rows = [
            [
                "log MB",
                "cicd s",
                "cicd MB/s",
                "cicd peak RSS MB",
                "grep s",
                "grep MB/s",
                "ratio",
                "first excerpt",
            ]
        ]
        for mb in (small, ns.size_mb):
            path = Path(tmp) / f"gh-{mb}.log"
            size = generate_log(path, mb)
            r = throughput(path, size)
            rows.append(
                [
                    f"{r['mb']:.0f}",
                    f"{r['cicd_s']:.2f}",
                    f"{r['cicd_mb_s']:.0f}",
                    f"{r['cicd_rss_mb']:.0f}",
                    f"{r.get('grep_s', float('nan')):.2f}",
                    f"{r.get('grep_mb_s', float('nan')):.0f}",
                    f"{r.get('ratio', float('nan')):.2f}",
                    str(r["first_excerpt"]),
                ]
            )
            path.unlink()
        print("\n" + _table(rows))
        print("\nratio = cicd MB/s / grep -E -i -c MB/s over the same prefilter patterns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
