"""Every DAG imports without error, the shape of the design card holds, nothing runs at import."""

from __future__ import annotations

import inspect
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk import XComArg

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
EXPECTED = {
    "cicd_attempt_1_standard_parallel_fixing",
    "cicd_attempt_2_extended_analysis",
    "cicd_attempt_3_sequential_fixing",
    "cicd_attempt_4_manual_intervention",
    "cicd_attempt_5_emergency_rollback",
    "cicd_monitor",
    "cicd_sweep",
    "cicd_maintenance",
}
GROUPS = ("discovery", "classification", "fixing", "validation")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors_and_eight_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_tags_retries_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "cicd-orchestrator" in dag.tags
    assert dag.doc_md and len(dag.doc_md) > 80
    for task in dag.tasks:
        assert task.retries >= 0
    assert any(task.retries >= 1 for task in dag.tasks)


@pytest.mark.parametrize("dag_id", sorted(d for d in EXPECTED if "attempt" in d))
def test_attempt_dags_have_four_groups_with_parallel_tasks(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    groups = dag.task_group.children
    for name in GROUPS:
        assert name in groups, f"{dag_id} lacks the {name} TaskGroup"
        tasks = [t for t in dag.tasks if t.task_id.startswith(f"{name}.")]
        gate = [
            t for t in tasks if t.task_id.split(".")[1] in ("gate", "merge", "apply_sequentially")
        ]
        parallel = [t for t in tasks if t not in gate]
        assert len(parallel) >= 2, f"{dag_id}.{name} has no parallel tasks"
        # the parallel tasks do not depend on each other (the fixing tasks only for the order
        # the strategy's parallelism gives them: test_fixing_tasks_run_as_the_seed_says)
        ids = {t.task_id for t in parallel}
        for task in parallel if name != "fixing" else []:
            assert not (task.upstream_task_ids & ids)
    order = [
        "open_session",
        "discovery.gate",
        "classification.gate",
        "validation.gate",
        "publish",
        "handoff_to_monitor",
    ]
    for before, after in itertools.pairwise(order):
        assert before in dag.get_task(after).get_flat_relative_ids(upstream=True)


#: the seed's strategy_config: the timeout (s) and parallelism of each attempt's fixing
SEED_FIXING = {
    "cicd_attempt_1_standard_parallel_fixing": (300, None),  # full
    "cicd_attempt_2_extended_analysis": (600, 3),  # staged
    "cicd_attempt_3_sequential_fixing": (900, 1),  # sequential
    "cicd_attempt_4_manual_intervention": (300, None),  # coordinated
    "cicd_attempt_5_emergency_rollback": (180, None),  # emergency
}


def _fixing_tasks(dag):
    gates = ("gate", "merge", "apply_sequentially")
    return [
        t
        for t in dag.tasks
        if t.task_id.startswith("fixing.") and t.task_id.split(".")[1] not in gates
    ]


def _most_at_once(tasks) -> int:
    """The most tasks that can run at once: the longest set of them no one of which is
    upstream of another (the graph is small: every subset is tried)."""
    ids = [t.task_id for t in tasks]
    ups = {t.task_id: t.get_flat_relative_ids(upstream=True) for t in tasks}
    for size in range(len(ids), 0, -1):
        for combo in itertools.combinations(ids, size):
            if all(a not in ups[b] for a in combo for b in combo):
                return size
    return 0


@pytest.mark.parametrize("dag_id", sorted(SEED_FIXING))
def test_fixing_tasks_run_as_the_seed_says(dagbag, dag_id):
    """Each fixing task is bounded by the seed's timeout of its strategy, and no more of
    them run at once than the strategy's parallelism allows (all of them for full)."""
    import datetime

    timeout, parallelism = SEED_FIXING[dag_id]
    fixing = _fixing_tasks(dagbag.dags[dag_id])
    assert len(fixing) >= 2
    for task in fixing:
        assert task.execution_timeout == datetime.timedelta(seconds=timeout), task.task_id
    assert _most_at_once(fixing) == (parallelism or len(fixing))
    # every fixing task still runs after classification and before the gate
    cls = "classification.gate"
    for task in fixing:
        assert cls in task.get_flat_relative_ids(upstream=True), task.task_id


def test_the_sweep_opens_sessions_on_the_dag_the_configuration_names(dagbag):
    """The DAG of the first attempt is no constant of the sweep: each item names it."""
    task = dagbag.dags["cicd_sweep"].get_task("open_sessions")
    assert "trigger_dag_id" not in task.partial_kwargs


@pytest.mark.parametrize("dag_id", sorted(d for d in EXPECTED if "attempt" in d))
def test_the_monitor_takes_over_even_when_publishing_failed(dagbag, dag_id):
    from cicd_orchestrator.airflow.operators import HandoffOperator

    dag = dagbag.dags[dag_id]
    handoff = dag.get_task("handoff_to_monitor")
    assert isinstance(handoff, HandoffOperator)
    # runs after a failed publish (not after a skipped one: a duplicate request)
    assert handoff.trigger_rule == "none_skipped"
    assert dag.get_task("publish").trigger_rule == "none_skipped"
    # what it hands over comes from open_session, which a failed publish does not lose
    assert isinstance(handoff.ticket, XComArg)
    assert handoff.ticket.operator.task_id == "open_session"
    # and the run still fails when one of its tasks failed
    watcher = dag.get_task("watcher")
    assert watcher.trigger_rule == "one_failed" and watcher.retries == 0
    assert watcher.upstream_task_ids == {t.task_id for t in dag.tasks} - {"watcher"}
    assert not watcher.on_failure_callback


@pytest.mark.parametrize("dag_id", sorted(d for d in EXPECTED if "attempt" in d))
def test_tasks_take_their_inputs_as_xcom_args(dagbag, dag_id):
    """Every task of an attempt gets the ticket of open_session, every gate the outputs of
    its group's parallel tasks: no task pulls XCom by a task id of its own choosing."""
    dag = dagbag.dags[dag_id]
    for task in dag.tasks:
        if task.task_id in ("open_session", "watcher", "handoff_to_monitor"):
            continue
        ticket = task.op_kwargs["ticket"]
        assert isinstance(ticket, XComArg) and ticket.operator.task_id == "open_session"
        group = task.task_id.partition(".")[0]
        if task.task_id.rpartition(".")[2] in ("gate", "merge", "apply_sequentially"):
            inputs = [v for k, v in task.op_kwargs.items() if k != "ticket"]
            args = [a for v in inputs for a in (v if isinstance(v, list) else [v])]
            assert args and all(isinstance(a, XComArg) for a in args)
            sources = {a.operator.task_id for a in args}
            parallel = {t.task_id for t in dag.tasks if t.task_id.startswith(f"{group}.")}
            assert sources == parallel - {task.task_id}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_every_callable_takes_the_arguments_it_is_given(dagbag, dag_id):
    """Airflow merges a task's op_kwargs into the context and passes the callable what its
    signature names (all of it to ``**kwargs``): every op_kwarg reaches it and the call
    binds."""
    from airflow.sdk.bases.decorator import KeywordParameters

    from cicd_orchestrator.airflow.bodies import Body

    context_keys = ("dag", "dag_run", "ti", "params", "run_id", "task", "logical_date")
    for task in dagbag.dags[dag_id].tasks:
        fn = getattr(task, "python_callable", None)
        if fn is None:
            continue
        if isinstance(fn, Body):  # the body the task imports when it runs
            fn = fn.resolve()
        context = {k: object() for k in context_keys} | dict(task.op_kwargs)
        kwargs = KeywordParameters.determine(fn, (), context).unpacking()
        assert set(task.op_kwargs) <= set(kwargs), (task.task_id, sorted(kwargs))
        inspect.signature(inspect.unwrap(fn)).bind(**kwargs)


def test_the_monitor_hands_its_decision_on_as_xcom_args(dagbag):
    dag = dagbag.dags["cicd_monitor"]
    decide = dag.get_task("decide")
    assert decide.op_kwargs["target"].operator.task_id == "load_target"
    assert decide.op_kwargs["event"].operator.task_id == "watch_ci"
    assert dag.get_task("watch_ci").target.operator.task_id == "load_target"
    for task_id in ("escalation_delay", "trigger_next_attempt"):
        assert dag.get_task(task_id).next_step.operator.task_id == "decide"


def test_attempt_params_have_a_schema_for_the_trigger_form(dagbag):
    dag = dagbag.dags["cicd_attempt_1_standard_parallel_fixing"]
    params = dag.params
    for name in ("repository", "run_id", "provider", "attempt", "config"):
        assert name in params
    assert params.get_param("run_id").schema["type"] == ["null", "integer"]


def test_monitor_waits_deferred(dagbag):
    from cicd_orchestrator.airflow.operators import CIStatusSensor, EscalationDelayOperator

    dag = dagbag.dags["cicd_monitor"]
    kinds = {type(t) for t in dag.tasks}
    assert CIStatusSensor in kinds and EscalationDelayOperator in kinds


def test_trigger_is_importable_and_serialises():
    from cicd_orchestrator.airflow.triggers import CIStatusTrigger

    target = {"session_id": "s", "attempt": 1, "provider": "local", "config": {}}
    trigger = CIStatusTrigger(target)
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    assert cls(**kwargs).serialize() == (path, kwargs)


def test_dag_files_do_nothing_at_import(tmp_path):
    """Importing the DAG files touches no Variable, connection, network or provider state."""
    code = (
        "import sys, socket, runpy, glob\n"
        "def deny(*a, **k): raise SystemExit('network at import')\n"
        "socket.socket.connect = deny\n"
        "from airflow.sdk import Variable\n"
        "Variable.get = staticmethod(lambda *a, **k: (_ for _ in ()).throw(SystemExit('var')))\n"
        f"for f in sorted(glob.glob('{DAGS}/*.py')): runpy.run_path(f)\n"
        "print('ok')\n"
    )
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path), CICD_LOCAL_ROOT=str(tmp_path / "ci"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
    assert not (tmp_path / "ci").exists()


def test_dag_files_import_no_task_body(tmp_path):
    """A DAG file parses without the stages, the pattern library, the repair tools and the
    metadata database's models: every task start and the DAG processor pay only for the
    DAG's shape; a task imports its body when it runs."""
    heavy = (
        "cicd_orchestrator.airflow.tasks",
        "cicd_orchestrator.airflow.monitor",
        "cicd_orchestrator.stages.discovery",
        "cicd_orchestrator.stages.classification",
        "cicd_orchestrator.stages.fixing",
        "cicd_orchestrator.logs.scoring",
        "cicd_orchestrator.repair.registry",
        "cicd_orchestrator.publish.attempt",
        "airflow.providers.standard.operators.trigger_dagrun",
    )
    code = (
        "import sys, runpy, glob\n"
        f"for f in sorted(glob.glob('{DAGS}/*.py')): runpy.run_path(f)\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_tasks_use_the_configured_provider_pool(monkeypatch):
    from cicd_orchestrator.airflow import factory
    from cicd_orchestrator.constants import Strategy
    from cicd_orchestrator.strategies import load_strategies

    spec = load_strategies()[Strategy.STANDARD_PARALLEL_FIXING]
    assert {t.pool for t in factory.build_attempt_dag(spec).tasks} == {"default_pool"}
    monkeypatch.setenv(factory.POOL_ENV, "cicd_provider_calls")
    assert {t.pool for t in factory.build_attempt_dag(spec).tasks} == {"cicd_provider_calls"}


def test_the_tasks_that_make_or_judge_a_repair_link_to_the_run_pull_request_and_issue(dagbag):
    """Each link is an XCom its task writes as it ends: the tasks that open the session,
    publish the repair and decide on CI's verdict carry them, the others none."""
    every = {"Failing CI run", "Pull request", "Escalation issue"}
    for dag_id in sorted(EXPECTED - {"cicd_sweep", "cicd_maintenance"}):
        dag = dagbag.dags[dag_id]
        linked = {
            t.task_id for t in dag.tasks if {link.name for link in t.operator_extra_links} == every
        }
        unlinked = {t.task_id for t in dag.tasks if not t.operator_extra_links}
        expected = {"decide"} if dag_id == "cicd_monitor" else {"open_session", "publish"}
        assert linked == expected, dag_id
        assert linked | unlinked == {t.task_id for t in dag.tasks}, dag_id


def test_links_read_the_session_state(monkeypatch):
    from cicd_orchestrator.airflow import links, state_store
    from cicd_orchestrator.models import Links, SessionState

    state = SessionState(
        session_id="s",
        provider="github",
        repository="o/r",
        pipeline_id=1,
        branch="main",
        head_sha="a" * 40,
        links=Links(
            failed_run="https://gh/o/r/actions/runs/1",
            pull_requests=["https://gh/o/r/pull/2"],
            issues=[],
        ),
    )
    monkeypatch.setattr(state_store, "load_session", lambda sid: state)

    class TI:
        def xcom_pull(self, task_ids):
            return {"session_id": "s"} if task_ids == "open_session" else None

    assert links.FailedRunLink().get_link(None, ti_key=TI()) == "https://gh/o/r/actions/runs/1"
    assert links.PullRequestLink().get_link(None, ti_key=TI()) == "https://gh/o/r/pull/2"
    assert links.IssueLink().get_link(None, ti_key=TI()) == ""
