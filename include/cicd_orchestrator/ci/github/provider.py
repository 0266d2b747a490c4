"""The GitHub provider: GitHub Actions runs and a GitHub repository behind ``CIProvider``.

Everything goes through PyGithub (its ``Requester`` for the Actions and status endpoints, its
objects for pull requests, issues and comments), authenticated from the Airflow connection
``github_default`` (``GithubHook``: a token, or a GitHub App installation; GitHub Enterprise
from the connection's host) or from an injected client.

- Reads are conditional (ETag / If-None-Match, cached per URL): polling a branch with no new
  failure is answered ``304 Not Modified``, which GitHub does not count.
- Each operation backs off on rate limits (Retry-After, X-RateLimit-Reset), 5xx answers,
  timeouts and truncated bodies, within a bound (``ratelimit``).
- Writes carry the orchestrator's hidden marker and are looked up by it first, so a retried
  task updates its pull request, comment or issue instead of duplicating it.
- git runs over HTTPS with the token in its environment only (``auth``); pushes are never
  forced and never go to the default branch, a protected branch or a fork.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlencode

from cicd_orchestrator.ci.base import CIProvider, GitRemote
from cicd_orchestrator.ci.github.archive import (
    ArchiveError,
    ArchiveLimits,
    copy_limited,
    extract_zip,
)
from cicd_orchestrator.ci.github.auth import (
    DEFAULT_GIT_USERNAME,
    DEFAULT_TIMEOUT,
    client_from_connection,
    git_credential_env,
    install_log_filter,
    token_of,
)
from cicd_orchestrator.ci.github.ratelimit import BackoffPolicy, EtagCache, with_backoff
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import (
    ProviderError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
    WorkflowError,
)
from cicd_orchestrator.models import Issue, Job, PullRequest, RefStatus, Run, Step
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    from github import Github
    from github.PullRequest import PullRequest as GhPullRequest
    from github.Repository import Repository

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PROTECTED_PATTERNS = ["main", "master", "release/*", "production"]
_BAD = {Conclusion.FAILURE, Conclusion.TIMED_OUT, Conclusion.CANCELLED}
_CONCLUSIONS = {
    "startup_failure": Conclusion.FAILURE,
    "action_required": Conclusion.FAILURE,
    "stale": Conclusion.NEUTRAL,
}
_QUEUED = {"queued", "waiting", "requested", "pending"}


def _status(value: Any) -> RunStatus:
    if value in _QUEUED:
        return RunStatus.QUEUED
    try:
        return RunStatus(value)
    except ValueError:
        return RunStatus.IN_PROGRESS


def _conclusion(value: Any) -> Conclusion | None:
    if not value:
        return None
    try:
        return Conclusion(value)
    except ValueError:
        return _CONCLUSIONS.get(str(value), Conclusion.NEUTRAL)


_MEMBER_INDEX = re.compile(r"^\d+_")


def _archive_member_of(member: str, job_name: str) -> bool:
    """Whether ``member`` of a run's log archive is the whole log of the job ``job_name``
    (``<n>_<job name>.txt`` at the top; GitHub replaces some characters of the name)."""
    if "/" in member or not member.endswith(".txt") or not _MEMBER_INDEX.match(member):
        return False
    stem = _MEMBER_INDEX.sub("", member[: -len(".txt")], count=1)

    def key(text: str) -> str:
        return "".join(c for c in text.lower() if c.isalnum())

    return bool(key(job_name)) and key(stem) == key(job_name)


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


class GitHubProvider(CIProvider):
    """GitHub Actions and a GitHub repository (github.com or GitHub Enterprise)."""

    name = "github"

    def __init__(
        self,
        conn_id: str = "github_default",
        *,
        client: Github | None = None,
        git_token: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        backoff: BackoffPolicy | None = None,
        etag_cache: EtagCache | None = None,
        max_run_pages: int = 5,
        max_log_bytes: int = 256 * 1024 * 1024,
        archive_limits: ArchiveLimits | None = None,
        protected_patterns: list[str] | None = None,
        git_username: str = DEFAULT_GIT_USERNAME,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.conn_id = conn_id
        self._client = client
        self._git_token = git_token
        self._base_url = base_url
        self.timeout = timeout
        self.backoff = backoff or BackoffPolicy()
        self.etags = etag_cache or EtagCache()
        self.max_run_pages = max_run_pages
        self.max_log_bytes = max_log_bytes
        self.archive_limits = archive_limits or ArchiveLimits()
        self.protected_patterns = list(
            DEFAULT_PROTECTED_PATTERNS if protected_patterns is None else protected_patterns
        )
        self.git_username = git_username
        self._sleep = sleep
        self.calls = 0
        self.requests = 0
        self.not_modified = 0
        self.rate_remaining: int | None = None
        self._repo_cache: dict[str, dict[str, Any]] = {}
        self._needs_cache: dict[tuple[str, str, str], dict[str, list[str]]] = {}
        register_secret(git_token)
        install_log_filter()

    # ------------------------------------------------------------------ client
    @property
    def client(self) -> Github:
        if self._client is None:
            self._client = client_from_connection(self.conn_id, self.timeout)
        return self._client

    @property
    def base_url(self) -> str:
        return (self._base_url or self.client.requester.base_url).rstrip("/")

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        return with_backoff(fn, self.backoff, what, sleep=self._sleep)

    def _raw(
        self,
        verb: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], Any]:
        """One request through PyGithub's requester: (status, headers, JSON or None)."""
        requester = self.client.requester
        status, resp_headers, output = requester.requestJson(
            verb, path, params or None, dict(headers or {}), body
        )
        self.requests += 1
        remaining = resp_headers.get("x-ratelimit-remaining")
        if remaining is not None and str(remaining).isdigit():
            self.rate_remaining = int(remaining)
        data: Any = None
        if output:
            try:
                data = json.loads(output)
            except ValueError:
                if status < 300:
                    raise
                data = {"message": str(output)[:200]}
        if status >= 400:
            raise requester.createException(status, resp_headers, data)
        return status, resp_headers, data

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """A conditional GET: the cached body when GitHub answers 304 Not Modified."""
        key = f"{path}?{urlencode(sorted((params or {}).items()))}"
        cached = self.etags.get(key)
        headers = {"If-None-Match": cached.etag} if cached else {}
        status, resp_headers, data = self._raw("GET", path, params, headers=headers)
        if status == 304 and cached is not None:
            self.not_modified += 1
            self.etags.hit()
            return cached.data, resp_headers
        etag = resp_headers.get("etag")
        if etag and data is not None:
            self.etags.put(key, etag, data)
        return data, resp_headers

    def _get_paged(
        self,
        path: str,
        key: str | None,
        params: dict[str, Any] | None = None,
        max_pages: int = 10,
        stop: Callable[[list[Any]], bool] | None = None,
    ) -> list[Any]:
        items: list[Any] = []
        for page in range(1, max_pages + 1):
            query = {**(params or {}), "per_page": 100, "page": page}
            data, headers = self._get(path, query)
            chunk = list((data or {}).get(key, []) if key else (data or []))
            items.extend(chunk)
            if 'rel="next"' not in str(headers.get("link", "")) or (stop and stop(chunk)):
                break
        return items

    @contextlib.contextmanager
    def _errors(self, what: str, repo: str, *, run: bool = False) -> Iterator[None]:
        """GithubException and transport errors as ProviderError (redacted)."""
        from github import GithubException

        try:
            yield
        except GithubException as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            message = exc.message or data.get("message")
            detail = redact(f"{what}: GitHub answered {exc.status}: {message or exc}")
            if exc.status == 404:
                cls = UnknownRunError if run else UnknownRepositoryError
                raise cls(detail) from None
            raise ProviderError(detail) from None

    def _repo(self, repo: str) -> Repository:
        """PyGithub's Repository, built from the (conditionally fetched) repository data."""
        from github.Repository import Repository

        data = self._retry(f"get {repo}", lambda: self._repo_data(repo))
        return Repository(self.client.requester, {}, data, completed=True)

    def _repo_data(self, repo: str) -> dict[str, Any]:
        if repo not in self._repo_cache:
            data, _ = self._retry(f"get {repo}", lambda: self._get(f"/repos/{repo}"))
            self._repo_cache[repo] = data
        return self._repo_cache[repo]

    # ------------------------------------------------------------------ repositories
    def default_branch(self, repo: str) -> str:
        self.count_call(repo)
        with self._errors(f"reading {repo}", repo):
            return str(self._repo_data(repo)["default_branch"])

    def protected_branches(self, repo: str) -> list[str]:
        """Branches GitHub protects (branch protection rules), plus the default branch."""
        self.count_call(repo)
        with self._errors(f"listing protected branches of {repo}", repo):
            branches = self._retry(
                f"list protected branches of {repo}",
                lambda: self._get_paged(
                    f"/repos/{repo}/branches", None, {"protected": "true"}, max_pages=5
                ),
            )
            default = str(self._repo_data(repo)["default_branch"])
        names = [str(b["name"]) for b in branches if b.get("protected", True)]
        return names if default in names else [*names, default]

    def git_remote(self, repo: str) -> GitRemote:
        self.count_call(repo)
        with self._errors(f"reading {repo}", repo):
            url = str(self._repo_data(repo)["clone_url"])
        token = self._git_token or token_of(self.client)
        return GitRemote(url=url, env=git_credential_env(token, self.git_username))

    # ------------------------------------------------------------------ runs
    def _to_run(self, repo: str, data: dict[str, Any]) -> Run:
        path = str(data.get("path") or "").split("@", 1)[0]
        return Run(
            id=int(data["id"]),
            repository=repo,
            workflow=str(data.get("name") or path),
            workflow_path=path,
            head_branch=str(data.get("head_branch") or ""),
            head_sha=str(data.get("head_sha") or ""),
            event=str(data.get("event") or ""),
            status=_status(data.get("status")),
            conclusion=_conclusion(data.get("conclusion")),
            run_number=int(data.get("run_number") or 0),
            run_attempt=int(data.get("run_attempt") or 1),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            html_url=str(data.get("html_url") or ""),
        )

    def _to_job(self, run: Run, data: dict[str, Any], needs: dict[str, list[str]]) -> Job:
        steps = [
            Step(
                number=int(s.get("number") or i + 1),
                name=str(s.get("name") or ""),
                status=_status(s.get("status")),
                conclusion=_conclusion(s.get("conclusion")),
                started_at=s.get("started_at"),
                completed_at=s.get("completed_at"),
            )
            for i, s in enumerate(data.get("steps") or [])
        ]
        name = str(data.get("name") or "")
        return Job(
            id=int(data["id"]),
            run_id=run.id,
            name=name,
            status=_status(data.get("status")),
            conclusion=_conclusion(data.get("conclusion")),
            run_attempt=int(data.get("run_attempt") or run.run_attempt),
            steps=steps,
            needs=list(needs.get(name, [])),
            started_at=data.get("started_at"),
            completed_at=data.get("completed_at"),
            html_url=str(data.get("html_url") or ""),
        )

    def list_runs(
        self, repo: str, branch: str | None = None, head_sha: str | None = None
    ) -> list[Run]:
        self.count_call(repo)
        return self._list_runs(repo, branch, head_sha)

    def _list_runs(
        self,
        repo: str,
        branch: str | None,
        head_sha: str | None,
        stop: Callable[[list[Any]], bool] | None = None,
    ) -> list[Run]:
        params: dict[str, Any] = {}
        if branch:
            params["branch"] = branch
        if head_sha:
            params["head_sha"] = head_sha
        with self._errors(f"listing the runs of {repo}", repo):
            items = self._retry(
                f"list runs of {repo}",
                lambda: self._get_paged(
                    f"/repos/{repo}/actions/runs",
                    "workflow_runs",
                    params,
                    self.max_run_pages,
                    stop,
                ),
            )
        runs = [self._to_run(repo, item) for item in items]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def list_failed_runs(self, repo: str, branch: str, since_run_id: int = 0) -> list[Run]:
        """Completed failed runs above the cursor; stops paging at the cursor, so a sweep of
        a branch with nothing new costs one conditional request (a free 304)."""
        self.count_call(repo)
        bad = {Conclusion.FAILURE, Conclusion.TIMED_OUT}

        def reached_cursor(chunk: list[Any]) -> bool:
            return any(int(item["id"]) <= since_run_id for item in chunk)

        return [
            r
            for r in self._list_runs(repo, branch, None, reached_cursor)
            if r.id > since_run_id and r.status is RunStatus.COMPLETED and r.conclusion in bad
        ]

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        self.count_call(repo)
        base = f"/repos/{repo}/actions/runs/{int(run_id)}"
        with self._errors(f"reading run {run_id} of {repo}", repo, run=True):
            path = f"{base}/attempts/{int(attempt)}" if attempt else base
            data, _ = self._retry(f"get run {run_id} of {repo}", lambda: self._get(path))
            run = self._to_run(repo, data)
            if attempt:
                jobs_path, params = f"{base}/attempts/{run.run_attempt}/jobs", {}
            else:
                jobs_path, params = f"{base}/jobs", {"filter": "latest"}
            jobs = self._retry(
                f"list jobs of run {run_id} of {repo}",
                lambda: self._get_paged(jobs_path, "jobs", params),
            )
        needs = self._workflow_needs(repo, run)
        run.jobs = [self._to_job(run, j, needs) for j in jobs]
        return run

    def _workflow_needs(self, repo: str, run: Run) -> dict[str, list[str]]:
        """Job name -> the jobs it needs, from the workflow file of the run's commit (GitHub's
        job payloads do not carry ``needs``)."""
        key = (repo, run.workflow_path, run.head_sha)
        if key in self._needs_cache:
            return self._needs_cache[key]
        needs: dict[str, list[str]] = {}
        if run.workflow_path and run.head_sha:
            try:
                from cicd_orchestrator.ci.local.workflow import expand_jobs, parse_workflow

                data, _ = self._retry(
                    f"get {run.workflow_path} of {repo}",
                    lambda: self._get(
                        f"/repos/{repo}/contents/{run.workflow_path}", {"ref": run.head_sha}
                    ),
                )
                text = base64.b64decode(str(data.get("content") or "")).decode("utf-8", "replace")
                for inst in expand_jobs(parse_workflow(text, run.workflow_path)):
                    needs[inst.name] = list(inst.spec.needs)
            except (ProviderError, WorkflowError, ValueError, KeyError) as exc:
                log.info("no job dependencies for run %s of %s: %s", run.id, repo, redact(str(exc)))
            except Exception as exc:  # a GithubException: the file is optional here
                log.info("no workflow file for run %s of %s: %s", run.id, repo, redact(str(exc)))
        self._needs_cache[key] = needs
        return needs

    # ------------------------------------------------------------------ logs
    def _download(self, path: str, what: str, limit: int) -> Path:
        """Follow the API's 302 to the download URL and stream the body into a temp file
        (the download URL is pre-signed: no credential is sent to it)."""
        import requests

        def fetch() -> Path:
            status, headers, _ = self._raw("GET", path)
            location = headers.get("location")
            if status not in (301, 302, 303, 307, 308) or not location:
                raise ProviderError(f"{what}: expected a redirect to the download, got {status}")
            fd, name = tempfile.mkstemp(prefix="cicd-gh-", suffix=".download")
            target = Path(name)
            try:
                with (
                    os.fdopen(fd, "wb") as out,
                    requests.get(location, stream=True, timeout=self.timeout) as resp,
                ):
                    resp.raise_for_status()
                    resp.raw.decode_content = True
                    copy_limited(resp.raw, out, limit, what)  # type: ignore[arg-type]
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            return target

        return self._retry(what, fetch)

    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        """The job's log; when GitHub has none for the job itself (404), the job's member of
        the run's log archive, extracted within the archive limits."""
        self.count_call(repo)
        what = f"log of job {job_id} of {repo}"
        try:
            with self._errors(what, repo, run=True):
                path = self._download(
                    f"/repos/{repo}/actions/jobs/{int(job_id)}/logs", what, self.max_log_bytes
                )
        except UnknownRunError as exc:
            path = self._job_log_from_archive(repo, int(job_id), str(exc))
        try:
            with open(path, "rb") as fh:
                yield fh
        finally:
            path.unlink(missing_ok=True)

    def _job_log_from_archive(self, repo: str, job_id: int, why: str) -> Path:
        """The job's member of its run's log archive, in a temporary file (the caller removes
        it). The archive names each job's whole log ``<n>_<job name>.txt``."""
        what = f"log of job {job_id} of {repo}"
        path = f"/repos/{repo}/actions/jobs/{job_id}"
        with self._errors(f"reading job {job_id} of {repo}", repo, run=True):
            data, _ = self._retry(f"get job {job_id} of {repo}", lambda: self._get(path))
        run_id, name = int(data["run_id"]), str(data.get("name") or "")
        log.info("%s: not available from the job (%s); trying the run's log archive", what, why)
        tmp = Path(tempfile.mkdtemp(prefix="cicd-gh-archive-"))
        try:
            try:
                files = self.run_log_archive(
                    repo, run_id, tmp, select=lambda member: _archive_member_of(member, name)
                )
            except ArchiveError as exc:
                raise ArchiveError(
                    f"{what}: the job's own log is not available and the log archive of run "
                    f"{run_id} was refused: {exc}"
                ) from None
            if not files:
                raise UnknownRunError(
                    f"{what}: not available from the job ({why}) nor in the log archive of "
                    f"run {run_id}"
                )
            fd, name_out = tempfile.mkstemp(prefix="cicd-gh-", suffix=".log")
            os.close(fd)
            shutil.move(str(files[0]), name_out)
            return Path(name_out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run_log_archive(
        self,
        repo: str,
        run_id: int,
        dest: str | Path,
        select: Callable[[str], bool] | None = None,
    ) -> list[Path]:
        """Download the run's log archive (a zip) and extract it (or the members ``select``
        accepts) into ``dest`` within the archive limits (a zip bomb or an oversized member
        is refused)."""
        self.count_call(repo)
        what = f"log archive of run {run_id} of {repo}"
        with self._errors(what, repo, run=True):
            path = self._download(
                f"/repos/{repo}/actions/runs/{int(run_id)}/logs",
                what,
                self.archive_limits.max_archive_bytes,
            )
        try:
            return extract_zip(path, dest, self.archive_limits, select)
        finally:
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ re-runs and status
    def rerun_failed_jobs(self, repo: str, run_id: int) -> int:
        from github import GithubException

        self.count_call(repo)
        base = f"/repos/{repo}/actions/runs/{int(run_id)}"
        with self._errors(f"re-running run {run_id} of {repo}", repo, run=True):
            before = self._retry(f"get run {run_id}", lambda: self._raw("GET", base)[2])
            attempt_before = int(before.get("run_attempt") or 1)
            try:
                self._retry(
                    f"re-run failed jobs of run {run_id} of {repo}",
                    lambda: self._raw("POST", f"{base}/rerun-failed-jobs"),
                )
            except GithubException as exc:
                # a retry after a lost answer: the re-run may already have started
                now = self._raw("GET", base)[2]
                if exc.status in (403, 409) and int(now.get("run_attempt") or 1) > attempt_before:
                    return int(now["run_attempt"])
                raise
            after = self._retry(f"get run {run_id}", lambda: self._raw("GET", base)[2])
        return max(int(after.get("run_attempt") or 1), attempt_before + 1)

    def ref_status(self, repo: str, sha: str) -> RefStatus:
        """Workflow runs, check runs and commit statuses of ``sha`` (the orchestrator's own
        context ``cicd-orchestrator`` does not count)."""
        self.count_call(repo)
        runs = self._list_runs(repo, None, sha)
        states: list[CombinedState] = []
        full: list[Run] = []
        for run in runs:
            if run.status is not RunStatus.COMPLETED:
                states.append(CombinedState.PENDING)
                full.append(run)
            elif run.conclusion in _BAD:
                states.append(CombinedState.FAILURE)
                full.append(self.get_run(repo, run.id))
            else:
                states.append(CombinedState.SUCCESS)
                full.append(run)
        with self._errors(f"reading the checks of {sha[:12]} in {repo}", repo):
            checks = self._retry(
                f"list check runs of {sha[:12]}",
                lambda: self._get_paged(f"/repos/{repo}/commits/{sha}/check-runs", "check_runs"),
            )
            combined, _ = self._retry(
                f"combined status of {sha[:12]}",
                lambda: self._get(f"/repos/{repo}/commits/{sha}/status"),
            )
        for check in checks:
            if check.get("name") == STATUS_CONTEXT:
                continue
            if check.get("status") != "completed":
                states.append(CombinedState.PENDING)
            elif _conclusion(check.get("conclusion")) in _BAD or check.get("conclusion") in (
                "startup_failure",
                "action_required",
            ):
                states.append(CombinedState.FAILURE)
            else:
                states.append(CombinedState.SUCCESS)
        for status in (combined or {}).get("statuses") or []:
            if status.get("context") == STATUS_CONTEXT:
                continue
            state = status.get("state")
            states.append(
                CombinedState.FAILURE
                if state in ("failure", "error")
                else CombinedState.PENDING
                if state == "pending"
                else CombinedState.SUCCESS
            )
        return RefStatus(sha=sha, state=_combine(states), runs=full)

    def set_commit_status(
        self, repo: str, sha: str, state: CombinedState, description: str, target_url: str = ""
    ) -> None:
        self.count_call(repo)
        value = CombinedState(state)
        gh_state = "pending" if value is CombinedState.NONE else value.value
        body: dict[str, Any] = {
            "state": gh_state,
            "context": STATUS_CONTEXT,
            "description": redact(description)[:140],
        }
        if target_url:
            body["target_url"] = target_url
        with self._errors(f"setting the status of {sha[:12]} in {repo}", repo):
            self._retry(
                f"set status of {sha[:12]}",
                lambda: self._raw("POST", f"/repos/{repo}/statuses/{sha}", body=body),
            )

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
        if branch in protected or protected_match(branch, self.protected_patterns):
            raise SafetyError(
                f"refusing to push to the protected branch {branch!r} of {repo} "
                f"(protected: {', '.join(sorted({*protected, *self.protected_patterns}))})"
            )

    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        """Push HEAD of ``workdir`` to ``branch`` of ``repo`` over HTTPS: never forced, never
        to the default or a protected branch, never to a fork's branch."""
        from cicd_orchestrator.ci.gitpush import head_sha, push_head

        self.count_call(repo)
        self.check_branch_allowed(repo, branch)
        fork = self.fork_pull_for_branch(repo, branch)
        if fork is not None:
            raise SafetyError(
                f"refusing to push to {branch!r}: it is the branch of pull request #{fork} from "
                "a fork; the fix goes to a new pull request in the base repository"
            )
        sha = head_sha(workdir)
        remote = self.git_remote(repo)
        self._retry(
            f"push {branch} to {repo}", lambda: push_head(remote, workdir, repo, branch, sha)
        )
        return sha

    # ------------------------------------------------------------------ forks
    def _open_pulls(self, repo: str) -> list[dict[str, Any]]:
        return list(
            self._retry(
                f"list open pull requests of {repo}",
                lambda: self._get_paged(f"/repos/{repo}/pulls", None, {"state": "open"}),
            )
        )

    @staticmethod
    def _is_fork(repo: str, pull: dict[str, Any]) -> bool:
        head_repo = (pull.get("head") or {}).get("repo")
        if not head_repo:
            return True  # the fork was deleted
        return str(head_repo.get("full_name", "")).lower() != repo.lower()

    def is_fork_pr(self, repo: str, number: int) -> bool:
        """Whether pull request ``number`` of ``repo`` comes from a fork."""
        self.count_call(repo)
        with self._errors(f"reading pull request #{number} of {repo}", repo):
            data, _ = self._retry(
                f"get pull request #{number}", lambda: self._get(f"/repos/{repo}/pulls/{number}")
            )
        return self._is_fork(repo, data)

    def fork_pull_for_branch(self, repo: str, branch: str) -> int | None:
        """The open pull request from a fork whose head branch is ``branch`` (and that is no
        branch of ``repo`` itself), or None."""
        with self._errors(f"listing pull requests of {repo}", repo):
            pulls = [
                p
                for p in self._open_pulls(repo)
                if (p.get("head") or {}).get("ref") == branch and self._is_fork(repo, p)
            ]
            if not pulls or self._branch_exists(repo, branch):
                return None
        return int(pulls[0]["number"])

    def _branch_exists(self, repo: str, branch: str) -> bool:
        from github import GithubException

        try:
            self._retry(
                f"get branch {branch}", lambda: self._get(f"/repos/{repo}/branches/{branch}")
            )
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ pull requests
    def open_or_update_pull_request(
        self, repo: str, head: str, base: str, title: str, body: str, marker: str
    ) -> PullRequest:
        """One pull request per marker. A ``base`` that is the branch of a pull request from a
        fork is replaced by that pull request's base: the fix goes to the base repository."""
        self.count_call(repo)
        if not marker:
            raise ProviderError("a pull request needs a marker (idempotency)")
        text = _with_marker(body, marker)
        with self._errors(f"opening a pull request in {repo}", repo):
            return self._retry(
                f"open or update the pull request of {head} in {repo}",
                lambda: self._upsert_pull(repo, head, base, title, text, marker),
            )

    def _upsert_pull(
        self, repo: str, head: str, base: str, title: str, body: str, marker: str
    ) -> PullRequest:
        gh_repo = self._repo(repo)
        pulls = self._open_pulls(repo)
        for data in pulls:
            if marker in str(data.get("body") or ""):
                pull = gh_repo.get_pull(int(data["number"]))
                pull.edit(title=title, body=body)
                log.info("updated pull request #%s of %s", pull.number, repo)
                return self._to_pull(pull)
        fork = next(
            (
                p
                for p in pulls
                if (p.get("head") or {}).get("ref") == base and self._is_fork(repo, p)
            ),
            None,
        )
        if fork is not None and not self._branch_exists(repo, base):
            number = fork["number"]
            base = str(fork["base"]["ref"])
            body = f"Fixes the CI of #{number} (from a fork), proposed to `{base}`.\n\n{body}"
        pull = gh_repo.create_pull(base=base, head=head, title=title, body=body)
        log.info("opened pull request #%s of %s", pull.number, repo)
        return self._to_pull(pull)

    @staticmethod
    def _to_pull(pull: GhPullRequest) -> PullRequest:
        return PullRequest(
            number=int(pull.number),
            head=str(pull.head.ref),
            base=str(pull.base.ref),
            title=str(pull.title),
            url=str(pull.html_url),
            state=str(pull.state),
        )

    # ------------------------------------------------------------------ comments and issues
    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        self.count_call(repo)
        if not marker:
            raise ProviderError("a comment needs a marker (idempotency)")
        text = redact(_with_marker(body, marker))

        def upsert() -> None:
            issue = self._repo(repo).get_issue(int(number))
            for existing in issue.get_comments():
                if marker in (existing.body or ""):
                    if existing.body != text:
                        existing.edit(text)
                    return
            issue.create_comment(text)

        with self._errors(f"commenting on #{number} of {repo}", repo):
            self._retry(f"comment on #{number} of {repo}", upsert)

    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        self.count_call(repo)
        if not marker:
            raise ProviderError("an issue needs a marker (idempotency)")
        text = redact(_with_marker(body, marker))
        wanted = list(labels or [])

        def upsert() -> Issue:
            gh_repo = self._repo(repo)
            for issue in gh_repo.get_issues(state="open"):
                if issue.pull_request is None and marker in (issue.body or ""):
                    issue.edit(title=title, body=text, labels=wanted)
                    return Issue(issue.number, issue.title, issue.html_url, issue.state)
            created = gh_repo.create_issue(title=title, body=text, labels=wanted)
            log.info("opened issue #%s of %s", created.number, repo)
            return Issue(created.number, created.title, created.html_url, created.state)

        with self._errors(f"opening an issue in {repo}", repo):
            return self._retry(f"open or update the issue in {repo}", upsert)
