"""What the job runner reports: one record per job, and what a run's jobs add up to.

A :class:`JobExecution` is the record of one executed, skipped or carried-over job; the
local provider stores it as it is. :func:`needs_result` is ``needs.<job>.result`` of a job's
instances and :func:`run_conclusion` the conclusion of a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cicd_orchestrator.constants import (
    BROKEN_CONCLUSIONS,
    FAILED_CONCLUSIONS,
    Conclusion,
    RunStatus,
)
from cicd_orchestrator.models import Step


def utc_now() -> str:
    """``2024-05-01T10:00:00Z`` (GitHub's API timestamps)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class JobExecution:
    """One executed (or skipped, or carried over) job of a workflow run."""

    name: str
    key: str
    job_id: int
    status: RunStatus = RunStatus.QUEUED
    conclusion: Conclusion | None = None
    steps: list[Step] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    matrix: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    started_at: str | None = None
    completed_at: str | None = None
    log_path: str = ""
    continue_on_error: bool = False
    run_attempt: int = 1
    seconds: float = 0.0
    executed: bool = True
    #: why the job cannot be replayed on this machine (its steps did not run); None when it can
    not_replayable: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the job counts as passed (success, skipped, or allowed to fail)."""
        return self.conclusion not in FAILED_CONCLUSIONS or self.continue_on_error

    def read_log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        return Path(self.log_path).read_text(encoding="utf-8", errors="replace")

    def complete_at_once(self, conclusion: Conclusion) -> None:
        """Complete a job whose steps never ran (skipped, cancelled, an invalid condition):
        it starts and completes now."""
        self.status = RunStatus.COMPLETED
        self.conclusion = conclusion
        self.started_at = self.completed_at = utc_now()


#: called with a copy of a job's record whenever the job changes
OnUpdate = Callable[[JobExecution], None]
#: gives the id of the next job
IdAllocator = Callable[[], int]


def needs_result(executions: list[JobExecution]) -> str:
    """``needs.<job>.result`` over a job's instances."""
    if not executions:
        return "success"
    if any(e.conclusion in FAILED_CONCLUSIONS and not e.continue_on_error for e in executions):
        if any(e.conclusion in BROKEN_CONCLUSIONS for e in executions):
            return "failure"
        return "cancelled"
    if all(e.conclusion is Conclusion.SKIPPED for e in executions):
        return "skipped"
    return "success"


def run_conclusion(executions: Iterable[JobExecution]) -> Conclusion:
    """A run's conclusion from its jobs (jobs allowed to fail do not fail it)."""
    jobs = [e for e in executions if not e.continue_on_error]
    if any(e.conclusion in BROKEN_CONCLUSIONS for e in jobs):
        return Conclusion.FAILURE
    if any(e.conclusion is Conclusion.CANCELLED for e in jobs):
        return Conclusion.CANCELLED
    return Conclusion.SUCCESS
