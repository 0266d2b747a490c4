"""Starting, executing and re-running the runs of the local provider.

A push records a queued run per workflow it triggers (GitHub's filters, with the files the
push changed: against the branch's previous head, or against its merge base with the
default branch for a new branch) and starts a detached process for it
(:mod:`~cicd_orchestrator.ci.local.processes`); that process executes the attempt with the
job runner of :mod:`cicd_orchestrator.actions` (each job with a ``GITHUB_TOKEN`` of its
own), recording each job as it changes. A workflow file that does not parse gives a
completed, failed run whose one job's log names the file, the line and the parser's
message. A re-run is a new attempt of the same run: of every job, or of the failed
jobs and of every job that needs them. Pull request runs start from
:mod:`~cicd_orchestrator.ci.local.events`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator import git
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.results import JobExecution, run_conclusion, utc_now
from cicd_orchestrator.actions.run_info import EventName
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.actions.triggers import TriggerEvent
from cicd_orchestrator.actions.workflow import (
    InvalidWorkflowError,
    list_workflow_files,
    parse_workflow,
)
from cicd_orchestrator.ci.local import store
from cicd_orchestrator.ci.local.processes import SpawnError, spawn_run
from cicd_orchestrator.ci.local.runs import LocalRunRecords, new_attempt
from cicd_orchestrator.constants import FAILED_CONCLUSIONS, Conclusion, RunStatus
from cicd_orchestrator.exceptions import ProviderError, WorkflowError, WorkspaceError
from cicd_orchestrator.models import Step
from cicd_orchestrator.serde import from_json_obj, to_json_obj

log = logging.getLogger(__name__)

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class RunStart:
    """What a triggered run runs: its commit, branch and ref, and the event with its
    payload (``github.event``)."""

    sha: str
    head_branch: str
    ref: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)
    pull_request_number: int | None = None


class LocalRunExecution(LocalRunRecords):
    """Runs started by pushes and re-runs, executed by detached processes."""

    # ------------------------------------------------------------------ starting runs
    def start_runs(
        self,
        repo: str,
        sha: str,
        branch: str,
        event: str = "push",
        *,
        before: str | None = None,
        tag: str | None = None,
    ) -> list[int]:
        """Start a run of every workflow of ``sha`` that a push of ``branch`` (or of
        ``tag``) triggers. ``before``: the previous head of the branch (all zeros for a new
        branch), whose difference with ``sha`` the path filters see; without it every path
        filter passes. A workflow file that does not parse gives a completed, failed run
        whose one job's log names the file, the line and the parser's message. Returns the
        run ids."""
        self.count_call(repo)
        changed = None if tag is not None else self.push_changed_paths(repo, branch, before, sha)
        ref = f"refs/tags/{tag}" if tag is not None else f"refs/heads/{branch}"
        payload = {"ref": ref, "before": before or ZERO_SHA, "after": sha}
        start = RunStart(sha, tag if tag is not None else branch, ref, event, payload)
        trigger = TriggerEvent(
            event, branch=None if tag is not None else branch, tag=tag, changed_paths=changed
        )
        return self._start_runs(repo, sha, start, trigger)

    def _start_runs(
        self,
        repo: str,
        workflows_sha: str,
        start: RunStart,
        trigger: TriggerEvent,
        report_invalid: bool = True,
    ) -> list[int]:
        """A run of every workflow of ``workflows_sha`` that ``trigger`` starts (and, when
        ``report_invalid``, a failed run for a workflow file that does not parse)."""
        git_dir = self.repo_path(repo)
        run_ids: list[int] = []
        try:
            files = list_workflow_files(git_dir, workflows_sha)
        except WorkspaceError as exc:
            log.warning("cannot list the workflows of %s at %s: %s", repo, workflows_sha, exc)
            return []
        for path in files:
            try:
                wf = parse_workflow(git.show_file(git_dir, workflows_sha, path), path)
            except (WorkflowError, WorkspaceError) as exc:
                if not report_invalid:
                    continue
                run_id = self._create_run(repo, start, path, path, RunStatus.IN_PROGRESS)
                self._fail_attempt_invalid(repo, run_id, 1, _as_invalid(path, exc))
                run_ids.append(run_id)
                continue
            if wf.starts_on(trigger):
                run_id = self._create_run(repo, start, path, wf.name)
                self._spawn(repo, run_id, 1)
                run_ids.append(run_id)
        return run_ids

    # ------------------------------------------------------------------ changed files
    def push_changed_paths(
        self, repo: str, branch: str, before: str | None, sha: str
    ) -> list[str] | None:
        """The files a push of ``branch`` from ``before`` to ``sha`` changed: against
        ``before``, or for a new branch (``before`` all zeros) against its merge base with
        the default branch. None when it cannot be told (no ``before``, a new default
        branch, unrelated histories)."""
        if before is None:
            return None
        base: str | None = before
        if before == ZERO_SHA:
            default = self._default_branch(repo)
            default_sha = self._branch_sha(repo, default)
            if default == branch or default_sha is None:
                return None
            base = self.merge_base(repo, default_sha, sha)
        return None if base is None else self.changed_paths(repo, base, sha)

    def merge_base(self, repo: str, first: str, second: str) -> str | None:
        """The best common ancestor of two commits, or None."""
        try:
            out = git.git(["merge-base", first, second], self.repo_path(repo))
        except WorkspaceError:
            return None
        return out.strip() or None

    def changed_paths(self, repo: str, base: str, sha: str) -> list[str] | None:
        """The files that differ between two commits (a rename: both names); None when git
        cannot compare them."""
        try:
            out = git.git(
                ["diff", "--name-only", "--no-renames", "-z", base, sha, "--"],
                self.repo_path(repo),
            )
        except WorkspaceError as exc:
            log.info("cannot compare %s and %s in %s: %s", base[:12], sha[:12], repo, exc)
            return None
        return sorted(p for p in out.split("\0") if p)

    def _create_run(
        self,
        repo: str,
        start: RunStart,
        path: str,
        workflow_name: str,
        status: RunStatus = RunStatus.QUEUED,
    ) -> int:
        run_id = self._counter("run")
        now = utc_now()
        record = {
            "id": run_id,
            "repository": repo,
            "workflow": workflow_name,
            "workflow_path": path,
            "head_branch": start.head_branch,
            "head_sha": start.sha,
            "ref": start.ref,
            "event": start.event,
            "event_payload": start.payload,
            "pull_request_number": start.pull_request_number,
            "run_number": self._counter(f"run_number:{repo}:{path}"),
            "created_at": now,
            "html_url": self._url(repo, "actions", "runs", run_id),
            "attempts": [new_attempt(1, status, now)],
        }
        store.write_json(self._run_file(repo, run_id), record)
        return run_id

    def _fail_attempt_invalid(
        self, repo: str, run_id: int, attempt: int, exc: InvalidWorkflowError
    ) -> None:
        """Complete an attempt as failed with one synthetic job whose log names the error."""
        job_id = self._counter("job")
        log_path = self._log_file(repo, job_id)
        job_log = JobLog(log_path)
        where = f"{exc.path}#L{exc.line}" if exc.line else exc.path
        job_log.write(f"##[error]Invalid workflow file: {where}: {exc.message}")
        job_log.close()
        now = utc_now()
        execution = JobExecution(
            name=exc.path,
            key=exc.path,
            job_id=job_id,
            status=RunStatus.COMPLETED,
            conclusion=Conclusion.FAILURE,
            steps=[Step(1, "Set up job", RunStatus.COMPLETED, Conclusion.FAILURE, now, now)],
            started_at=now,
            completed_at=now,
            log_path=str(log_path),
            run_attempt=attempt,
        )

        def done(att: dict[str, Any]) -> None:
            att["jobs"] = [to_json_obj(execution)]
            att.update(status=RunStatus.COMPLETED.value, conclusion=Conclusion.FAILURE.value)
            att["updated_at"] = now
            att["error"] = str(exc)

        self._update_attempt(repo, run_id, attempt, done)

    def _spawn(self, repo: str, run_id: int, attempt: int) -> None:
        """Start the detached process that executes an attempt of a run."""
        try:
            pid = spawn_run(self._python, self.root, repo, run_id, attempt)
        except SpawnError as exc:
            self.fail_attempt(repo, run_id, attempt, str(exc))
            return
        self._update_attempt(repo, run_id, attempt, lambda att: att.__setitem__("pid", pid))

    # ------------------------------------------------------------------ executing (detached)
    def execute_attempt(self, repo: str, run_id: int, attempt: int) -> Conclusion:
        """Execute an attempt of a run with the job runner (the detached process calls it)."""
        rec = self._load_run(repo, run_id)
        att = rec["attempts"][attempt - 1]
        runner = self._runner()
        selected = set(att["rerun"]) if att.get("rerun") is not None else None
        previous = {
            j["name"]: from_json_obj(JobExecution, j)
            for j in att.get("jobs", [])
            if selected is not None and j["name"] not in selected
        }
        preallocated = iter(list(att.get("preallocated") or []))

        def allocate() -> int:
            return next(preallocated, None) or self._counter("job")

        self._update_attempt(repo, run_id, attempt, _mark_in_progress)
        try:
            results = runner.run_workflow(
                self.repo_path(repo),
                rec["head_sha"],
                rec["workflow_path"],
                ref=rec.get("ref") or f"refs/heads/{rec['head_branch']}",
                repository=repo,
                run_id=run_id,
                run_number=int(rec["run_number"]),
                run_attempt=attempt,
                event=EventName(rec.get("event") or "push", rec.get("event_payload")),
                jobs=selected,
                previous=previous,
                log_dir=self._data(repo) / "logs",
                on_update=lambda e: self._job_update(repo, run_id, attempt, e),
                allocate_job_id=allocate,
            )
        except WorkflowError as exc:
            invalid = _as_invalid(rec["workflow_path"], exc)
            self._fail_attempt_invalid(repo, run_id, attempt, invalid)
            return Conclusion.FAILURE
        conclusion = run_conclusion(results)
        jobs = [to_json_obj(e) for e in results]
        self._complete_attempt(
            repo, run_id, attempt, conclusion, lambda a: a.__setitem__("jobs", jobs)
        )
        return conclusion

    def _runner(self) -> JobRunner:
        cfg = self.config
        return JobRunner(
            secrets=self.secrets,
            tool_path=cfg.get("tool_path"),
            default_timeout_minutes=float(cfg.get("default_timeout_minutes") or 30),
            output_cap_bytes=int(cfg.get("output_cap_bytes") or 20_000_000),
            max_parallel_jobs=int(cfg.get("max_parallel_jobs") or 2),
            network_allowlist=cfg.get("network_allowlist") or (),
        )

    def _job_update(self, repo: str, run_id: int, attempt: int, execution: JobExecution) -> None:
        data = to_json_obj(execution)

        def put(att: dict[str, Any]) -> None:
            jobs = att.setdefault("jobs", [])
            for i, j in enumerate(jobs):
                if j.get("name") == execution.name:
                    jobs[i] = data
                    break
            else:
                jobs.append(data)
            att["updated_at"] = utc_now()

        self._update_attempt(repo, run_id, attempt, put)

    # ------------------------------------------------------------------ re-runs
    def rerun_failed_jobs(self, repo: str, run_id: int) -> int:
        self.count_call(repo)
        return self._rerun(repo, run_id, only_failed=True)

    def rerun_all_jobs(self, repo: str, run_id: int) -> int:
        """Re-run every job of a run as a new attempt; returns the attempt number."""
        self.count_call(repo)
        return self._rerun(repo, run_id, only_failed=False)

    def _rerun(self, repo: str, run_id: int, only_failed: bool) -> int:
        run_file = self._run_file(repo, run_id)
        self._load_run(repo, run_id)

        def add_attempt(rec: dict[str, Any]) -> int:
            last = rec["attempts"][-1]
            if last.get("status") != RunStatus.COMPLETED.value:
                raise ProviderError(f"run {run_id} of {repo} is still {last.get('status')}")
            jobs = list(last.get("jobs", []))
            names = rerun_names(jobs, only_failed)
            if only_failed and not names:
                raise ProviderError(f"run {run_id} of {repo} has no failed jobs to re-run")
            number = len(rec["attempts"]) + 1
            att = new_attempt(number, RunStatus.QUEUED, utc_now())
            att["rerun"] = None if not only_failed else sorted(names)
            att["preallocated"] = []
            att["jobs"] = [self._queue_again(j, number, att["preallocated"], names) for j in jobs]
            rec["attempts"].append(att)
            return number

        number = store.update_json(run_file, add_attempt)
        self._spawn(repo, run_id, number)
        return number

    def _queue_again(
        self, job: dict[str, Any], attempt: int, preallocated: list[int], names: set[str]
    ) -> dict[str, Any]:
        """A job of the last attempt in a new one: queued again with a new id (allocated
        now) when it is re-run, carried over as it is otherwise."""
        if job["name"] not in names:
            return job
        job_id = self._counter("job")
        preallocated.append(job_id)
        job = {**job, "job_id": job_id, "status": RunStatus.QUEUED.value}
        job.update(conclusion=None, steps=[], started_at=None, completed_at=None)
        job.update(run_attempt=attempt, log_path="")
        return job


def _as_invalid(path: str, exc: WorkflowError | WorkspaceError) -> InvalidWorkflowError:
    """An error reading or parsing a workflow file as an invalid workflow of ``path``."""
    if isinstance(exc, InvalidWorkflowError):
        return exc
    return InvalidWorkflowError(path, None, str(exc))


def _mark_in_progress(att: dict[str, Any]) -> None:
    att["status"] = RunStatus.IN_PROGRESS.value
    att["pid"] = os.getpid()
    att["updated_at"] = utc_now()


def rerun_names(jobs: list[dict[str, Any]], only_failed: bool) -> set[str]:
    """The failed jobs and every job that needs them (transitively), by display name."""
    if not only_failed:
        return {j["name"] for j in jobs}
    failed = {c.value for c in FAILED_CONCLUSIONS}
    keys = {j.get("key") or j["name"] for j in jobs if j.get("conclusion") in failed}
    changed = True
    while changed:
        changed = False
        for j in jobs:
            key = j.get("key") or j["name"]
            if key not in keys and any(n in keys for n in j.get("needs", [])):
                keys.add(key)
                changed = True
    return {j["name"] for j in jobs if (j.get("key") or j["name"]) in keys}
