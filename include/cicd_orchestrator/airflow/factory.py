"""The DAG factory: five attempt DAGs (one per strategy), the monitor DAG and the sweep DAG.

DAG files call these builders and nothing else; no task body, connection or Variable is
touched at import time.
"""

from __future__ import annotations

import datetime
import os
from functools import partial
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, TaskGroup
from airflow.task.trigger_rule import TriggerRule

from cicd_orchestrator.airflow import tasks
from cicd_orchestrator.airflow.links import SESSION_LINKS
from cicd_orchestrator.airflow.operators import (
    CIStatusSensor,
    EscalationDelayOperator,
    HandoffOperator,
)
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.strategies import MONITOR_DAG_ID, SWEEP_DAG_ID, StrategySpec, load_strategies

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TAGS = ["cicd-orchestrator"]


POOL_ENV = "CICD_PROVIDER_POOL"


def provider_pool() -> str:
    """The Airflow pool that bounds concurrent tasks calling the CI provider (GitHub's rate
    limits): the deployment names it in ``CICD_PROVIDER_POOL`` and creates it (see README);
    unset, the tasks use ``default_pool`` (a pool that does not exist would hold every task)."""
    return os.environ.get(POOL_ENV) or "default_pool"


def _default_args(retries: int = 1) -> dict[str, Any]:
    return {
        "owner": "platform",
        "retries": retries,
        "retry_delay": datetime.timedelta(seconds=10),
        "on_failure_callback": tasks.record_stage_errors,
        "pool": provider_pool(),
    }


def session_params() -> dict[str, Param]:
    """The trigger form: a new session (repository + run) or a later attempt (session id)."""
    return {
        "repository": Param(
            None,
            type=["null", "string"],
            pattern=r"^[^/\s]+/[^/\s]+$",
            title="Repository",
            description="owner/name of the failed run",
        ),
        "run_id": Param(None, type=["null", "integer"], minimum=1, title="Failed run id"),
        "provider": Param(
            "local",
            type="string",
            enum=["local", "github", "gitlab", "jenkins"],
            title="CI provider",
        ),
        "head_sha": Param(
            None,
            type=["null", "string"],
            title="Failed commit",
            description="instead of run_id: the newest failed run of this commit",
        ),
        "priority": Param(
            None,
            type=["null", "string"],
            enum=[None, "urgent", "critical", "high", "medium", "low"],
            title="Priority",
            description="default: from the branch",
        ),
        "session_id": Param(
            None,
            type=["null", "string"],
            title="Session id",
            description="set by the monitor for attempts after the first",
        ),
        "attempt": Param(1, type="integer", minimum=1, maximum=10, title="Attempt"),
        "config": Param(
            {},
            type="object",
            title="Configuration overrides",
            description="keys of the cicd_orchestrator_config Variable",
        ),
    }


class SessionTaskOperator(PythonOperator):
    """A task of a session: a Python callable with links to the run, pull request, issue."""

    operator_extra_links = SESSION_LINKS


def _task(task_id: str, fn: Any, **kwargs: Any) -> PythonOperator:
    return SessionTaskOperator(task_id=task_id, python_callable=fn, **kwargs)


def build_attempt_dag(spec: StrategySpec, doc_md: str | None = None) -> DAG:
    """One attempt DAG: open, four TaskGroups (each with parallel tasks), publish, hand-off."""
    with DAG(
        dag_id=spec.dag_id,
        description=f"Attempt strategy: {spec.title}",
        doc_md=doc_md,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=[*TAGS, "attempt", spec.strategy.value],
        params=session_params(),
        default_args=_default_args(),
        max_active_runs=16,
        render_template_as_native_obj=True,
    ) as dag:
        opened = _task(
            tasks.OPEN_TASK,
            partial(tasks.open_session, spec.dag_id, spec.strategy.value),
            max_active_tis_per_dag=1,
            # a retry after a lost answer of the API server finds the session its first try
            # made; malformed requests fail without retry (AirflowFailException)
            retries=2,
        )
        with TaskGroup("discovery", tooltip="detect failures | analyse context") as discovery:
            found = [
                _task("detect_failures", tasks.detect_failures),
                _task("analyse_context", tasks.analyse_context),
            ]
            extras = {
                "bisect_culprit": tasks.bisect_culprit,
                "compare_environment": tasks.compare_environment,
            }
            found += [_task(name, extras[name]) for name in spec.discovery_extras]
            found >> _task("gate", tasks.discovery_gate)
        with TaskGroup("classification", tooltip="classify patterns | map dependencies") as cls:
            [
                _task("classify_patterns", tasks.classify_patterns),
                _task("map_dependencies", tasks.map_dependencies),
            ] >> _task("gate", tasks.classification_gate)
        with TaskGroup("fixing", tooltip=f"{spec.fixing} fixing") as fixing:
            _fixing_tasks(spec)
        with TaskGroup("validation", tooltip="validate fixes | regression run") as validation:
            [
                _task("validate_fixes", tasks.validate_fixes),
                _task("regression_run", tasks.regression_run),
            ] >> _task("gate", tasks.validation_gate)
        published = _task("publish", tasks.publish, trigger_rule=TriggerRule.NONE_SKIPPED)
        # the monitor takes over whatever happened to publish (a failed publish leaves nothing
        # to watch: the monitor escalates or closes), so that a session always ends
        opened_ref = f"(ti.xcom_pull(task_ids='{tasks.OPEN_TASK}') or {{}})"
        handoff = HandoffOperator(
            task_id="handoff_to_monitor",
            open_task_id=tasks.OPEN_TASK,
            trigger_dag_id=MONITOR_DAG_ID,
            trigger_run_id=f"{{{{ {opened_ref}.get('session_id') }}}}"
            f"__monitor{{{{ {opened_ref}.get('attempt') }}}}",
            conf={
                "session_id": f"{{{{ {opened_ref}.get('session_id') }}}}",
                "attempt": f"{{{{ {opened_ref}.get('attempt') }}}}",
                "config": f"{{{{ {opened_ref}.get('config') }}}}",
            },
            skip_when_already_exists=True,
            trigger_rule=TriggerRule.NONE_SKIPPED,
        )
        opened >> discovery >> cls >> fixing >> validation >> published >> handoff
        # the hand-off succeeds after a failed task too: this watcher (Airflow's pattern for
        # runs with ALL_DONE-like trigger rules) fails the run when any of its tasks failed
        watcher = _task(
            "watcher",
            tasks.attempt_watcher,
            trigger_rule=TriggerRule.ONE_FAILED,
            retries=0,
            on_failure_callback=None,
        )
        [t for t in dag.tasks if t is not watcher] >> watcher
    return dag


