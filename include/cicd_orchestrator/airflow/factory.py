"""The DAG factory: five attempt DAGs (one per strategy), the monitor DAG and the sweep DAG.

DAG files call these builders and nothing else; no task body, connection or Variable is
touched at import time.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param, TaskGroup, XComArg
from airflow.task.trigger_rule import TriggerRule

from cicd_orchestrator.airflow.bodies import monitor as monitor_body
from cicd_orchestrator.airflow.bodies import task as body
from cicd_orchestrator.airflow.links import SESSION_LINKS
from cicd_orchestrator.airflow.names import OPEN_TASK
from cicd_orchestrator.airflow.operators import (
    CIStatusSensor,
    EscalationDelayOperator,
    HandoffOperator,
    NextRunOperator,
    RunTrigger,
)
from cicd_orchestrator.constants import FixingShape
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
        "on_failure_callback": body("record_stage_errors"),
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
            description="for this session: pacing, attempts and limits (config.RUN_KEYS); "
            "security settings come only from the cicd_orchestrator_config Variable",
        ),
    }


class LinkedTaskOperator(PythonOperator):
    """A task of a session that links to its failing run, pull request and issue: the tasks
    that open the session, publish its repair and decide on CI's verdict. A task writes each
    of its links as an XCom when it ends, so the other tasks have none (three requests fewer
    to Airflow per task)."""

    operator_extra_links = SESSION_LINKS


def _task(task_id: str, fn: Any, *, links: bool = False, **kwargs: Any) -> PythonOperator:
    kind = LinkedTaskOperator if links else PythonOperator
    return kind(task_id=task_id, python_callable=fn, **kwargs)


class _Attempt:
    """Builds the tasks of one attempt DAG: every task gets the ticket of ``open_session``,
    every gate the outputs of its group's parallel tasks (XComArgs: the dependencies follow
    from them)."""

    def __init__(self, spec: StrategySpec, ticket: XComArg) -> None:
        self.spec = spec
        self.ticket = ticket
        self.timeout = datetime.timedelta(seconds=spec.timeout_seconds)
        self.fixing_tasks: list[PythonOperator] = []

    def task(self, task_id: str, fn: Any, **kwargs: Any) -> XComArg:
        op_kwargs = {"ticket": self.ticket, **kwargs.pop("op_kwargs", {})}
        return _task(task_id, fn, op_kwargs=op_kwargs, **kwargs).output

    def gate(self, task_id: str, fn: Any, **outputs: Any) -> PythonOperator:
        return _task(task_id, fn, op_kwargs={"ticket": self.ticket, **outputs})

    def fixing_task(self, task_id: str, fn: Any, **kwargs: Any) -> XComArg:
        """A task of the fixing TaskGroup, bounded by the strategy's timeout."""
        op_kwargs = {"ticket": self.ticket, **kwargs.pop("op_kwargs", {})}
        operator = _task(task_id, fn, op_kwargs=op_kwargs, execution_timeout=self.timeout, **kwargs)
        self.fixing_tasks.append(operator)
        return operator.output

    def bound_parallelism(self) -> None:
        """At most ``parallelism`` fixing tasks at once: the tasks run in that many lanes,
        each task after the one ``parallelism`` places before it (within the DAG run, so
        that sessions do not wait for each other as they would on a shared pool)."""
        width = self.spec.parallelism
        if width is None:
            return
        for earlier, later in zip(self.fixing_tasks, self.fixing_tasks[width:], strict=False):
            earlier >> later

    def discovery(self) -> None:
        extras = {
            "bisect_culprit": ("bisect", body("bisect_culprit")),
            "compare_environment": ("environment", body("compare_environment")),
        }
        outputs = {
            "detect": self.task("detect_failures", body("detect_failures")),
            "context": self.task("analyse_context", body("analyse_context")),
        }
        for name in self.spec.discovery_extras:
            key, fn = extras[name]
            outputs[key] = self.task(name, fn)
        self.gate("gate", body("discovery_gate"), **outputs)

    def classification(self) -> None:
        self.gate(
            "gate",
            body("classification_gate"),
            classified=self.task("classify_patterns", body("classify_patterns")),
            mapping=self.task("map_dependencies", body("map_dependencies")),
        )

    def fixing(self) -> None:
        shape = self.spec.fixing
        if shape in (FixingShape.PARALLEL, FixingShape.SEQUENTIAL):
            fixes = [
                self.fixing_task(f"fix_{group}", body("fix_group"), op_kwargs={"group": group})
                for group in self.spec.fixers
            ]
            if shape is FixingShape.PARALLEL:
                self.gate("merge", body("merge_fixes"), fixes=fixes)
            else:
                self.gate("apply_sequentially", body("sequential_fixes"), fixes=fixes)
        elif shape is FixingShape.ISSUE:
            self.gate(
                "gate",
                body("issue_gate"),
                issue=self.fixing_task("prepare_issue", body("prepare_issue")),
                package=self.fixing_task("package_context", body("package_context")),
            )
        else:
            self.gate(
                "gate",
                body("rollback_gate"),
                rollback=self.fixing_task("prepare_rollback", body("prepare_rollback")),
                plan=self.fixing_task("preserve_state", body("preserve_state")),
            )
        self.bound_parallelism()

    def validation(self) -> None:
        self.gate(
            "gate",
            body("validation_gate"),
            validation=self.task("validate_fixes", body("validate_fixes")),
            regression=self.task("regression_run", body("regression_run")),
        )


