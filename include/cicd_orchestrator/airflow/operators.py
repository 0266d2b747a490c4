"""Operators of the session DAGs: the monitor's deferrable waits (for CI, for the escalation
delay), and the triggers of the monitor and of the next DAG run."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException, DagRunTriggerException

from cicd_orchestrator.airflow.handoff import NextStep, Ticket, WatchTarget, from_xcom, xcom_of
from cicd_orchestrator.airflow.names import monitor_run_id
from cicd_orchestrator.strategies import MONITOR_DAG_ID


class CIStatusSensor(BaseOperator):
    """Defers to ``CIStatusTrigger`` for what the attempt published; returns the CI state."""

    template_fields = ("target",)

    def __init__(self, *, target: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def execute(self, context: Any) -> Any:
        watch = from_xcom(WatchTarget, self.target)
        if watch is None:
            raise AirflowSkipException("no session to watch")
        if watch.immediate is not None:
            return xcom_of(watch.immediate)
        from cicd_orchestrator.airflow.triggers import CIStatusTrigger

        trigger = CIStatusTrigger(self.target)
        now = trigger.poll_once()
        if now.done:  # finished already: no need to defer
            return xcom_of(now)
        self.defer(trigger=trigger, method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        return event


class EscalationDelayOperator(BaseOperator):
    """Waits, deferred (no worker slot), until the decided retry time; skips when closing."""

    template_fields = ("next_step",)

    def __init__(self, *, next_step: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.next_step = next_step

    def execute(self, context: Any) -> Any:
        step = from_xcom(NextStep, self.next_step)
        if step is None or not step.continues or not step.retry_at:
            raise AirflowSkipException("the session is closed: no next attempt")
        moment = datetime.datetime.fromisoformat(step.retry_at)
        if moment <= datetime.datetime.now(datetime.UTC):
            return None
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return None


def trigger_dag_run(dag_id: str, run_id: str, conf: dict[str, Any] | None) -> NoReturn:
    """End the task by triggering DAG run ``run_id`` of ``dag_id`` through the Task SDK (the
    API server creates it); when a run of that id exists already, the task is skipped."""
    raise DagRunTriggerException(
        trigger_dag_id=dag_id,
        dag_run_id=run_id,
        conf=conf,
        logical_date=datetime.datetime.now(datetime.UTC),
        reset_dag_run=False,
        skip_when_already_exists=True,
        wait_for_completion=False,
        allowed_states=[],
        failed_states=[],
        poke_interval=60,
        deferrable=False,
    )


class RunTrigger(BaseOperator):
    """Triggers the DAG run ``trigger_run_id`` of ``trigger_dag_id`` through the Task SDK (the
    API server creates it); when a run of that id exists already, the task is skipped (one
    DAG run per run id: a retry or a second request does not trigger twice).

    What Airflow's ``TriggerDagRunOperator`` does for a run id that is given, without its
    module's imports of the metadata database's models, which every task of the DAG would
    pay for when it parses the DAG file."""

    template_fields: Sequence[str] = ("trigger_dag_id", "trigger_run_id", "conf")

    def __init__(
        self,
        *,
        trigger_dag_id: str = "",
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf

    def execute(self, context: Any) -> Any:
        if not self.trigger_dag_id or not self.trigger_run_id:
            raise ValueError("RunTrigger needs trigger_dag_id and trigger_run_id")
        trigger_dag_run(self.trigger_dag_id, self.trigger_run_id, self.conf)


class NextRunOperator(RunTrigger):
    """Triggers what ``decide`` scheduled: the next attempt's DAG, or the monitor again for
    another CI re-run."""

    template_fields = (*RunTrigger.template_fields, "next_step")

    def __init__(self, *, next_step: Any, **kwargs: Any) -> None:
        super().__init__(trigger_dag_id=MONITOR_DAG_ID, **kwargs)
        self.next_step = next_step

    def execute(self, context: Any) -> Any:
        step = from_xcom(NextStep, self.next_step)
        if step is None or not step.continues or not step.next_dag_id:
            raise AirflowSkipException("nothing follows: the session is closed")
        self.trigger_dag_id = step.next_dag_id
        self.trigger_run_id = step.run_id
        self.conf = {
            "session_id": step.session_id,
            "attempt": step.next_attempt,
            "config": context["params"].get("config") or {},
            "rerun": step.rerun,
        }
        return super().execute(context)


class HandoffOperator(RunTrigger):
    """Triggers the monitor for the attempt's session, also when publishing failed (the
    monitor then finds that nothing was published and decides); skips when no session was
    opened (a malformed request or a duplicate)."""

    template_fields = (*RunTrigger.template_fields, "ticket")

    def __init__(self, *, ticket: Any, **kwargs: Any) -> None:
        super().__init__(trigger_dag_id=MONITOR_DAG_ID, **kwargs)
        self.ticket = ticket

    def execute(self, context: Any) -> Any:
        ticket = from_xcom(Ticket, self.ticket)
        if ticket is None:
            raise AirflowSkipException("no session was opened: nothing to hand to the monitor")
        self.trigger_run_id = monitor_run_id(ticket.session_id, ticket.attempt)
        self.conf = {
            "session_id": ticket.session_id,
            "attempt": ticket.attempt,
            "config": ticket.config,
        }
        return super().execute(context)
