"""The trivial DAG of `make bench-overhead` has exactly its attempt DAG's shape."""

from __future__ import annotations

import datetime
import runpy
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TaskGroup
from cicd_devkit.dag_shape import shape_of, trivial_dag_source, write_trivial_dag

DAGS = Path(__file__).resolve().parents[3] / "dags"
ATTEMPT_FILES = sorted(DAGS.glob("cicd_attempt_*.py"))


def relations(dag: Any) -> dict[str, Any]:
    """A DAG's task ids, groups (with their children) and every dependency, read from the
    DAG object itself (not through the generator's own walk)."""
    groups = dag.task_group.get_task_group_dict()
    return {
        "tasks": {t.task_id: (t.label, t.task_group.group_id, t.trigger_rule) for t in dag.tasks},
        "groups": {
            gid: (
                sorted(g.children),
                g.prefix_group_id,
                sorted(x for x in g.upstream_group_ids if x),
                sorted(x for x in g.downstream_group_ids if x),
                sorted(g.upstream_task_ids),
                sorted(g.downstream_task_ids),
            )
            for gid, g in groups.items()
        },
        "edges": {(up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids},
        "downstream": {(t.task_id, down) for t in dag.tasks for down in t.downstream_task_ids},
    }


def load_dag(path: Path) -> Any:
    return runpy.run_path(str(path))["dag"]


@pytest.mark.parametrize("path", ATTEMPT_FILES, ids=lambda p: p.stem)
def test_trivial_dag_has_the_attempt_dags_shape(path: Path, tmp_path: Path) -> None:
    product = load_dag(path)
    dag_id, written = write_trivial_dag(product, tmp_path)
    trivial = load_dag(written)
    assert trivial.dag_id == dag_id != product.dag_id
    assert relations(trivial) == relations(product)
    assert len(relations(product)["edges"]) > len(product.tasks)  # the ticket's edges too
    assert {"discovery", "classification", "fixing", "validation"} <= set(
        trivial.task_group.children
    )
    # the bodies return at once: no task of the product's package runs
    for task in trivial.tasks:
        assert type(task) is PythonOperator
        assert task.python_callable() is None


def test_nested_groups_without_prefix_and_group_edges(tmp_path: Path) -> None:
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    with DAG("shapes", schedule=None, start_date=start) as dag:
        first = PythonOperator(task_id="first", python_callable=print)
        with TaskGroup("outer") as outer:
            a = PythonOperator(task_id="a", python_callable=print)
            with TaskGroup("inner", prefix_group_id=False) as inner:
                b = PythonOperator(task_id="b", python_callable=print)
                c = PythonOperator(task_id="c", python_callable=print, trigger_rule="all_done")
            a >> inner
            b >> c
        with TaskGroup("after") as after:
            PythonOperator(task_id="d", python_callable=print)
        last = PythonOperator(task_id="last", python_callable=print)
        first >> outer >> after >> last
        first >> last
    assert {t.task_id for t in dag.tasks} >= {"outer.a", "b", "c", "after.d"}
    _, written = write_trivial_dag(dag, tmp_path, dag_id="shapes_twin")
    assert relations(load_dag(written)) == relations(dag)


def test_a_dropped_edge_shows(tmp_path: Path) -> None:
    """The comparison above catches a generator that loses a dependency."""
    product = load_dag(DAGS / "cicd_attempt_1_standard_parallel_fixing.py")
    shape = shape_of(product)
    dropped = ("validation.gate", "publish")
    assert dropped in shape.edges
    shape.edges.remove(dropped)
    shape.group_downstream_tasks.pop("validation")  # which would add it back
    path = tmp_path / "lossy.py"
    path.write_text(trivial_dag_source(shape, "lossy"))
    got = relations(load_dag(path))
    assert dropped not in got["edges"]
    assert got != relations(product)