#: active DAG runs of each attempt DAG and of the monitor (one run per session at a time)
MAX_ACTIVE_SESSION_RUNS = 64


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
        # an active run holds nothing but its place in the scheduler's loop (the executor's
        # slots and the provider pool bound the work), so a burst's sessions all open at once:
        # open_session, upstream of every task, comes first in Airflow's priority weights
        max_active_runs=MAX_ACTIVE_SESSION_RUNS,
        render_template_as_native_obj=True,
    ) as dag:
        opened = _task(
            OPEN_TASK,
            body("open_session", spec.dag_id, spec.strategy.value),
            links=True,
            # a retry after a lost answer of the API server finds the session its first try
            # made; malformed requests fail without retry (AirflowFailException)
            retries=2,
        )
        build = _Attempt(spec, opened.output)
        with TaskGroup("discovery", tooltip="detect failures | analyse context") as discovery:
            build.discovery()
        with TaskGroup("classification", tooltip="classify patterns | map dependencies") as cls:
            build.classification()
        with TaskGroup("fixing", tooltip=f"{spec.fixing.value} fixing") as fixing:
            build.fixing()
        with TaskGroup("validation", tooltip="validate fixes | regression run") as validation:
            build.validation()
        published = _task(
            "publish",
            body("publish"),
            op_kwargs={"ticket": opened.output},
            links=True,
            trigger_rule=TriggerRule.NONE_SKIPPED,
        )
        # the monitor takes over whatever happened to publish (a failed publish leaves nothing
        # to watch: the monitor escalates or closes), so that a session always ends
        handoff = HandoffOperator(
            task_id="handoff_to_monitor",
            ticket=opened.output,
            trigger_rule=TriggerRule.NONE_SKIPPED,
        )
        opened >> discovery >> cls >> fixing >> validation >> published >> handoff
        # the hand-off succeeds after a failed task too: this watcher (Airflow's pattern for
        # runs with ALL_DONE-like trigger rules) fails the run when any of its tasks failed
        watcher = _task(
            "watcher",
            body("attempt_watcher"),
            trigger_rule=TriggerRule.ONE_FAILED,
            retries=0,
            on_failure_callback=None,
        )
        [t for t in dag.tasks if t is not watcher] >> watcher
    return dag


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
        max_active_runs=MAX_ACTIVE_SESSION_RUNS,
        render_template_as_native_obj=True,
    ) as dag:
        target = _task("load_target", monitor_body("load_target")).output
        watch = CIStatusSensor(task_id="watch_ci", target=target, retries=3)
        # decide also runs when the watch failed: it then asks the provider itself, so a
        # session never stays waiting because of a lost wait
        decision = _task(
            "decide",
            monitor_body("decide"),
            op_kwargs={"target": target, "event": watch.output},
            links=True,
            trigger_rule=TriggerRule.ALL_DONE,
        ).output
        delay = EscalationDelayOperator(task_id="escalation_delay", next_step=decision)
        delay >> NextRunOperator(task_id="trigger_next_attempt", next_step=decision)
    return dag


def build_sweep_dag(doc_md: str | None = None, schedule: str = "*/10 * * * *") -> DAG:
    """Open a session for each failed run of the watched branches that has none (each item
    names the DAG of its first attempt: ``retry_strategy.attempt_1``)."""
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
        found = _task("find_failed_runs", monitor_body("sweep"))
        RunTrigger.partial(task_id="open_sessions").expand_kwargs(found.output)
    return dag
