"""The GitLab provider: GitLab CI pipelines and a GitLab project behind ``CIProvider``.

Everything goes through python-gitlab, authenticated from the Airflow connection
``gitlab_default`` (host = the GitLab URL, password = a personal, project or group access
token) or from an injected client or token.

How GitLab's objects map onto the interface:

- a repository is a project, named by its path (``group/project``);
- a run is a pipeline (``id``; ``iid`` is the run number, ``ref`` the branch, ``source`` the
  event, with ``merge_request_event`` read as ``pull_request``); its workflow path is the
  project's CI configuration file (``ci_config_path``, ``.gitlab-ci.yml`` when unset);
- a job is a job; its step is its stage (GitLab has no steps inside a job: the failing
  section of the job's trace is found by the log engine); a job needs every job of the
  stages before its own (GitLab's stage order), a failed job with ``allow_failure`` is
  neutral, and GitLab's ``failure_reason`` is kept on the job (``GitLabJob``; timeouts give
  a timed-out conclusion) for the classification (``reasons``);
- attempts: GitLab retries a pipeline's failed jobs in the same pipeline, as new jobs with
  new ids (the old ones stay, as retried jobs). Attempt ``n`` of a pipeline is, for each job
  name, its ``n``-th instance (or its last one when it was retried fewer times); the latest
  attempt is the highest number of instances of one job. So ``rerun_failed_jobs`` (``POST
  /pipelines/:id/retry``) makes attempt 2, 3... of the same pipeline, as on GitHub. A run's
  state is computed from the jobs of the attempt (so that a commit status another tool, or
  the orchestrator, adds to the pipeline does not hold it pending);
- the combined state of a commit: its pipelines (by their jobs) and the commit statuses that
  are not jobs of those pipelines; the orchestrator's own status ``cicd-orchestrator`` does
  not count;
- pull requests are merge requests (``number`` = ``iid``), comments are notes (on the merge
  request ``!number``; on issue ``#number`` when there is no such merge request), issues are
  issues; every write carries the orchestrator's hidden marker and is looked up by it first.

Each operation backs off on rate limits (429 with Retry-After or RateLimit-Reset), 5xx
answers, timeouts and truncated bodies, within a bound (``ratelimit``). git runs over HTTPS
with the token in its environment only (``auth``); pushes are never forced and never go to
the default branch, a branch the project protects (protected branches API, wildcards
included) or a configured protected pattern, nor to the branch of a merge request from a fork.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from cicd_orchestrator.ci.base import CIProvider, GitRemote
from cicd_orchestrator.ci.gitlab.auth import (
    DEFAULT_GIT_USERNAME,
    DEFAULT_TIMEOUT,
    client_from_connection,
    gitlab_git_env,
    install_log_filter,
    token_client,
    token_of,
)
from cicd_orchestrator.ci.gitlab.ratelimit import BackoffPolicy, with_backoff
from cicd_orchestrator.ci.gitlab.reasons import conclusion_of
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import (
    ProviderError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
)
from cicd_orchestrator.models import Issue, Job, PullRequest, RefStatus, Run, Step
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    from gitlab import Gitlab
    from gitlab.v4.objects import Project

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PROTECTED_PATTERNS = ["main", "master", "release/*", "production"]
DEFAULT_CI_CONFIG = ".gitlab-ci.yml"
_BAD = {Conclusion.FAILURE, Conclusion.TIMED_OUT, Conclusion.CANCELLED}
_QUEUED = {"created", "pending", "waiting_for_resource", "preparing", "scheduled"}
_RUNNING = {"running", "canceling"}
_DONE = {
    "success": Conclusion.SUCCESS,
    "failed": Conclusion.FAILURE,
    "canceled": Conclusion.CANCELLED,
    "skipped": Conclusion.SKIPPED,
    "manual": Conclusion.SKIPPED,  # a manual job nobody started (the pipeline is blocked)
}
_EVENTS = {"merge_request_event": "pull_request"}
_MR_STATES = {"opened": "open", "locked": "open"}
_ISSUE_STATES = {"opened": "open"}


@dataclass
class GitLabJob(Job):
    """A GitLab job: a ``Job`` with what GitLab says about it besides."""

    stage: str = ""
    failure_reason: str | None = None
    allow_failure: bool = False
    retried: bool = False


def job_state(
    status: Any, failure_reason: Any = None, allow_failure: bool = False
) -> tuple[RunStatus, Conclusion | None]:
    """(status, conclusion) of a GitLab job or pipeline status."""
    value = str(status or "")
    if value in _QUEUED:
        return RunStatus.QUEUED, None
    if value in _RUNNING:
        return RunStatus.IN_PROGRESS, None
    if value == "failed":
        if allow_failure:
            return RunStatus.COMPLETED, Conclusion.NEUTRAL
        return RunStatus.COMPLETED, conclusion_of(str(failure_reason or "") or None)
    if value in _DONE:
        return RunStatus.COMPLETED, _DONE[value]
    return RunStatus.IN_PROGRESS, None  # a status this version does not know: not done


def combine_jobs(jobs: list[Job]) -> tuple[RunStatus, Conclusion | None]:
    """The state of a run (one attempt) from its jobs."""
    if any(j.status is not RunStatus.COMPLETED for j in jobs):
        started = any(j.status is not RunStatus.QUEUED for j in jobs)
        return (RunStatus.IN_PROGRESS if started else RunStatus.QUEUED), None
    conclusions = {j.conclusion for j in jobs}
    if conclusions & {Conclusion.FAILURE, Conclusion.TIMED_OUT}:
        return RunStatus.COMPLETED, Conclusion.FAILURE
    if Conclusion.CANCELLED in conclusions:
        return RunStatus.COMPLETED, Conclusion.CANCELLED
    return RunStatus.COMPLETED, Conclusion.SUCCESS


def _with_marker(body: str, marker: str) -> str:
    return body if marker in body else f"{body}\n\n{marker}"


def _combine(states: list[CombinedState]) -> CombinedState:
    if not states:
        return CombinedState.NONE
    if CombinedState.PENDING in states:
        return CombinedState.PENDING
    if CombinedState.FAILURE in states:
        return CombinedState.FAILURE
    return CombinedState.SUCCESS


def _status_state(entry: Mapping[str, Any]) -> CombinedState:
    """A commit status (a job or an external status) as a combined state."""
    status, conclusion = job_state(entry.get("status"), None, bool(entry.get("allow_failure")))
    if status is not RunStatus.COMPLETED:
        return CombinedState.PENDING
    return CombinedState.FAILURE if conclusion in _BAD else CombinedState.SUCCESS


class _TraceTooLargeError(ProviderError):
    """A job's trace is larger than the provider's limit."""


class GitLabProvider(CIProvider):
    """GitLab CI and a GitLab project (gitlab.com or a self-managed instance)."""

    name = "gitlab"

    def __init__(
        self,
        conn_id: str = "gitlab_default",
        *,
        client: Gitlab | None = None,
        url: str | None = None,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: BackoffPolicy | None = None,
        max_pipeline_pages: int = 5,
        max_log_bytes: int = 256 * 1024 * 1024,
        protected_patterns: list[str] | None = None,
        git_username: str = DEFAULT_GIT_USERNAME,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conn_id = conn_id
        self._client = client
        self._url = url
        self._token = token
        self.timeout = timeout
        self.backoff = backoff or BackoffPolicy()
        self.max_pipeline_pages = max_pipeline_pages
        self.max_log_bytes = max_log_bytes
        self.protected_patterns = list(
            DEFAULT_PROTECTED_PATTERNS if protected_patterns is None else protected_patterns
        )
        self.git_username = git_username
        self._sleep = sleep
        self.calls = 0
        self._project_cache: dict[str, dict[str, Any]] = {}
        register_secret(token)
        install_log_filter()

    # ------------------------------------------------------------------ client
    @property
    def client(self) -> Gitlab:
        if self._client is None:
            if self._token:
                self._client = token_client(self._token, self._url, self.timeout)
            else:
                self._client = client_from_connection(self.conn_id, self.timeout)
        return self._client

    @property
    def url(self) -> str:
        return str(self.client.url).rstrip("/")

    def _error_headers(self) -> Mapping[str, str]:
        getter = getattr(self.client, "last_error_headers", None)
        return getter() if callable(getter) else {}

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        return with_backoff(fn, self.backoff, what, sleep=self._sleep, headers=self._error_headers)

    @contextlib.contextmanager
    def _errors(self, what: str, *, run: bool = False) -> Iterator[None]:
        """python-gitlab's errors as ProviderError (redacted); 404 as an unknown object."""
        from gitlab.exceptions import GitlabError

        try:
            yield
        except GitlabError as exc:
            code = exc.response_code
            detail = redact(f"{what}: GitLab answered {code}: {exc.error_message}")
            if code == 404:
                cls = UnknownRunError if run else UnknownRepositoryError
                raise cls(detail) from None
            if code == 401:
                raise ProviderError(f"{detail} (is the access token valid?)") from None
            raise ProviderError(detail) from None

    def _project(self, repo: str) -> Project:
        """The project as a lazy object (no request: its path is its id)."""
        return self.client.projects.get(repo, lazy=True)

    def _project_data(self, repo: str) -> dict[str, Any]:
        if repo not in self._project_cache:
            with self._errors(f"reading {repo}"):
                project = self._retry(f"get {repo}", lambda: self.client.projects.get(repo))
            self._project_cache[repo] = dict(project.attributes)
        return self._project_cache[repo]

    def _workflow_path(self, repo: str) -> str:
        path = str(self._project_data(repo).get("ci_config_path") or "")
        return path.split("@", 1)[0] or DEFAULT_CI_CONFIG

    # ------------------------------------------------------------------ repositories
    def default_branch(self, repo: str) -> str:
        self.count_call(repo)
        return str(self._project_data(repo).get("default_branch") or "main")

    def protected_branches(self, repo: str) -> list[str]:
        """Branches (or wildcards such as ``release/*``) the project protects, plus the
        default branch."""
        self.count_call(repo)
        with self._errors(f"listing protected branches of {repo}"):
            items = self._retry(
                f"list protected branches of {repo}",
                lambda: [
                    str(b.attributes["name"])
                    for b in self._project(repo).protectedbranches.list(iterator=True)
                ],
            )
        default = str(self._project_data(repo).get("default_branch") or "main")
        return items if default in items else [*items, default]

    def git_remote(self, repo: str) -> GitRemote:
        self.count_call(repo)
        url = str(self._project_data(repo)["http_url_to_repo"])
        token = self._token or token_of(self.client)
        return GitRemote(url=url, env=gitlab_git_env(token, self.git_username))

    # ------------------------------------------------------------------ runs
    def _to_run(self, repo: str, data: Mapping[str, Any]) -> Run:
        status, conclusion = job_state(data.get("status"))
        source = str(data.get("source") or "")
        return Run(
            id=int(data["id"]),
            repository=repo,
            workflow=str(data.get("name") or "pipeline"),
            workflow_path=self._workflow_path(repo),
            head_branch=str(data.get("ref") or ""),
            head_sha=str(data.get("sha") or ""),
            event=_EVENTS.get(source, source),
            status=status,
            conclusion=conclusion,
            run_number=int(data.get("iid") or 0),
            run_attempt=1,
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            html_url=str(data.get("web_url") or ""),
        )

    def _pipelines(
        self,
        repo: str,
        ref: str | None = None,
        sha: str | None = None,
        status: str | None = None,
        stop: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Pipelines, newest first, at most ``max_pipeline_pages`` pages."""
        params = {k: v for k, v in {"ref": ref, "sha": sha, "status": status}.items() if v}
        limit = self.max_pipeline_pages * 100

        def fetch() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            items = self._project(repo).pipelines.list(
                iterator=True, per_page=100, order_by="id", sort="desc", **params
            )
            for item in items:
                out.append(dict(item.attributes))
                if len(out) >= limit or (stop and stop(item.attributes)):
                    break
            return out

        with self._errors(f"listing the pipelines of {repo}"):
            return self._retry(f"list pipelines of {repo}", fetch)

    def list_runs(
        self, repo: str, branch: str | None = None, head_sha: str | None = None
    ) -> list[Run]:
        self.count_call(repo)
        runs = [self._to_run(repo, p) for p in self._pipelines(repo, branch, head_sha)]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def list_failed_runs(self, repo: str, branch: str, since_run_id: int = 0) -> list[Run]:
        """Failed pipelines of a branch above the cursor (GitLab filters by status; the
        listing stops at the cursor)."""
        self.count_call(repo)
        items = self._pipelines(
            repo, branch, None, "failed", lambda p: int(p["id"]) <= since_run_id
        )
        runs = [self._to_run(repo, p) for p in items if int(p["id"]) > since_run_id]
        return [r for r in runs if r.status is RunStatus.COMPLETED]

    def _pipeline_jobs(self, repo: str, run_id: int) -> list[dict[str, Any]]:
        pipeline = self._project(repo).pipelines.get(int(run_id), lazy=True)
        return [
            dict(j.attributes)
            for j in pipeline.jobs.list(iterator=True, per_page=100, include_retried=True)
        ]

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        self.count_call(repo)
        with self._errors(f"reading pipeline {run_id} of {repo}", run=True):
            data = self._retry(
                f"get pipeline {run_id} of {repo}",
                lambda: dict(self._project(repo).pipelines.get(int(run_id)).attributes),
            )
            jobs = self._retry(
                f"list jobs of pipeline {run_id} of {repo}",
                lambda: self._pipeline_jobs(repo, run_id),
            )
        run = self._to_run(repo, data)
        instances: dict[str, list[dict[str, Any]]] = {}
        for job in sorted(jobs, key=lambda j: int(j["id"])):
            instances.setdefault(str(job.get("name") or ""), []).append(job)
        latest = max((len(v) for v in instances.values()), default=1)
        number = latest if attempt is None else int(attempt)
        if not 1 <= number <= latest:
            raise UnknownRunError(f"pipeline {run_id} of {repo} has no attempt {attempt}")
        run.run_attempt = number
        run.jobs = self._attempt_jobs(run, instances, number)
        if run.jobs:
            run.status, run.conclusion = combine_jobs(run.jobs)
        return run

    def _attempt_jobs(
        self, run: Run, instances: dict[str, list[dict[str, Any]]], number: int
    ) -> list[Job]:
        """The jobs of attempt ``number``: per name, its ``number``-th instance or its last."""
        stage_first: dict[str, int] = {}
        for versions in instances.values():
            stage = str(versions[0].get("stage") or "")
            stage_first[stage] = min(stage_first.get(stage, 1 << 62), int(versions[0]["id"]))
        order = sorted(stage_first, key=lambda s: stage_first[s])
        by_stage: dict[str, list[str]] = {}
        for name, versions in instances.items():
            by_stage.setdefault(str(versions[0].get("stage") or ""), []).append(name)
        out: list[Job] = []
        for versions in sorted(instances.values(), key=lambda v: int(v[0]["id"])):
            index = min(number, len(versions)) - 1
            stage = str(versions[index].get("stage") or "")
            earlier = order[: order.index(stage)] if stage in order else []
            needs = [n for s in earlier for n in by_stage.get(s, [])]
            out.append(self._to_job(run, versions[index], index + 1, needs))
        return out

    @staticmethod
    def _to_job(run: Run, data: Mapping[str, Any], attempt: int, needs: list[str]) -> GitLabJob:
        reason = data.get("failure_reason") or None
        allow = bool(data.get("allow_failure"))
        status, conclusion = job_state(data.get("status"), reason, allow)
        stage = str(data.get("stage") or "")
        started, finished = data.get("started_at"), data.get("finished_at")
        step = Step(1, stage or "script", status, conclusion, started, finished)
        return GitLabJob(
            id=int(data["id"]),
            run_id=run.id,
            name=str(data.get("name") or ""),
            status=status,
            conclusion=conclusion,
            run_attempt=attempt,
            steps=[step],
            needs=needs,
            started_at=started,
            completed_at=finished,
            html_url=str(data.get("web_url") or ""),
            stage=stage,
            failure_reason=str(reason) if reason else None,
            allow_failure=allow,
            retried=bool(data.get("retried")),
        )

    # ------------------------------------------------------------------ traces
    def _download_trace(self, repo: str, job_id: int, what: str) -> Path:
        fd, name = tempfile.mkstemp(prefix="cicd-gl-", suffix=".trace")
        target = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:

                def write(chunk: bytes) -> None:
                    nonlocal size
                    size += len(chunk)
                    if size > self.max_log_bytes:
                        raise _TraceTooLargeError(
                            f"{what} is larger than the limit of {self.max_log_bytes} bytes"
                        )
                    out.write(chunk)

                job = self._project(repo).jobs.get(int(job_id), lazy=True)
                job.trace(streamed=True, action=write, chunk_size=64 * 1024)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        """The job's trace (ANSI colours and section markers as GitLab stores them),
        streamed into a temporary file first."""
        self.count_call(repo)
        what = f"trace of job {job_id} of {repo}"
        with self._errors(what, run=True):
            path = self._retry(what, lambda: self._download_trace(repo, job_id, what))
        try:
            with open(path, "rb") as fh:
                yield fh
        finally:
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ retries and status
    def _attempt_count(self, repo: str, run_id: int) -> int:
        counts: dict[str, int] = {}
        for job in self._pipeline_jobs(repo, run_id):
            name = str(job.get("name") or "")
            counts[name] = counts.get(name, 0) + 1
        return max(counts.values(), default=1)

    def rerun_failed_jobs(self, repo: str, run_id: int) -> int:
        """``POST /projects/:id/pipelines/:id/retry``: GitLab retries the failed and cancelled
        jobs (and what they hold back) as new jobs of the same pipeline; returns the new
        attempt number (see the module docstring)."""
        from gitlab.exceptions import GitlabError

        self.count_call(repo)
        what = f"retrying pipeline {run_id} of {repo}"
        with self._errors(what, run=True):
            before = self._retry(what, lambda: self._attempt_count(repo, run_id))
            try:
                self._retry(
                    what, lambda: self._project(repo).pipelines.get(int(run_id), lazy=True).retry()
                )
            except GitlabError as exc:
                # a retry after a lost answer: the jobs may already have been retried
                if exc.response_code in (400, 403, 409, 422):
                    now = self._attempt_count(repo, run_id)
                    if now > before:
                        return now
                raise
            after = self._retry(what, lambda: self._attempt_count(repo, run_id))
        if after <= before:
            raise ProviderError(
                f"GitLab retried no job of pipeline {run_id} of {repo} "
                "(no failed or cancelled job to retry)"
            )
        return after

    def ref_status(self, repo: str, sha: str) -> RefStatus:
        """Pipelines of ``sha`` (judged by their jobs) and the commit statuses that are not
        their jobs; the orchestrator's own status ``cicd-orchestrator`` does not count."""
        self.count_call(repo)
        states: list[CombinedState] = []
        runs: list[Run] = []
        job_ids: set[int] = set()
        for pipeline in self._pipelines(repo, None, sha):
            if pipeline.get("source") == "external":
                continue  # a pipeline of commit statuses only: they are read below
            run = self.get_run(repo, int(pipeline["id"]))
            job_ids |= {j.id for j in run.jobs}
            runs.append(run)
            if run.status is not RunStatus.COMPLETED:
                states.append(CombinedState.PENDING)
            elif run.conclusion in _BAD:
                states.append(CombinedState.FAILURE)
            else:
                states.append(CombinedState.SUCCESS)
        with self._errors(f"reading the statuses of {sha[:12]} in {repo}"):
            statuses = self._retry(
                f"list statuses of {sha[:12]}",
                lambda: [
                    dict(s.attributes)
                    for s in self._project(repo)
                    .commits.get(sha, lazy=True)
                    .statuses.list(iterator=True, per_page=100)
                ],
            )
        for entry in statuses:
            if entry.get("name") == STATUS_CONTEXT or int(entry.get("id") or 0) in job_ids:
                continue
            states.append(_status_state(entry))
        return RefStatus(sha=sha, state=_combine(states), runs=runs)

    def set_commit_status(
        self, repo: str, sha: str, state: CombinedState, description: str, target_url: str = ""
    ) -> None:
        """The commit status ``cicd-orchestrator``. GitLab refuses to set a status to the
        state it already has (400 "Cannot transition status"): that is success here."""
        from gitlab.exceptions import GitlabError

        self.count_call(repo)
        value = CombinedState(state)
        gl_state = {CombinedState.SUCCESS: "success", CombinedState.FAILURE: "failed"}.get(
            value, "pending"
        )
        body: dict[str, Any] = {
            "state": gl_state,
            "name": STATUS_CONTEXT,
            "description": redact(description)[:255],
        }
        if target_url:
            body["target_url"] = target_url

        def post() -> None:
            try:
                self._project(repo).commits.get(sha, lazy=True).statuses.create(body)
            except GitlabError as exc:
                if exc.response_code == 400 and "transition" in str(exc.error_message):
                    log.debug("status of %s is already %s", sha[:12], gl_state)
                    return
                raise

        with self._errors(f"setting the status of {sha[:12]} in {repo}"):
            self._retry(f"set status of {sha[:12]}", post)

    # ------------------------------------------------------------------ pushing
    def check_branch_allowed(self, repo: str, branch: str) -> None:
        """Raise SafetyError for a bad name, the default branch or a protected branch."""
        from cicd_orchestrator.ci.local.workflow import protected_match

        if not branch or branch.startswith(("+", "-", ":")) or ":" in branch or ".." in branch:
            raise SafetyError(f"refusing to push to the invalid branch name {branch!r}")
        if branch.startswith("refs/") or any(c in branch for c in " ~^?*[\\"):
            raise SafetyError(f"refusing to push to the invalid branch name {branch!r}")
        if branch == self.default_branch(repo):
            raise SafetyError(f"refusing to push to the default branch {branch!r} of {repo}")
        protected = self.protected_branches(repo)
        if protected_match(branch, [*protected, *self.protected_patterns]):
            raise SafetyError(
                f"refusing to push to the protected branch {branch!r} of {repo} "
                f"(protected: {', '.join(sorted({*protected, *self.protected_patterns}))})"
            )

    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        """Push HEAD of ``workdir`` to ``branch`` of ``repo`` over HTTPS: never forced, never
        to the default or a protected branch, never to the branch of a fork's merge request."""
        from cicd_orchestrator.ci.gitpush import head_sha, push_head

        self.count_call(repo)
        self.check_branch_allowed(repo, branch)
        fork = self.fork_merge_request_for_branch(repo, branch)
        if fork is not None:
            raise SafetyError(
                f"refusing to push to {branch!r}: it is the branch of merge request !{fork} from "
                "a fork; the fix goes to a new merge request in the project"
            )
        sha = head_sha(workdir)
        remote = self.git_remote(repo)
        self._retry(
            f"push {branch} to {repo}", lambda: push_head(remote, workdir, repo, branch, sha)
        )
        return sha

    # ------------------------------------------------------------------ forks
    def _open_merge_requests(self, repo: str) -> list[Any]:
        return list(
            self._retry(
                f"list open merge requests of {repo}",
                lambda: list(
                    self._project(repo).mergerequests.list(
                        iterator=True, per_page=100, state="opened"
                    )
                ),
            )
        )

    @staticmethod
    def _is_fork(mr: Any) -> bool:
        data = mr.attributes
        return data.get("source_project_id") != data.get("target_project_id")

    def _branch_exists(self, repo: str, branch: str) -> bool:
        from gitlab.exceptions import GitlabGetError

        try:
            self._retry(f"get branch {branch}", lambda: self._project(repo).branches.get(branch))
        except GitlabGetError as exc:
            if exc.response_code == 404:
                return False
            raise
        return True

    def fork_merge_request_for_branch(self, repo: str, branch: str) -> int | None:
        """The open merge request from a fork whose source branch is ``branch`` (and that is
        no branch of ``repo`` itself), or None."""
        with self._errors(f"listing merge requests of {repo}"):
            forks = [
                mr
                for mr in self._open_merge_requests(repo)
                if mr.attributes.get("source_branch") == branch and self._is_fork(mr)
            ]
            if not forks or self._branch_exists(repo, branch):
                return None
        return int(forks[0].attributes["iid"])

    # ------------------------------------------------------------------ merge requests
    def open_or_update_pull_request(
        self, repo: str, head: str, base: str, title: str, body: str, marker: str
    ) -> PullRequest:
        """One merge request per marker. A ``base`` that is the source branch of a merge
        request from a fork is replaced by that merge request's target branch."""
        self.count_call(repo)
        if not marker:
            raise ProviderError("a merge request needs a marker (idempotency)")
        text = redact(_with_marker(body, marker))
        with self._errors(f"opening a merge request in {repo}"):
            return self._retry(
                f"open or update the merge request of {head} in {repo}",
                lambda: self._upsert_merge_request(repo, head, base, title, text, marker),
            )

    def _upsert_merge_request(
        self, repo: str, head: str, base: str, title: str, body: str, marker: str
    ) -> PullRequest:
        requests = self._open_merge_requests(repo)
        for mr in requests:
            if marker in str(mr.attributes.get("description") or ""):
                if mr.attributes.get("title") != title or mr.attributes.get("description") != body:
                    mr.title = title
                    mr.description = body
                    mr.save()
                log.info("updated merge request !%s of %s", mr.attributes["iid"], repo)
                return self._to_pull(mr.attributes)
        fork = next(
            (
                mr
                for mr in requests
                if mr.attributes.get("source_branch") == base and self._is_fork(mr)
            ),
            None,
        )
        if fork is not None and not self._branch_exists(repo, base):
            number = fork.attributes["iid"]
            base = str(fork.attributes["target_branch"])
            body = f"Fixes the CI of !{number} (from a fork), proposed to `{base}`.\n\n{body}"
        created = self._project(repo).mergerequests.create(
            {"source_branch": head, "target_branch": base, "title": title, "description": body}
        )
        log.info("opened merge request !%s of %s", created.attributes["iid"], repo)
        return self._to_pull(created.attributes)

    @staticmethod
    def _to_pull(data: Mapping[str, Any]) -> PullRequest:
        state = str(data.get("state") or "opened")
        return PullRequest(
            number=int(data["iid"]),
            head=str(data.get("source_branch") or ""),
            base=str(data.get("target_branch") or ""),
            title=str(data.get("title") or ""),
            url=str(data.get("web_url") or ""),
            state=_MR_STATES.get(state, state),
        )

    # ------------------------------------------------------------------ notes and issues
    def _notable(self, repo: str, number: int) -> Any:
        """The merge request ``!number``, or the issue ``#number`` when there is none."""
        from gitlab.exceptions import GitlabGetError

        project = self._project(repo)
        try:
            return project.mergerequests.get(int(number))
        except GitlabGetError as exc:
            if exc.response_code != 404:
                raise
        return project.issues.get(int(number))

    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        """One note per marker on merge request ``!number`` (or issue ``#number`` when the
        project has no such merge request), updated if it exists."""
        self.count_call(repo)
        if not marker:
            raise ProviderError("a note needs a marker (idempotency)")
        text = redact(_with_marker(body, marker))

        def upsert() -> None:
            target = self._notable(repo, number)
            for note in target.notes.list(iterator=True, per_page=100):
                data = note.attributes
                if not data.get("system") and marker in str(data.get("body") or ""):
                    if data.get("body") != text:
                        note.body = text
                        note.save()
                    return
            target.notes.create({"body": text})

        with self._errors(f"commenting on {number} of {repo}"):
            self._retry(f"comment on {number} of {repo}", upsert)

    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        self.count_call(repo)
        if not marker:
            raise ProviderError("an issue needs a marker (idempotency)")
        text = redact(_with_marker(body, marker))
        wanted = list(labels or [])

        def upsert() -> Issue:
            project = self._project(repo)
            for issue in project.issues.list(iterator=True, per_page=100, state="opened"):
                if marker in str(issue.attributes.get("description") or ""):
                    issue.title = title
                    issue.description = text
                    issue.labels = wanted
                    issue.save()
                    return self._to_issue(issue.attributes)
            created = project.issues.create({"title": title, "description": text, "labels": wanted})
            log.info("opened issue #%s of %s", created.attributes["iid"], repo)
            return self._to_issue(created.attributes)

        with self._errors(f"opening an issue in {repo}"):
            return self._retry(f"open or update the issue in {repo}", upsert)

    @staticmethod
    def _to_issue(data: Mapping[str, Any]) -> Issue:
        state = str(data.get("state") or "opened")
        return Issue(
            number=int(data["iid"]),
            title=str(data.get("title") or ""),
            url=str(data.get("web_url") or ""),
            state=_ISSUE_STATES.get(state, state),
        )