def _fixing_tasks(spec: StrategySpec) -> None:
    exec_timeout = datetime.timedelta(seconds=max(spec.timeout_seconds, 120))
    if spec.fixing in ("parallel", "sequential"):
        fixers = [
            _task(f"fix_{group}", partial(tasks.fix_group, group), execution_timeout=exec_timeout)
            for group in spec.fixers
        ]
        gate_fn = tasks.merge_fixes if spec.fixing == "parallel" else tasks.sequential_fixes
        gate_id = "merge" if spec.fixing == "parallel" else "apply_sequentially"
        fixers >> _task(gate_id, partial(gate_fn, tuple(spec.fixers)))
    elif spec.fixing == "issue":
        [
            _task("prepare_issue", tasks.prepare_issue),
            _task("package_context", tasks.package_context),
        ] >> _task("gate", partial(tasks.handover_gate, "issue"))
    else:
        [
            _task("prepare_rollback", tasks.prepare_rollback, execution_timeout=exec_timeout),
            _task("preserve_state", tasks.preserve_state),
        ] >> _task("gate", partial(tasks.handover_gate, "rollback"))


def build_attempt_dags() -> dict[str, DAG]:
    return {spec.dag_id: build_attempt_dag(spec) for spec in load_strategies().values()}


def build_monitor_dag(doc_md: str | None = None) -> DAG:
    """Wait (deferred) for CI on what an attempt published; close or escalate."""
    with DAG(
        dag_id=MONITOR_DAG_ID,
        description="Watch CI on the published repair; close the session or escalate",
        doc_md=doc_md,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=[*TAGS, "monitor"],
        params={
            "session_id": Param(None, type=["null", "string"], title="Session id"),
            "attempt": Param(1, type=["integer", "string"], title="Attempt"),
            "config": Param({}, type=["object", "string"], title="Configuration overrides"),
            "rerun": Param(
                False,
                type=["boolean", "string"],
                title="Re-run CI first",
                description="re-run the failed jobs again before watching",
            ),
        },
        default_args=_default_args(),
        max_active_runs=64,
        render_template_as_native_obj=True,
    ) as dag:
        target = _task("load_target", tasks.load_target)
        watch = CIStatusSensor(task_id="watch_ci", session_task_id="load_target", retries=3)
        # decide also runs when the watch failed: it then asks the provider itself, so a
        # session never stays waiting because of a lost wait
        decision = _task("decide", tasks.decide, trigger_rule=TriggerRule.ALL_DONE)
        delay = EscalationDelayOperator(task_id="escalation_delay", decision_task_id="decide")
        trigger_next = TriggerDagRunOperator(
            task_id="trigger_next_attempt",
            trigger_dag_id="{{ ti.xcom_pull(task_ids='decide')['next_dag_id'] }}",
            trigger_run_id="{{ ti.xcom_pull(task_ids='decide')['run_id'] }}",
            conf={
                "session_id": "{{ ti.xcom_pull(task_ids='decide')['session_id'] }}",
                "attempt": "{{ ti.xcom_pull(task_ids='decide')['next_attempt'] }}",
                "config": "{{ params.config }}",
                "rerun": "{{ ti.xcom_pull(task_ids='decide').get('rerun', False) }}",
            },
            skip_when_already_exists=True,
        )
        target >> watch >> decision >> delay >> trigger_next
    return dag


def build_sweep_dag(doc_md: str | None = None, schedule: str = "*/10 * * * *") -> DAG:
    """Open a session for each failed run of the watched branches that has none."""
    first = load_strategies()[Strategy.STANDARD_PARALLEL_FIXING].dag_id
    with DAG(
        dag_id=SWEEP_DAG_ID,
        description="Scheduled sweep of the watched repositories for failed runs",
        doc_md=doc_md,
        schedule=schedule,
        start_date=START,
        catchup=False,
        tags=[*TAGS, "sweep"],
        default_args=_default_args(),
        max_active_runs=1,
    ) as dag:
        found = _task("find_failed_runs", tasks.sweep)
        TriggerDagRunOperator.partial(
            task_id="open_sessions",
            trigger_dag_id=first,
            skip_when_already_exists=True,
        ).expand_kwargs(found.output)
    return dag
