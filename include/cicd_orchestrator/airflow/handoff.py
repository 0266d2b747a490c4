"""What the tasks, operators and triggers of the session DAGs hand to each other.

XCom holds JSON: each hand-off is a dataclass written with :func:`xcom_of` and read back,
typed, with :func:`from_xcom`. What goes into XCom is redacted (a token in a log excerpt or
an error message never reaches the metadata database through a task's result).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cicd_orchestrator.constants import DecisionAction, Outcome
from cicd_orchestrator.models import CIState, Published
from cicd_orchestrator.redact import redact_data
from cicd_orchestrator.serde import from_json_obj, to_json_obj
from cicd_orchestrator.session.supersede import SupersessionCheck

T = TypeVar("T")


def to_xcom(value: Any) -> Any:
    """A domain result as XCom's JSON, redacted."""
    return redact_data(to_json_obj(value))


def xcom_of(handoff: Any) -> dict[str, Any]:
    """A hand-off (a dataclass) as XCom's JSON object, redacted."""
    data = to_xcom(handoff)
    if not isinstance(data, dict):
        raise TypeError(f"a hand-off is a dataclass, not {type(handoff).__name__}")
    return data


def from_xcom(cls: type[T], raw: Any) -> T | None:
    """The hand-off ``cls`` from XCom's JSON (None when the task left nothing)."""
    return from_json_obj(cls, raw) if isinstance(raw, dict) else None


@dataclass
class Ticket:
    """What ``open_session`` hands every task of an attempt: the session, the attempt, and
    the run's configuration overrides."""

    session_id: str
    attempt: int
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageOutput:
    """What a parallel task of a TaskGroup hands its gate: its result (JSON) and when it
    ran, for the stage timings."""

    started: float
    seconds: float
    data: Any

    @classmethod
    def of(cls, started: float, data: Any) -> dict[str, Any]:
        """The XCom of a task that started at ``started`` and produced ``data``."""
        return xcom_of(cls(started, round(time.time() - started, 3), to_json_obj(data)))


def stage_data(raw: Any, cls: type[T]) -> T | None:
    """The result of a parallel task, typed (None when it left nothing)."""
    output = from_xcom(StageOutput, raw)
    return None if output is None or output.data is None else from_json_obj(cls, output.data)


def stage_seconds(*raws: Any) -> float:
    """Seconds from the first start among the stage's tasks until now."""
    starts = [o.started for o in (from_xcom(StageOutput, r) for r in raws) if o]
    return round(time.time() - min(starts), 3) if starts else 0.0


@dataclass
class WatchTarget:
    """What the monitor watches for one attempt (``load_target`` to the sensor, its trigger
    and ``decide``); ``immediate``: the CI state when there is nothing to wait for."""

    session_id: str
    attempt: int
    provider: str
    config: dict[str, Any]
    repository: str
    head_sha: str
    published: Published
    poll_interval: float
    timeout: float
    immediate: CIState | None = None
    #: checked at each poll: the watch ends early once the session's failure is superseded
    supersession: SupersessionCheck | None = None


@dataclass
class NextStep:
    """What ``decide`` hands the escalation delay and the trigger of the next DAG run."""

    action: DecisionAction
    outcome: Outcome
    reasons: list[str]
    session_id: str
    next_attempt: int | None = None
    next_dag_id: str | None = None
    run_id: str | None = None
    retry_at: str | None = None
    rerun: bool = False

    @property
    def continues(self) -> bool:
        """True when another DAG run follows (an attempt, or a re-watch of this one)."""
        return self.action in (DecisionAction.ESCALATE, DecisionAction.REWATCH)
