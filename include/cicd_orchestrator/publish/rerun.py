"""A repair published as a CI re-run of the failed jobs (no code change); idempotent."""

from __future__ import annotations

import dataclasses

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.constants import RepairKind, RunStatus
from cicd_orchestrator.models import Published, SessionState


def publish_rerun(provider: CIProvider, state: SessionState) -> Published:
    """Re-run the failed jobs; a retried task does not re-run twice (a re-run in progress
    is watched instead)."""
    run = provider.get_run(state.repository, state.pipeline_id)
    if run.status is not RunStatus.COMPLETED:
        return Published(
            kind=RepairKind.RERUN,
            rerun_run_id=run.id,
            rerun_attempt=run.run_attempt,
            notes=["a re-run is already in progress"],
        )
    new_attempt = provider.rerun_failed_jobs(state.repository, state.pipeline_id)
    return Published(
        kind=RepairKind.RERUN, rerun_run_id=run.id, rerun_attempt=new_attempt, reruns=1
    )


def rerun_again(provider: CIProvider, state: SessionState, published: Published) -> Published:
    """Another CI re-run of the failed jobs in the same attempt (a flaky test); idempotent:
    nothing happens while the last re-run is still the newest attempt of the run and running,
    or once a newer attempt than the one watched exists."""
    run = provider.get_run(state.repository, state.pipeline_id)
    if run.run_attempt != published.rerun_attempt or run.status is not RunStatus.COMPLETED:
        return dataclasses.replace(published, rerun_attempt=run.run_attempt)
    new_attempt = provider.rerun_failed_jobs(state.repository, state.pipeline_id)
    return dataclasses.replace(
        published,
        rerun_attempt=new_attempt,
        reruns=published.reruns + 1,
        notes=[*published.notes, f"re-run again: attempt {new_attempt} of run {run.id}"],
    )
