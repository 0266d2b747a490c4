"""Operators of the session DAGs: the monitor's deferrable waits (for CI, for the escalation
delay), and the triggers of the monitor and of the next DAG run."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from cicd_orchestrator.airflow.handoff import NextStep, Ticket, WatchTarget, from_xcom, xcom_of
from cicd_orchestrator.airflow.names import monitor_run_id
from cicd_orchestrator.airflow.triggers import CIStatusTrigger
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
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return None


class NextRunOperator(TriggerDagRunOperator):
    """Triggers what ``decide`` scheduled: the next attempt's DAG, or the monitor again for
    another CI re-run (one DAG run per run id: a retry does not trigger twice)."""

    template_fields = (*TriggerDagRunOperator.template_fields, "next_step")

    def __init__(self, *, next_step: Any, **kwargs: Any) -> None:
        super().__init__(trigger_dag_id=MONITOR_DAG_ID, skip_when_already_exists=True, **kwargs)
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


class HandoffOperator(TriggerDagRunOperator):
    """Triggers the monitor for the attempt's session, also when publishing failed (the
    monitor then finds that nothing was published and decides); skips when no session was
    opened (a malformed request or a duplicate)."""

    template_fields = (*TriggerDagRunOperator.template_fields, "ticket")

    def __init__(self, *, ticket: Any, **kwargs: Any) -> None:
        super().__init__(trigger_dag_id=MONITOR_DAG_ID, skip_when_already_exists=True, **kwargs)
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
