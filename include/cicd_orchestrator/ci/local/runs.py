"""The run records of the local provider, and what is read from them.

A run is one JSON file (``data/<owner>/<name>/runs/<id>.json``) with every attempt of the
run and the runner's record of each of the attempt's jobs; a job's raw log is
``logs/<job id>.log``. Records are read as the provider's :class:`~cicd_orchestrator.models.Run`
and :class:`~cicd_orchestrator.models.Job`; an attempt whose process died without
completing it is completed as failed when it is read.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cicd_orchestrator.actions.results import JobExecution, utc_now
from cicd_orchestrator.ci.local import store
from cicd_orchestrator.ci.local.processes import pid_alive
from cicd_orchestrator.ci.local.repositories import LocalRepositories
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.exceptions import UnknownRunError
from cicd_orchestrator.models import Job, Run
from cicd_orchestrator.serde import from_json_obj

AttemptFn = Callable[[dict[str, Any]], None]


def new_attempt(number: int, status: RunStatus, now: str) -> dict[str, Any]:
    """The record of a new attempt of a run (its jobs are recorded as they run)."""
    return {
        "run_attempt": number,
        "status": status.value,
        "conclusion": None,
        "created_at": now,
        "updated_at": now,
        "pid": None,
        "jobs": [],
        "rerun": None,
        "error": None,
    }


def _completed(att: dict[str, Any], conclusion: Conclusion) -> None:
    att.update(status=RunStatus.COMPLETED.value, conclusion=conclusion.value)


class LocalRunRecords(LocalRepositories):
    """The runs of the local repositories as records on disk."""

    def _run_file(self, repo: str, run_id: int) -> Path:
        return self._data(repo) / "runs" / f"{int(run_id)}.json"

    def _log_file(self, repo: str, job_id: int) -> Path:
        return self._data(repo) / "logs" / f"{int(job_id)}.log"

    # ------------------------------------------------------------------ updating attempts
    def _update_attempt(self, repo: str, run_id: int, attempt: int, fn: AttemptFn) -> None:
        store.update_json(
            self._run_file(repo, run_id), lambda rec: fn(rec["attempts"][attempt - 1])
        )

    def _complete_attempt(
        self,
        repo: str,
        run_id: int,
        attempt: int,
        conclusion: Conclusion,
        fn: AttemptFn | None = None,
    ) -> None:
        """Complete an attempt with ``conclusion`` (``fn`` records the rest of it)."""

        def complete(att: dict[str, Any]) -> None:
            if fn is not None:
                fn(att)
            _completed(att, conclusion)
            att["updated_at"] = utc_now()

        self._update_attempt(repo, run_id, attempt, complete)

    def fail_attempt(self, repo: str, run_id: int, attempt: int, error: str) -> None:
        """Complete an attempt as failed, with the jobs it had not completed."""

        def fail(att: dict[str, Any]) -> None:
            att["error"] = error
            for j in att.get("jobs", []):
                if j.get("status") != RunStatus.COMPLETED.value:
                    _completed(j, Conclusion.FAILURE)

        self._complete_attempt(repo, run_id, attempt, Conclusion.FAILURE, fail)

    # ------------------------------------------------------------------ reading runs
    def _load_run(self, repo: str, run_id: int) -> dict[str, Any]:
        rec = store.read_json(self._run_file(repo, run_id))
        if not isinstance(rec, dict):
            raise UnknownRunError(f"unknown run {run_id} of {repo}")
        return rec

    def _check_alive(self, repo: str, rec: dict[str, Any]) -> dict[str, Any]:
        """A run whose process died without completing it is completed as failed."""
        att = rec["attempts"][-1]
        if att.get("status") != RunStatus.COMPLETED.value and not pid_alive(att.get("pid")):
            self.fail_attempt(repo, rec["id"], att["run_attempt"], "the run's process died")
            rec = self._load_run(repo, rec["id"])
        return rec

    def _to_run(self, repo: str, rec: dict[str, Any], attempt: int | None, jobs: bool) -> Run:
        attempts = rec["attempts"]
        if attempt is None:
            att = attempts[-1]
        elif 1 <= attempt <= len(attempts):
            att = attempts[attempt - 1]
        else:
            raise UnknownRunError(f"run {rec['id']} of {repo} has no attempt {attempt}")
        run = Run(
            id=int(rec["id"]),
            repository=repo,
            workflow=rec["workflow"],
            workflow_path=rec["workflow_path"],
            head_branch=rec["head_branch"],
            head_sha=rec["head_sha"],
            event=rec["event"],
            status=RunStatus(att["status"]),
            conclusion=Conclusion(att["conclusion"]) if att.get("conclusion") else None,
            run_number=int(rec["run_number"]),
            run_attempt=int(att["run_attempt"]),
            created_at=rec.get("created_at"),
            updated_at=att.get("updated_at"),
            html_url=rec.get("html_url", ""),
            pull_request_number=rec.get("pull_request_number"),
        )
        if jobs:
            run.jobs = [self._to_job(repo, run, j) for j in att.get("jobs", [])]
        return run

    def _to_job(self, repo: str, run: Run, data: dict[str, Any]) -> Job:
        execution = from_json_obj(JobExecution, data)
        return Job(
            id=execution.job_id,
            run_id=run.id,
            name=execution.name,
            status=execution.status,
            conclusion=execution.conclusion,
            run_attempt=execution.run_attempt,
            steps=execution.steps,
            needs=execution.needs,
            started_at=execution.started_at,
            completed_at=execution.completed_at,
            html_url=self._url(repo, "actions", "runs", run.id, "job", execution.job_id),
        )

    def _run_records(self, repo: str) -> list[dict[str, Any]]:
        runs_dir = self._data(repo) / "runs"
        records = []
        for path in runs_dir.glob("*.json"):
            rec = store.read_json(path)
            if isinstance(rec, dict):
                records.append(rec)
        return sorted(records, key=lambda r: int(r["id"]), reverse=True)

    def list_runs(
        self, repo: str, branch: str | None = None, head_sha: str | None = None
    ) -> list[Run]:
        self.count_call(repo)
        return self._list_runs(repo, branch, head_sha)

    def _list_runs(self, repo: str, branch: str | None, head_sha: str | None) -> list[Run]:
        out = []
        for rec in self._run_records(repo):
            if branch is not None and rec["head_branch"] != branch:
                continue
            if head_sha is not None and rec["head_sha"] != head_sha:
                continue
            out.append(self._to_run(repo, self._check_alive(repo, rec), None, jobs=False))
        return out

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        self.count_call(repo)
        return self._get_run(repo, run_id, attempt)

    def _get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        rec = self._check_alive(repo, self._load_run(repo, run_id))
        return self._to_run(repo, rec, attempt, jobs=True)

    def job_executions(
        self, repo: str, run_id: int, attempt: int | None = None
    ) -> list[JobExecution]:
        """The runner's records of an attempt's jobs (with keys, matrix values, outputs)."""
        self.count_call(repo)
        rec = self._load_run(repo, run_id)
        att = rec["attempts"][(attempt or len(rec["attempts"])) - 1]
        return [from_json_obj(JobExecution, j) for j in att.get("jobs", [])]

    # ------------------------------------------------------------------ job logs
    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        self.count_call(repo)
        path = self._log_file(repo, job_id)
        if path.exists():
            with open(path, "rb") as fh:
                yield fh
            return
        if not self._job_known(repo, int(job_id)):
            raise UnknownRunError(f"unknown job {job_id} of {repo}")
        yield io.BytesIO(b"")  # a job that never started (skipped) has an empty log

    def _job_known(self, repo: str, job_id: int) -> bool:
        return self._job_attempt(repo, job_id) is not None

    def job_attempt(self, repo: str, job_id: int) -> tuple[int, int]:
        """(run id, attempt) of a job; raises UnknownRunError for an unknown job."""
        self.count_call(repo)
        found = self._job_attempt(repo, int(job_id))
        if found is None:
            raise UnknownRunError(f"unknown job {job_id} of {repo}")
        return found

    def _job_attempt(self, repo: str, job_id: int) -> tuple[int, int] | None:
        for rec in self._run_records(repo):
            for att in rec["attempts"]:
                if any(int(j.get("job_id", -1)) == job_id for j in att.get("jobs", [])):
                    return int(rec["id"]), int(att["run_attempt"])
        return None

    def job_log_text(self, repo: str, job_id: int) -> str:
        """A job's whole log as text (for tests and reports; use open_job_log for big logs)."""
        with self.open_job_log(repo, job_id) as fh:  # counts the call
            return fh.read().decode("utf-8", "replace")
