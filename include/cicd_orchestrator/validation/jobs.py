"""Running a workflow's jobs locally, for validation, regression runs and bisection."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator.ci.local.runner import JobExecution, JobRunner
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.models import JobResult

log = logging.getLogger(__name__)
_TS = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ")


@dataclass(frozen=True)
class JobTarget:
    """Jobs of one workflow file to run."""

    workflow_path: str
    jobs: frozenset[str]


def make_runner(config: OrchestratorConfig) -> JobRunner:
    return JobRunner(
        secrets=dict(config.local_ci_secrets),
        default_timeout_minutes=config.job_timeout_minutes,
        output_cap_bytes=config.output_cap_bytes,
        max_parallel_jobs=2,
    )


def _tail(execution: JobExecution, lines: int = 40) -> str:
    text = execution.read_log().splitlines()[-lines:]
    return "\n".join(_TS.sub("", t) for t in text)


def run_jobs(
    runner: JobRunner,
    git_dir: str | os.PathLike[str],
    sha: str,
    targets: Iterable[JobTarget],
    *,
    repository: str,
    ref: str = "refs/heads/cicd-validation",
    run_attempt: int = 1,
) -> list[JobResult]:
    """Run the named jobs (needs outside the set count as passed) and report each one."""
    results: list[JobResult] = []
    with tempfile.TemporaryDirectory(prefix="cicd-jobs-") as logs:
        for target in targets:
            try:
                executions = runner.run_workflow(
                    git_dir,
                    sha,
                    target.workflow_path,
                    ref=ref,
                    repository=repository,
                    run_id=0,
                    run_number=0,
                    run_attempt=run_attempt,
                    jobs=set(target.jobs),
                    log_dir=Path(logs),
                )
            except WorkflowError as exc:
                results.append(
                    JobResult(
                        job=target.workflow_path, conclusion=Conclusion.FAILURE, log_tail=str(exc)
                    )
                )
                continue
            for ex in executions:
                if not ex.executed:
                    continue
                results.append(
                    JobResult(
                        job=ex.name,
                        conclusion=ex.conclusion or Conclusion.FAILURE,
                        log_tail=_tail(ex),
                        seconds=round(ex.seconds, 2),
                    )
                )
    return results


def all_passed(results: list[JobResult]) -> bool:
    return bool(results) and all(
        r.conclusion in (Conclusion.SUCCESS, Conclusion.SKIPPED, Conclusion.NEUTRAL)
        for r in results
    )
