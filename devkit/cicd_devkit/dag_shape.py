"""A DAG's shape (task ids, TaskGroups, dependencies) and a trivial DAG file of that shape.

``make bench-overhead`` runs an attempt DAG beside a DAG of exactly its shape whose task
bodies return at once: the difference is what the product's tasks cost beyond Airflow's own
scheduling and task start-up. The trivial DAG is generated from the product's DAG object (its
task group tree and its tasks' upstream lists), so the two shapes cannot drift apart.
"""

from __future__ import annotations

import pprint
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GroupNode:
    group_id: str  # the full id (prefixed by the parent's, as Airflow does)
    label: str  # the id given to TaskGroup (without the parent's prefix)
    parent: str | None  # the parent's full id, None for the root group
    prefix_group_id: bool = True
    tooltip: str = ""


@dataclass(frozen=True)
class TaskNode:
    task_id: str  # the full id
    label: str  # the id given to the operator (without the group's prefix)
    group: str | None  # the full id of its TaskGroup, None for the root group
    trigger_rule: str = "all_success"


@dataclass
class Shape:
    """Everything of a DAG that the scheduler's and the graph's view depend on."""

    dag_id: str
    max_active_runs: int
    #: groups and tasks in the order the DAG declares them (parents before children)
    nodes: list[GroupNode | TaskNode] = field(default_factory=list)
    #: (upstream task id, downstream task id), every task-level dependency
    edges: list[tuple[str, str]] = field(default_factory=list)
    #: per group: the groups and tasks set upstream or downstream of the group as a whole
    group_upstream_groups: dict[str, list[str]] = field(default_factory=dict)
    group_upstream_tasks: dict[str, list[str]] = field(default_factory=dict)
    group_downstream_tasks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def task_ids(self) -> list[str]:
        return [n.task_id for n in self.nodes if isinstance(n, TaskNode)]

    @property
    def group_ids(self) -> list[str]:
        return [n.group_id for n in self.nodes if isinstance(n, GroupNode)]


def _walk(group: Any, parent: str | None, shape: Shape) -> None:
    from airflow.sdk import TaskGroup

    for child in group.children.values():
        if isinstance(child, TaskGroup):
            shape.nodes.append(
                GroupNode(
                    group_id=child.group_id,
                    label=child._group_id,
                    parent=parent,
                    prefix_group_id=child.prefix_group_id,
                    tooltip=child.tooltip,
                )
            )
            _walk(child, child.group_id, shape)
        else:
            shape.nodes.append(
                TaskNode(
                    task_id=child.task_id,
                    label=child.label,
                    group=parent,
                    trigger_rule=str(getattr(child.trigger_rule, "value", child.trigger_rule)),
                )
            )


def shape_of(dag: Any) -> Shape:
    """The shape of an Airflow DAG object (``airflow.sdk.DAG``)."""
    shape = Shape(dag_id=dag.dag_id, max_active_runs=int(dag.max_active_runs))
    _walk(dag.task_group, None, shape)
    shape.edges = sorted((up, t.task_id) for t in dag.tasks for up in t.upstream_task_ids)
    for group_id, group in dag.task_group.get_task_group_dict().items():
        if group_id is None:
            continue
        if ups := sorted(g for g in group.upstream_group_ids if g is not None):
            shape.group_upstream_groups[group_id] = ups
        if ups := sorted(group.upstream_task_ids):
            shape.group_upstream_tasks[group_id] = ups
        if downs := sorted(group.downstream_task_ids):
            shape.group_downstream_tasks[group_id] = downs
    return shape


def _shape_literal(shape: Shape) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    for n in shape.nodes:
        if isinstance(n, GroupNode):
            nodes.append(
                {
                    "kind": "group",
                    "id": n.group_id,
                    "label": n.label,
                    "parent": n.parent,
                    "prefix_group_id": n.prefix_group_id,
                    "tooltip": n.tooltip,
                }
            )
        else:
            nodes.append(
                {
                    "kind": "task",
                    "id": n.task_id,
                    "label": n.label,
                    "parent": n.group,
                    "trigger_rule": n.trigger_rule,
                }
            )
    return {
        "max_active_runs": shape.max_active_runs,
        "nodes": nodes,
        "edges": [list(e) for e in shape.edges],
        "group_upstream_groups": shape.group_upstream_groups,
        "group_upstream_tasks": shape.group_upstream_tasks,
        "group_downstream_tasks": shape.group_downstream_tasks,
    }


_TEMPLATE = '''"""# {dag_id}

A trivial DAG of exactly the shape of `{source}` (the same task ids, TaskGroups and
dependencies) whose task bodies return at once: the floor that `make bench-overhead` compares
the attempt DAG with. Generated by `cicd_devkit.dag_shape` from the DAG object; do not edit.
"""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TaskGroup

SHAPE = {shape}


def _done() -> None:
    """Returns at once."""


with DAG(
    dag_id="{dag_id}",
    description="Same shape as {source}, bodies that return at once",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    catchup=False,
    tags=["cicd-orchestrator", "benchmark"],
    max_active_runs=SHAPE["max_active_runs"],
    is_paused_upon_creation={paused},
) as dag:
    groups: dict[str, TaskGroup] = {{}}
    tasks: dict[str, PythonOperator] = {{}}
    for node in SHAPE["nodes"]:
        parent = groups[node["parent"]] if node["parent"] else None
        if node["kind"] == "group":
            groups[node["id"]] = TaskGroup(
                node["label"],
                prefix_group_id=node["prefix_group_id"],
                tooltip=node["tooltip"],
                parent_group=parent,
            )
        else:
            tasks[node["id"]] = PythonOperator(
                task_id=node["label"],
                python_callable=_done,
                trigger_rule=node["trigger_rule"],
                task_group=parent,
            )
    for upstream, downstream in SHAPE["edges"]:
        tasks[downstream].set_upstream(tasks[upstream])
    for group_id, upstream_groups in SHAPE["group_upstream_groups"].items():
        for upstream in upstream_groups:
            groups[upstream] >> groups[group_id]
    for group_id, upstream_tasks in SHAPE["group_upstream_tasks"].items():
        for upstream in upstream_tasks:
            tasks[upstream] >> groups[group_id]
    for group_id, downstream_tasks in SHAPE["group_downstream_tasks"].items():
        for downstream in downstream_tasks:
            groups[group_id] >> tasks[downstream]
'''


def trivial_dag_source(shape: Shape, dag_id: str, paused: bool = False) -> str:
    """The text of a DAG file that declares ``dag_id`` with ``shape`` and no-op bodies
    (``paused``: the DAG is paused when Airflow first parses it)."""
    text = pprint.pformat(_shape_literal(shape), width=96, sort_dicts=False)
    return _TEMPLATE.format(dag_id=dag_id, source=shape.dag_id, shape=text, paused=paused)


def trivial_dag_id(dag_id: str) -> str:
    return f"bench_trivial__{dag_id}"


def write_trivial_dag(
    dag: Any, folder: Path, dag_id: str | None = None, paused: bool = False
) -> tuple[str, Path]:
    """Write the trivial twin of ``dag`` into ``folder``; returns its DAG id and file."""
    dag_id = dag_id or trivial_dag_id(dag.dag_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(trivial_dag_source(shape_of(dag), dag_id, paused))
    return dag_id, path
