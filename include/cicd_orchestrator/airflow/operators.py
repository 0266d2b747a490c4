"""Operators of the session DAGs: the hand-off of an attempt to the monitor, and the monitor's
deferrable waits (for CI, for the escalation delay)."""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from cicd_orchestrator.airflow.triggers import CIStatusTrigger


class CIStatusSensor(BaseOperator):
    """Defers to ``CIStatusTrigger`` for what the attempt published; returns the CI state."""

    def __init__(self, *, session_task_id: str = "load_target", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session_task_id = session_task_id

    def execute(self, context: Any) -> Any:
        target = context["ti"].xcom_pull(task_ids=self.session_task_id)
        if not target:
            raise AirflowSkipException("no session to watch")
        if target.get("immediate"):
            return target["immediate"]
        trigger_kwargs = {
            k: target[k]
            for k in (
                "provider",
                "config",
                "repository",
                "head_sha",
                "published",
                "poll_interval",
                "timeout",
            )
        }
        now = CIStatusTrigger(**trigger_kwargs).poll_once()
        if now.get("done"):  # finished already: no need to defer
            return now
        self.defer(
            trigger=CIStatusTrigger(
                provider=target["provider"],
                config=target["config"],
                repository=target["repository"],
                head_sha=target["head_sha"],
                published=target["published"],
                poll_interval=target["poll_interval"],
                timeout=target["timeout"],
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        return event


class EscalationDelayOperator(BaseOperator):
    """Waits, deferred (no worker slot), until the decided retry time; skips when closing."""

    def __init__(self, *, decision_task_id: str = "decide", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_task_id = decision_task_id

    def execute(self, context: Any) -> Any:
        decision = context["ti"].xcom_pull(task_ids=self.decision_task_id) or {}
        if decision.get("action") not in ("escalate", "rewatch"):
            raise AirflowSkipException("the session is closed: no next attempt")
        moment = datetime.datetime.fromisoformat(decision["retry_at"])
        if moment <= datetime.datetime.now(datetime.UTC):
            return decision
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        return context["ti"].xcom_pull(task_ids=self.decision_task_id)


class HandoffOperator(TriggerDagRunOperator):
    """Triggers the monitor for the attempt's session, also when publishing failed (the
    monitor then finds that nothing was published and decides); skips when no session was
    opened (a malformed request or a duplicate)."""

    def __init__(self, *, open_task_id: str = "open_session", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.open_task_id = open_task_id

    def execute(self, context: Any) -> Any:
        if not context["ti"].xcom_pull(task_ids=self.open_task_id):
            raise AirflowSkipException("no session was opened: nothing to hand to the monitor")
        return super().execute(context)
