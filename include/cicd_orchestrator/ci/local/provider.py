"""The local CI provider: git repositories on disk are the remote, workflows run on this machine.

Layout under ``root``::

    config.json                      secrets, protected branch patterns, runner limits
    counters.json                    run, job, comment ids (locked counters)
    repos/<owner>/<name>.git         bare repositories with a post-receive hook
    data/<owner>/<name>/repo.json    default branch
    data/<owner>/<name>/runs/<id>.json   one run with all its attempts and jobs
    data/<owner>/<name>/logs/<job>.log   raw job logs (GitHub's format)
    data/<owner>/<name>/issues.json  issues and pull requests (one numbering, as on GitHub)
    data/<owner>/<name>/comments.json, statuses.json
    spawn/                           output of the detached run processes

A push of a branch runs the hook, which records a queued run per triggered workflow and
starts a detached process that executes it (``hook execute``); the push returns at once.
Everything needed to rebuild the provider is under ``root``, so any process can.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cicd_orchestrator
from cicd_orchestrator.ci.base import CIProvider, GitRemote
from cicd_orchestrator.ci.local import store
from cicd_orchestrator.ci.local.runner import (
    BAD_CONCLUSIONS,
    JobExecution,
    JobLog,
    JobRunner,
    git_env,
    list_workflow_files,
    run_conclusion,
    run_git,
    utc_now,
)
from cicd_orchestrator.ci.local.workflow import (
    InvalidWorkflowError,
    Workflow,
    parse_workflow,
    protected_match,
)
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import (
    ProviderError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
    WorkflowError,
    WorkspaceError,
)
from cicd_orchestrator.models import Issue, Job, PullRequest, RefStatus, Run, Step
from cicd_orchestrator.serde import from_json_obj, to_json_obj

log = logging.getLogger(__name__)

DEFAULT_PROTECTED = ["main", "master", "release/*", "production"]
HOOK_MODULE = "cicd_orchestrator.ci.local.hook"
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SPAWNED: list[subprocess.Popen[bytes]] = []
_SPAWN_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME"})


class RunWaitTimeoutError(ProviderError, TimeoutError):
    """A run or a ref did not complete in time."""


@dataclass
class LocalPullRequest(PullRequest):
    body: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass
class LocalIssue(Issue):
    body: str = ""
    labels: list[str] = dataclasses.field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""


@dataclass
class Comment:
    id: int
    number: int
    body: str
    url: str
    created_at: str = ""
    updated_at: str = ""


@dataclass
class CommitStatus:
    sha: str
    context: str
    state: CombinedState
    description: str = ""
    target_url: str = ""
    created_at: str = ""


def _reap() -> None:
    """Collect the exit status of finished run processes started by this process."""
    for proc in list(_SPAWNED):
        if proc.poll() is not None:
            _SPAWNED.remove(proc)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return True  # unknown: assume it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def package_parent() -> str:
    """The folder that holds the ``cicd_orchestrator`` package (for a child's PYTHONPATH)."""
    return str(Path(cicd_orchestrator.__file__).resolve().parent.parent)


class LocalProvider(CIProvider):
    """A CI provider backed by git repositories and a JSON database under ``root``."""

    name = "local"

    def __init__(
        self,
        root: str | os.PathLike[str],
        secrets: dict[str, str] | None = None,
        *,
        protected_branches: list[str] | None = None,
        tool_path: list[str] | None = None,
        max_parallel_jobs: int | None = None,
        default_timeout_minutes: float | None = None,
        output_cap_bytes: int | None = None,
        python: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.calls = 0
        changes: dict[str, Any] = {
            "secrets": secrets,
            "protected_branches": protected_branches,
            "tool_path": tool_path,
            "max_parallel_jobs": max_parallel_jobs,
            "default_timeout_minutes": default_timeout_minutes,
            "output_cap_bytes": output_cap_bytes,
            "python": python,
        }
        changes = {k: v for k, v in changes.items() if v is not None}

        def merge(cfg: dict[str, Any]) -> None:
            cfg.update(changes)
            cfg.setdefault("secrets", {})
            cfg.setdefault("protected_branches", list(DEFAULT_PROTECTED))
            cfg.setdefault("python", sys.executable)

        store.update_json(self.config_path, merge, default={}, mode=0o600)

    # ------------------------------------------------------------------ paths and config
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def config(self) -> dict[str, Any]:
        data = store.read_json(self.config_path, {})
        return data if isinstance(data, dict) else {}

    @property
    def secrets(self) -> dict[str, str]:
        return dict(self.config.get("secrets") or {})

    def set_secret(self, name: str, value: str) -> None:
        """Configure a secret (``${{ secrets.NAME }}``) for every repository."""
        self.count_call()
        store.update_json(
            self.config_path,
            lambda cfg: cfg.setdefault("secrets", {}).__setitem__(name, value),
            default={},
            mode=0o600,
        )

    def _counter(self, name: str) -> int:
        return store.next_counter(self.root / "counters.json", name)

    def count_call(self, repo: str | None = None) -> None:
        """Count a call in this instance and, per repository, on disk (across processes)."""
        super().count_call(repo)
        if repo and _REPO_RE.match(repo) and ".." not in repo:
            store.next_counter(self.root / "calls.json", repo)

    def call_count(self, repo: str) -> int:
        """Calls made for ``repo`` by every process since the repository was created."""
        return int(store.read_json(self.root / "calls.json", {}).get(repo, 0))

    @staticmethod
    def _check_name(repo: str) -> str:
        if not isinstance(repo, str) or not _REPO_RE.match(repo) or ".." in repo:
            raise UnknownRepositoryError(f"invalid repository name {repo!r} (want owner/name)")
        return repo

    def repo_path(self, repo: str) -> Path:
        """The bare repository of ``repo`` (raises UnknownRepositoryError if there is none)."""
        path = self.root / "repos" / f"{self._check_name(repo)}.git"
        if not (path / "HEAD").exists():
            raise UnknownRepositoryError(f"unknown repository {repo!r} in {self.root}")
        return path

    def _data(self, repo: str) -> Path:
        self.repo_path(repo)
        return self.root / "data" / repo

    def _run_file(self, repo: str, run_id: int) -> Path:
        return self._data(repo) / "runs" / f"{int(run_id)}.json"

    def _url(self, repo: str, *parts: object) -> str:
        return "/".join([f"local://{repo}", *(str(p) for p in parts)])

    # ------------------------------------------------------------------ repositories
    def create_repository(self, repo: str, default_branch: str = "main") -> str:
        """Create the bare repository with its post-receive hook; returns its path."""
        self.count_call(repo)
        self._check_name(repo)
        path = self.root / "repos" / f"{repo}.git"
        if not (path / "HEAD").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            run_git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)])
        self._install_hook(repo, path)
        data = self.root / "data" / repo
        store.update_json(
            data / "repo.json",
            lambda d: d.setdefault("default_branch", default_branch),
            default={},
        )
        return str(path)

    def delete_repository(self, repo: str) -> None:
        """Delete the repository with its runs, logs, issues and pull requests (as deleting a
        repository on GitHub does); every later call for it raises UnknownRepositoryError.
        A run still executing fails when it next records its progress."""
        self.count_call(repo)
        path = self.repo_path(repo)
        trash = self.root / "deleted" / f"{repo.replace('/', '__')}-{time.time_ns()}"
        trash.mkdir(parents=True)
        path.rename(trash / "repo.git")  # atomic: from here on the repository is unknown
        data = self.root / "data" / repo
        if data.exists():
            data.rename(trash / "data")
        shutil.rmtree(trash, ignore_errors=True)

    def _install_hook(self, repo: str, path: Path) -> None:
        python = str(self.config.get("python") or sys.executable)
        script = "\n".join(
            [
                "#!/bin/sh",
                "# Installed by the cicd_orchestrator local CI provider: a push starts CI runs.",
                f"PYTHONPATH={shlex.quote(package_parent())}${{PYTHONPATH:+:$PYTHONPATH}}",
                "export PYTHONPATH",
                f"exec {shlex.quote(python)} -m {HOOK_MODULE} post-receive "
                f"{shlex.quote(str(self.root))} {shlex.quote(repo)}",
                "",
            ]
        )
        hook = path / "hooks" / "post-receive"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(script, encoding="utf-8")
        hook.chmod(0o755)

    def repositories(self) -> list[str]:
        """Every repository of the provider, sorted."""
        self.count_call()
        base = self.root / "repos"
        return sorted(
            f"{p.parent.name}/{p.name[:-4]}" for p in base.glob("*/*.git") if (p / "HEAD").exists()
        )

    def default_branch(self, repo: str) -> str:
        self.count_call(repo)
        return self._default_branch(repo)

    def _default_branch(self, repo: str) -> str:
        data = store.read_json(self._data(repo) / "repo.json", {})
        return str(data.get("default_branch") or "main")

    def protected_branches(self, repo: str) -> list[str]:
        self.count_call(repo)
        return self._protected(repo)

    def _protected(self, repo: str) -> list[str]:
        patterns = list(self.config.get("protected_branches") or DEFAULT_PROTECTED)
        default = self._default_branch(repo)
        return patterns if default in patterns else [*patterns, default]

    def git_remote(self, repo: str) -> GitRemote:
        self.count_call(repo)
        return GitRemote(url=str(self.repo_path(repo)), env={})

    def branch_sha(self, repo: str, branch: str) -> str | None:
        """The commit a branch points at, or None."""
        self.count_call(repo)
        return self._branch_sha(repo, branch)

    def _branch_sha(self, repo: str, branch: str) -> str | None:
        try:
            out = run_git(
                ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
                cwd=self.repo_path(repo),
            )
        except WorkspaceError:
            return None
        return out.strip() or None

    # ------------------------------------------------------------------ starting runs
    def start_runs(self, repo: str, sha: str, branch: str, event: str = "push") -> list[int]:
        """Start a run of every workflow of ``sha`` that ``event`` on ``branch`` triggers.

        A workflow file that does not parse gives a completed, failed run whose one job's
        log names the file, the line and the parser's message. Returns the run ids.
        """
        self.count_call(repo)
        git_dir = self.repo_path(repo)
        run_ids: list[int] = []
        try:
            files = list_workflow_files(git_dir, sha)
        except WorkspaceError as exc:
            log.warning("cannot list the workflows of %s at %s: %s", repo, sha, exc)
            return []
        for path in files:
            try:
                text = run_git(["show", f"{sha}:{path}"], cwd=git_dir)
                wf = parse_workflow(text, path)
            except InvalidWorkflowError as exc:
                run_ids.append(self._record_invalid_run(repo, sha, branch, event, path, exc))
                continue
            except (WorkflowError, WorkspaceError) as exc:
                err = InvalidWorkflowError(path, None, str(exc))
                run_ids.append(self._record_invalid_run(repo, sha, branch, event, path, err))
                continue
            if wf.triggered_by(event, branch):
                run_id = self._create_run(repo, sha, branch, event, path, wf.name)
                self._spawn(repo, run_id, 1)
                run_ids.append(run_id)
        return run_ids

    def _create_run(
        self,
        repo: str,
        sha: str,
        branch: str,
        event: str,
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
            "head_branch": branch,
            "head_sha": sha,
            "event": event,
            "run_number": self._counter(f"run_number:{repo}:{path}"),
            "created_at": now,
            "html_url": self._url(repo, "actions", "runs", run_id),
            "attempts": [_new_attempt(1, status, now)],
        }
        store.write_json(self._run_file(repo, run_id), record)
        return run_id

    def _record_invalid_run(
        self, repo: str, sha: str, branch: str, event: str, path: str, exc: InvalidWorkflowError
    ) -> int:
        run_id = self._create_run(repo, sha, branch, event, path, path, RunStatus.IN_PROGRESS)
        self._fail_attempt_invalid(repo, run_id, 1, exc)
        return run_id

    def _fail_attempt_invalid(
        self, repo: str, run_id: int, attempt: int, exc: InvalidWorkflowError
    ) -> None:
        """Complete an attempt as failed with one synthetic job whose log names the error."""
        job_id = self._counter("job")
        log_path = self._data(repo) / "logs" / f"{job_id}.log"
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

        def done(rec: dict[str, Any]) -> None:
            att = rec["attempts"][attempt - 1]
            att["jobs"] = [to_json_obj(execution)]
            att.update(status=RunStatus.COMPLETED.value, conclusion=Conclusion.FAILURE.value)
            att["updated_at"] = now
            att["error"] = str(exc)

        store.update_json(self._run_file(repo, run_id), done)

    def _spawn(self, repo: str, run_id: int, attempt: int) -> None:
        """Start the detached process that executes an attempt of a run."""
        _reap()
        spawn_dir = self.root / "spawn"
        spawn_dir.mkdir(parents=True, exist_ok=True)
        out_path = spawn_dir / f"run-{run_id}-{attempt}.out"
        # the run process gets no credential of this process either (steps never do)
        env = {k: v for k, v in git_env().items() if k in _SPAWN_ENV}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent(), os.environ.get("PYTHONPATH", "")) if p
        )
        python = str(self.config.get("python") or sys.executable)
        argv = [
            python,
            "-m",
            HOOK_MODULE,
            "execute",
            str(self.root),
            repo,
            str(run_id),
            str(attempt),
        ]
        try:
            with open(out_path, "ab") as out:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    env=env,
                    cwd=str(self.root),
                )
        except OSError as exc:
            self.fail_attempt(repo, run_id, attempt, f"cannot start the run process: {exc}")
            return
        _SPAWNED.append(proc)
        self._update_attempt(repo, run_id, attempt, lambda att: att.__setitem__("pid", proc.pid))

    # ------------------------------------------------------------------ executing (detached)
    def execute_attempt(self, repo: str, run_id: int, attempt: int) -> Conclusion:
        """Execute an attempt of a run with the job runner (the detached process calls it)."""
        rec = self._load_run(repo, run_id)
        att = rec["attempts"][attempt - 1]
        cfg = self.config
        runner = JobRunner(
            secrets=self.secrets,
            tool_path=cfg.get("tool_path"),
            default_timeout_minutes=float(cfg.get("default_timeout_minutes") or 30),
            output_cap_bytes=int(cfg.get("output_cap_bytes") or 20_000_000),
            max_parallel_jobs=int(cfg.get("max_parallel_jobs") or 2),
        )
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
                ref=f"refs/heads/{rec['head_branch']}",
                repository=repo,
                run_id=run_id,
                run_number=int(rec["run_number"]),
                run_attempt=attempt,
                event=rec.get("event") or "push",
                jobs=selected,
                previous=previous,
                log_dir=self._data(repo) / "logs",
                on_update=lambda e: self._job_update(repo, run_id, attempt, e),
                allocate_job_id=allocate,
            )
        except InvalidWorkflowError as exc:
            self._fail_attempt_invalid(repo, run_id, attempt, exc)
            return Conclusion.FAILURE
        except WorkflowError as exc:
            err = InvalidWorkflowError(rec["workflow_path"], None, str(exc))
            self._fail_attempt_invalid(repo, run_id, attempt, err)
            return Conclusion.FAILURE
        conclusion = run_conclusion(results)

        def finish(a: dict[str, Any]) -> None:
            a["jobs"] = [to_json_obj(e) for e in results]
            a.update(status=RunStatus.COMPLETED.value, conclusion=conclusion.value)
            a["updated_at"] = utc_now()

        self._update_attempt(repo, run_id, attempt, finish)
        return conclusion

    def fail_attempt(self, repo: str, run_id: int, attempt: int, error: str) -> None:
        def fail(a: dict[str, Any]) -> None:
            a.update(status=RunStatus.COMPLETED.value, conclusion=Conclusion.FAILURE.value)
            a["error"] = error
            a["updated_at"] = utc_now()
            for j in a.get("jobs", []):
                if j.get("status") != RunStatus.COMPLETED.value:
                    j.update(status=RunStatus.COMPLETED.value, conclusion=Conclusion.FAILURE.value)

        self._update_attempt(repo, run_id, attempt, fail)

    def _update_attempt(
        self, repo: str, run_id: int, attempt: int, fn: Callable[[dict[str, Any]], None]
    ) -> None:
        store.update_json(
            self._run_file(repo, run_id), lambda rec: fn(rec["attempts"][attempt - 1])
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

    # ------------------------------------------------------------------ reading runs
    def _load_run(self, repo: str, run_id: int) -> dict[str, Any]:
        rec = store.read_json(self._run_file(repo, run_id))
        if not isinstance(rec, dict):
            raise UnknownRunError(f"unknown run {run_id} of {repo}")
        return rec

    def _check_alive(self, repo: str, rec: dict[str, Any]) -> dict[str, Any]:
        """A run whose process died without completing it is completed as failed."""
        att = rec["attempts"][-1]
        if att.get("status") != RunStatus.COMPLETED.value and not _pid_alive(att.get("pid")):
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

    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        self.count_call(repo)
        path = self._data(repo) / "logs" / f"{int(job_id)}.log"
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
            names = _rerun_names(jobs, only_failed)
            if only_failed and not names:
                raise ProviderError(f"run {run_id} of {repo} has no failed jobs to re-run")
            number = len(rec["attempts"]) + 1
            att = _new_attempt(number, RunStatus.QUEUED, utc_now())
            att["rerun"] = None if not only_failed else sorted(names)
            att["preallocated"] = []
            new_jobs = []
            for j in jobs:
                if j["name"] in names or not only_failed:
                    job_id = self._counter("job")
                    att["preallocated"].append(job_id)
                    j = {**j, "job_id": job_id, "status": RunStatus.QUEUED.value}
                    j.update(conclusion=None, steps=[], started_at=None, completed_at=None)
                    j.update(run_attempt=number, log_path="")
                new_jobs.append(j)
            att["jobs"] = new_jobs
            rec["attempts"].append(att)
            return number

        number = store.update_json(run_file, add_attempt)
        self._spawn(repo, run_id, number)
        return number

    # ------------------------------------------------------------------ status
    def ref_status(self, repo: str, sha: str) -> RefStatus:
        self.count_call(repo)
        return self._ref_status(repo, sha)

    def _ref_status(self, repo: str, sha: str) -> RefStatus:
        runs = self._list_runs(repo, None, sha)
        states: list[CombinedState] = []
        for run in runs:
            if run.status is not RunStatus.COMPLETED:
                states.append(CombinedState.PENDING)
            elif run.conclusion in BAD_CONCLUSIONS:
                states.append(CombinedState.FAILURE)
            else:
                states.append(CombinedState.SUCCESS)
        for status in self._statuses(repo, sha):
            if status.context != STATUS_CONTEXT:
                states.append(status.state)
        return RefStatus(sha=sha, state=_combine(states), runs=runs)

    def set_commit_status(
        self, repo: str, sha: str, state: CombinedState, description: str, target_url: str = ""
    ) -> None:
        self.count_call(repo)
        self._put_status(repo, sha, STATUS_CONTEXT, CombinedState(state), description, target_url)

    def add_commit_status(
        self,
        repo: str,
        sha: str,
        context: str,
        state: CombinedState,
        description: str = "",
        target_url: str = "",
    ) -> None:
        """A commit status of another context (an external check); it counts in ref_status."""
        self.count_call(repo)
        self._put_status(repo, sha, context, CombinedState(state), description, target_url)

    def _put_status(
        self, repo: str, sha: str, context: str, state: CombinedState, description: str, url: str
    ) -> None:
        entry = CommitStatus(sha, context, state, description[:140], url, utc_now())

        def put(data: dict[str, list[Any]]) -> None:
            items = [s for s in data.get(sha, []) if s.get("context") != context]
            data[sha] = [*items, to_json_obj(entry)]

        store.update_json(self._data(repo) / "statuses.json", put, default={})

    def commit_statuses(self, repo: str, sha: str) -> list[CommitStatus]:
        """The commit statuses of a sha (the latest per context)."""
        self.count_call(repo)
        return self._statuses(repo, sha)

    def _statuses(self, repo: str, sha: str) -> list[CommitStatus]:
        data = store.read_json(self._data(repo) / "statuses.json", {})
        return [from_json_obj(CommitStatus, s) for s in data.get(sha, [])]

    # ------------------------------------------------------------------ pushing
    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        self.count_call(repo)
        self.check_branch_allowed(repo, branch)
        remote = str(self.repo_path(repo))
        try:
            sha = run_git(["rev-parse", "HEAD"], cwd=workdir).strip()
        except WorkspaceError as exc:
            raise ProviderError(f"{workdir} is not a git work tree with a commit: {exc}") from exc
        proc = subprocess.run(
            ["git", "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}"],
            cwd=workdir,
            env=git_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            detail = (proc.stdout + proc.stderr).strip()
            if "non-fast-forward" in detail or "[rejected]" in detail or "fetch first" in detail:
                raise ProviderError(
                    f"push of {sha[:12]} to {repo}:{branch} was rejected (not a fast-forward; "
                    f"the orchestrator never forces a push): {detail}"
                )
            raise ProviderError(f"push of {sha[:12]} to {repo}:{branch} failed: {detail}")
        return sha

    def check_branch_allowed(self, repo: str, branch: str) -> None:
        """Raise SafetyError for the default branch, a protected pattern or a bad name."""
        if not branch or branch.startswith(("+", "-", ":")) or ":" in branch or ".." in branch:
            raise SafetyError(f"refusing to push to the invalid branch name {branch!r}")
        if branch.startswith("refs/"):
            raise SafetyError(f"give a branch name, not a ref: {branch!r}")
        if branch == self._default_branch(repo):
            raise SafetyError(f"refusing to push to the default branch {branch!r} of {repo}")
        patterns = self._protected(repo)
        if protected_match(branch, patterns):
            raise SafetyError(
                f"refusing to push to the protected branch {branch!r} of {repo} "
                f"(protected: {', '.join(patterns)})"
            )

    # ------------------------------------------------------------------ issues and PRs
    def _issues_file(self, repo: str) -> Path:
        return self._data(repo) / "issues.json"

    def _items(self, repo: str) -> list[dict[str, Any]]:
        data = store.read_json(self._issues_file(repo), {"items": []})
        return list(data.get("items", []))

    def open_or_update_pull_request(
        self, repo: str, head: str, base: str, title: str, body: str, marker: str
    ) -> PullRequest:
        self.count_call(repo)
        for branch in (head, base):
            if self._branch_sha(repo, branch) is None:
                raise ProviderError(f"branch {branch!r} does not exist in {repo}")
        if not marker:
            raise ProviderError("a pull request needs a marker (idempotency)")
        item = self._upsert(
            repo,
            kind="pull",
            marker=marker,
            fields={"head": head, "base": base, "title": title, "body": _with_marker(body, marker)},
        )
        return _to_pull(item)

    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        self.count_call(repo)
        if not marker:
            raise ProviderError("an issue needs a marker (idempotency)")
        fields = {"title": title, "body": _with_marker(body, marker), "labels": list(labels or [])}
        return _to_issue(self._upsert(repo, kind="issue", marker=marker, fields=fields))

    def _upsert(self, repo: str, kind: str, marker: str, fields: dict[str, Any]) -> dict[str, Any]:
        now = utc_now()

        def upsert(data: dict[str, Any]) -> dict[str, Any]:
            items = data.setdefault("items", [])
            for item in items:
                if item["kind"] == kind and item["state"] == "open" and marker in item["body"]:
                    item.update(fields)
                    item["updated_at"] = now
                    return dict(item)
            number = int(data.get("last_number", 0)) + 1
            data["last_number"] = number
            item = {
                "kind": kind,
                "number": number,
                "state": "open",
                "url": self._url(repo, "pull" if kind == "pull" else "issues", number),
                "created_at": now,
                "updated_at": now,
                **fields,
            }
            items.append(item)
            return dict(item)

        return store.update_json(self._issues_file(repo), upsert, default={"items": []})

    def close(self, repo: str, number: int) -> None:
        """Close an issue or a pull request."""
        self.count_call(repo)

        def close(data: dict[str, Any]) -> None:
            for item in data.get("items", []):
                if item["number"] == number:
                    item["state"] = "closed"
                    item["updated_at"] = utc_now()
                    return
            raise ProviderError(f"no issue or pull request #{number} in {repo}")

        store.update_json(self._issues_file(repo), close, default={"items": []})

    def list_pull_requests(self, repo: str, state: str | None = None) -> list[LocalPullRequest]:
        self.count_call(repo)
        return [
            _to_pull(i)
            for i in self._items(repo)
            if i["kind"] == "pull" and (state is None or i["state"] == state)
        ]

    def list_issues(self, repo: str, state: str | None = None) -> list[LocalIssue]:
        self.count_call(repo)
        return [
            _to_issue(i)
            for i in self._items(repo)
            if i["kind"] == "issue" and (state is None or i["state"] == state)
        ]

    def get_issue(self, repo: str, number: int) -> LocalIssue:
        """An issue (or a pull request, seen as an issue, as on GitHub) by number."""
        self.count_call(repo)
        for item in self._items(repo):
            if item["number"] == number:
                return _to_issue(item)
        raise ProviderError(f"no issue or pull request #{number} in {repo}")

    def get_pull_request(self, repo: str, number: int) -> LocalPullRequest:
        self.count_call(repo)
        for item in self._items(repo):
            if item["number"] == number and item["kind"] == "pull":
                return _to_pull(item)
        raise ProviderError(f"no pull request #{number} in {repo}")

    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        self.count_call(repo)
        if not any(i["number"] == number for i in self._items(repo)):
            raise ProviderError(f"no issue or pull request #{number} in {repo}")
        if not marker:
            raise ProviderError("a comment needs a marker (idempotency)")
        text = _with_marker(body, marker)
        now = utc_now()

        def upsert(data: dict[str, Any]) -> None:
            items = data.setdefault("items", [])
            for c in items:
                if c["number"] == number and marker in c["body"]:
                    c.update(body=text, updated_at=now)
                    return
            cid = self._counter("comment")
            url = self._url(repo, "issues", number) + f"#issuecomment-{cid}"
            items.append(to_json_obj(Comment(cid, number, text, url, now, now)))

        store.update_json(self._data(repo) / "comments.json", upsert, default={"items": []})

    def list_comments(self, repo: str, number: int) -> list[Comment]:
        self.count_call(repo)
        data = store.read_json(self._data(repo) / "comments.json", {"items": []})
        return [from_json_obj(Comment, c) for c in data["items"] if c["number"] == number]

    # ------------------------------------------------------------------ waiting
    def wait_for_run(
        self,
        repo: str,
        run_id: int,
        attempt: int | None = None,
        timeout: float = 300.0,
        poll: float = 0.2,
    ) -> Run:
        """Poll until the attempt (default: the latest) is completed; returns it."""
        self.count_call(repo)
        deadline = time.monotonic() + timeout
        while True:
            _reap()
            run = self._get_run(repo, run_id, attempt)
            if run.status is RunStatus.COMPLETED:
                return run
            if time.monotonic() >= deadline:
                raise RunWaitTimeoutError(
                    f"run {run_id} of {repo} still {run.status.value} after {timeout:g}s"
                )
            time.sleep(poll)

    def wait_for_ref(
        self, repo: str, sha: str, timeout: float = 300.0, poll: float = 0.2
    ) -> RefStatus:
        """Poll until no run of ``sha`` is queued or in progress; returns the combined state."""
        self.count_call(repo)
        deadline = time.monotonic() + timeout
        while True:
            _reap()
            status = self._ref_status(repo, sha)
            if status.state is not CombinedState.PENDING:
                return status
            if time.monotonic() >= deadline:
                raise RunWaitTimeoutError(
                    f"CI of {sha[:12]} in {repo} still pending after {timeout:g}s"
                )
            time.sleep(poll)


# --------------------------------------------------------------------------- helpers
def _new_attempt(number: int, status: RunStatus, now: str) -> dict[str, Any]:
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


def _mark_in_progress(att: dict[str, Any]) -> None:
    att["status"] = RunStatus.IN_PROGRESS.value
    att["pid"] = os.getpid()
    att["updated_at"] = utc_now()


def _rerun_names(jobs: list[dict[str, Any]], only_failed: bool) -> set[str]:
    """The failed jobs and every job that needs them (transitively), by display name."""
    if not only_failed:
        return {j["name"] for j in jobs}
    bad = {c.value for c in BAD_CONCLUSIONS}
    keys = {j.get("key") or j["name"] for j in jobs if j.get("conclusion") in bad}
    changed = True
    while changed:
        changed = False
        for j in jobs:
            key = j.get("key") or j["name"]
            if key not in keys and any(n in keys for n in j.get("needs", [])):
                keys.add(key)
                changed = True
    return {j["name"] for j in jobs if (j.get("key") or j["name"]) in keys}


def _combine(states: list[CombinedState]) -> CombinedState:
    if not states:
        return CombinedState.NONE
    if CombinedState.PENDING in states:
        return CombinedState.PENDING
    if CombinedState.FAILURE in states:
        return CombinedState.FAILURE
    return CombinedState.SUCCESS


def _with_marker(body: str, marker: str) -> str:
    return body if marker in body else f"{body}\n\n{marker}"


def _to_pull(item: dict[str, Any]) -> LocalPullRequest:
    return LocalPullRequest(
        number=int(item["number"]),
        head=item["head"],
        base=item["base"],
        title=item["title"],
        url=item["url"],
        state=item["state"],
        body=item.get("body", ""),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
    )


def _to_issue(item: dict[str, Any]) -> LocalIssue:
    return LocalIssue(
        number=int(item["number"]),
        title=item["title"],
        url=item["url"],
        state=item["state"],
        body=item.get("body", ""),
        labels=list(item.get("labels", [])),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
    )


def workflow_of(provider: LocalProvider, repo: str, sha: str, path: str) -> Workflow:
    """The parsed workflow file ``path`` of commit ``sha`` (raises InvalidWorkflowError)."""
    text = run_git(["show", f"{sha}:{path}"], cwd=provider.repo_path(repo))
    return parse_workflow(text, path)
