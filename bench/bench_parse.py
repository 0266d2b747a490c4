"""`make bench-parse`: what parsing each DAG file costs a task, beside its baselines.

Every task process parses its DAG's file before it runs the task body, and the DAG processor
parses every file again and again. Each figure is the median of ``--runs`` fresh processes
that have imported what a task process has before it parses (the Task SDK's task runner and
the standard provider's operators), then time the DAG file alone:

- **product**: the DAG file as shipped (task bodies named, imported when a task runs);
- **trivial**: a DAG of the attempt DAG's exact shape whose bodies return at once
  (generated from the DAG object, as ``make bench-overhead`` does);
- **eager**: the DAG file and every task body's module with the stages they run (and
  Airflow's ``TriggerDagRunOperator``), which is what each parse cost while the factory
  imported the task bodies with the DAG;
- **preloaded**: the DAG file in a task process forked from a scheduler or Celery worker that
  imported the package at its start (``airflow/preload.py``), as the deployments run.

Also: how many of the orchestrator's modules a parse imports, and what the first task of an
attempt (``open_session``) imports when it runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "devkit"))

TARGET_MS = 100.0
#: what the factory imported with the DAG while it held the task bodies themselves
BODIES = (
    "cicd_orchestrator.airflow.tasks",
    "cicd_orchestrator.airflow.monitor",
    "cicd_orchestrator.stages.discovery",
    "cicd_orchestrator.stages.classification",
    "cicd_orchestrator.stages.fixing",
    "cicd_orchestrator.publish.attempt",
    "cicd_orchestrator.validation.replay",
    "airflow.providers.standard.operators.trigger_dagrun",
)

_PROBE = r"""
import importlib, importlib.util, json, sys, time, warnings
warnings.simplefilter("ignore")
import airflow.sdk.execution_time.task_runner  # what the task process has imported
import airflow.providers.standard.operators.python  # noqa: F401
mode, path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "preloaded":
    from cicd_orchestrator.airflow.preload import preload
    preload(["airflow", "scheduler"])
before = set(sys.modules)
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_file", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
for name in extra:
    importlib.import_module(name)
elapsed = time.perf_counter() - started
ours = sorted(m for m in set(sys.modules) - before if m.startswith("cicd_orchestrator"))
print(json.dumps({"ms": elapsed * 1000, "modules": len(ours)}))
"""


def probe(path: Path, extra: tuple[str, ...] = (), mode: str = "plain") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, str(path), *extra],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(
    path: Path, runs: int, extra: tuple[str, ...] = (), mode: str = "plain"
) -> tuple[float, int]:
    samples = [probe(path, extra, mode) for _ in range(runs)]
    return statistics.median(s["ms"] for s in samples), int(samples[-1]["modules"])


def trivial_twin(dag_file: Path, folder: Path) -> Path | None:
    """The trivial DAG of ``dag_file``'s shape (None for a DAG that is not an attempt)."""
    import runpy

    from cicd_devkit.dag_shape import write_trivial_dag

    if "attempt" not in dag_file.name:
        return None
    dag = runpy.run_path(str(dag_file))["dag"]
    return write_trivial_dag(dag, folder)[1]


def open_session_imports() -> int:
    """The orchestrator's modules the first task of an attempt imports to run."""
    code = (
        "import sys, warnings; warnings.simplefilter('ignore');"
        "import airflow.sdk.execution_time.task_runner;"
        "from cicd_orchestrator.airflow.bodies import task;"
        "task('open_session').resolve();"
        "print(len([m for m in sys.modules if m.startswith('cicd_orchestrator')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return int(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dag_file in sorted((ROOT / "dags").glob("*.py")):
            product, modules = measure(dag_file, args.runs)
            eager, _ = measure(dag_file, args.runs, BODIES)
            preloaded, _ = measure(dag_file, args.runs, mode="preloaded")
            twin = trivial_twin(dag_file, Path(tmp))
            trivial = measure(twin, args.runs)[0] if twin else None
            rows.append((dag_file.name, product, trivial, eager, preloaded, modules))
    print(f"DAG file parse in a task process, median of {args.runs} (target ≤ {TARGET_MS:.0f} ms)")
    print(
        f"{'DAG file':44} {'product':>9} {'trivial':>9} {'eager':>9} {'preloaded':>10} "
        f"{'modules':>8}"
    )
    for name, product, trivial, eager, preloaded, modules in rows:
        twin = f"{trivial:7.0f}ms" if trivial is not None else f"{'-':>9}"
        print(f"{name:44} {product:7.0f}ms {twin} {eager:7.0f}ms {preloaded:8.0f}ms {modules:8d}")
    worst = max(r[1] for r in rows)
    print(f"slowest product parse {worst:.0f} ms: {'meets' if worst <= TARGET_MS else 'misses'}")
    print(f"open_session imports {open_session_imports()} of the orchestrator's modules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
