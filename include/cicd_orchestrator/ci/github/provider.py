"""The GitHub provider: GitHub Actions runs and a GitHub repository behind ``CIProvider``.

Everything goes through PyGithub (its ``Requester`` for the Actions and status endpoints, see
``rest``; its objects for pull requests, issues and comments), with a client given to the
provider or made at first use by a function it is given (``make_provider`` passes one that
reads the configured connection: a token, or a GitHub App installation; GitHub Enterprise
from the connection's host).

- Reads are conditional (ETag / If-None-Match, cached per URL): polling a branch with no new
  failure is answered ``304 Not Modified``, which GitHub does not count.
- Each operation backs off on rate limits (Retry-After, X-RateLimit-Reset), 5xx answers,
  timeouts and truncated bodies, within a bound (``ratelimit``).
- Writes carry the orchestrator's hidden marker and are looked up by it first, so a retried
  task updates its pull request, comment or issue instead of duplicating it; only what the
  provider's own user wrote is looked at (``ci.hosted``). That user is the token's (``GET
  /user``), or for a GitHub App installation the app's bot (``<slug>[bot]``, from ``GET
  /app`` with the app's JWT), or the option ``bot_login``.
- git runs over HTTPS with the token in its environment only (``ci.credentials``); pushes are
  never forced and never go to the default branch, a protected branch or a fork.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Unpack

from cicd_orchestrator.ci.base import combine_states, run_state
from cicd_orchestrator.ci.github import mapping
from cicd_orchestrator.ci.github.archive import ArchiveError, ArchiveLimits, extract_zip
from cicd_orchestrator.ci.github.rest import GitHubOptions, GitHubRest
from cicd_orchestrator.ci.hosted import OpenPull, find_marked
from cicd_orchestrator.ci.retry import status_of
from cicd_orchestrator.constants import OWN_STATUS_CONTEXTS, CombinedState, Conclusion
from cicd_orchestrator.exceptions import ProviderError, UnknownRunError, WorkflowError
from cicd_orchestrator.models import Issue, PullRequest, RefStatus, Run
from cicd_orchestrator.redact import redact

if TYPE_CHECKING:
    from github import Github

log = logging.getLogger(__name__)


class GitHubProvider(GitHubRest):
    """GitHub Actions and a GitHub repository (github.com or GitHub Enterprise)."""

    name = "github"
    redacts_pull_body = False
    fork_fix = "a new pull request in the base repository"

    def __init__(self, client: Github | None = None, **options: Unpack[GitHubOptions]) -> None:
        """``client``: a PyGithub client (``auth.token_client``); without one, the option
        ``connect`` makes one at first use. ``options``: see ``GitHubOptions``."""
        super().__init__(client, options)
        self.max_run_pages = options.get("max_run_pages", 5)
        self.archive_limits = options.get("archive_limits") or ArchiveLimits()
        self._needs_cache: dict[tuple[str, str, str], dict[str, list[str]]] = {}

    # ------------------------------------------------------------------ repositories
    def _protected_names(self, repo: str) -> list[str]:
        """Branches GitHub protects (branch protection rules)."""
        items = self._get_paged(f"/repos/{repo}/branches", None, {"protected": "true"}, 5)
        return [str(b["name"]) for b in items if b.get("protected", True)]

    def _get_branch(self, repo: str, branch: str) -> object:
        return self._get(f"/repos/{repo}/branches/{branch}")

    @staticmethod
    def _branch_sha_of(found: object) -> str:
        data = found[0] if isinstance(found, tuple) else found
        commit = data.get("commit") if isinstance(data, dict) else None
        return str(commit.get("sha") or "") if isinstance(commit, dict) else ""

    def _own_login(self) -> str:
        """The token's user; an installation token has none (403): its app's bot."""
        from github import GithubException

        try:
            data, _ = self._get("/user")
        except GithubException as exc:
            if exc.status != 403:
                raise
            return self._app_login()
        return str(data["login"])

    def _app_login(self) -> str:
        from github.Auth import AppInstallationAuth

        auth = self.client.requester.auth
        if not isinstance(auth, AppInstallationAuth):
            raise ProviderError(
                "GitHub does not say who the token is (GET /user is refused): give the "
                "provider its bot_login"
            )
        _, data = auth.requester.requestJsonAndCheck("GET", "/app")
        return f"{data['slug']}[bot]"

    # ------------------------------------------------------------------ runs
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
        params = {k: v for k, v in {"branch": branch, "head_sha": head_sha}.items() if v}
        with self._errors(f"listing the runs of {repo}"):
            items = self._retry(
                f"list runs of {repo}",
                lambda: self._get_paged(
                    f"/repos/{repo}/actions/runs", "workflow_runs", params, self.max_run_pages, stop
                ),
            )
        runs = [mapping.to_run(repo, item) for item in items]
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def _failed_candidates(
        self, repo: str, branch: str, since_run_id: int, conclusions: frozenset[Conclusion]
    ) -> list[Run]:
        """The branch's runs down to the cursor: paging stops there, so a sweep of a branch
        with nothing new costs one conditional request (a free 304)."""

        def reached_cursor(chunk: list[Any]) -> bool:
            return any(int(item["id"]) <= since_run_id for item in chunk)

        return self._list_runs(repo, branch, None, reached_cursor)

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        self.count_call(repo)
        base = f"/repos/{repo}/actions/runs/{int(run_id)}"
        with self._errors(f"reading run {run_id} of {repo}", run=True):
            path = f"{base}/attempts/{int(attempt)}" if attempt else base
            data, _ = self._retry(f"get run {run_id} of {repo}", lambda: self._get(path))
            run = mapping.to_run(repo, data)
            if attempt:
                jobs_path, params = f"{base}/attempts/{run.run_attempt}/jobs", {}
            else:
                jobs_path, params = f"{base}/jobs", {"filter": "latest"}
            jobs = self._retry(
                f"list jobs of run {run_id} of {repo}",
                lambda: self._get_paged(jobs_path, "jobs", params),
            )
        needs = self._workflow_needs(repo, run)
        run.jobs = [mapping.to_job(run, j, needs) for j in jobs]
        return run

    def _workflow_needs(self, repo: str, run: Run) -> dict[str, list[str]]:
        """Job name -> the jobs it needs, from the workflow file of the run's commit (GitHub's
        job payloads do not carry ``needs``)."""
        key = (repo, run.workflow_path, run.head_sha)
        if key not in self._needs_cache:
            needs: dict[str, list[str]] = {}
            if run.workflow_path and run.head_sha:
                try:
                    needs = self._read_needs(repo, run)
                except (ProviderError, WorkflowError, ValueError, KeyError) as exc:
                    log.info(
                        "no job dependencies for run %s of %s: %s", run.id, repo, redact(str(exc))
                    )
                except Exception as exc:  # a GithubException: the file is optional here
                    log.info(
                        "no workflow file for run %s of %s: %s", run.id, repo, redact(str(exc))
                    )
            self._needs_cache[key] = needs
        return self._needs_cache[key]

    def _read_needs(self, repo: str, run: Run) -> dict[str, list[str]]:
        from cicd_orchestrator.actions.workflow import expand_jobs, parse_workflow

        data, _ = self._retry(
            f"get {run.workflow_path} of {repo}",
            lambda: self._get(f"/repos/{repo}/contents/{run.workflow_path}", {"ref": run.head_sha}),
        )
        text = base64.b64decode(str(data.get("content") or "")).decode("utf-8", "replace")
        workflow = parse_workflow(text, run.workflow_path)
        return {inst.name: list(inst.spec.needs) for inst in expand_jobs(workflow)}

    # ------------------------------------------------------------------ logs
    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        """The job's log; when GitHub has none for the job itself (404), the job's member of
        the run's log archive, extracted within the archive limits."""
        self.count_call(repo)
        what = f"log of job {job_id} of {repo}"
        try:
            with self._errors(what, run=True):
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
        with self._errors(f"reading job {job_id} of {repo}", run=True):
            data, _ = self._retry(f"get job {job_id} of {repo}", lambda: self._get(path))
        run_id, name = int(data["run_id"]), str(data.get("name") or "")
        log.info("%s: not available from the job (%s); trying the run's log archive", what, why)
        tmp = Path(tempfile.mkdtemp(prefix="cicd-gh-archive-"))
        try:
            try:
                files = self.run_log_archive(
                    repo, run_id, tmp, select=lambda m: mapping.archive_member_of(m, name)
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
        with self._errors(what, run=True):
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
        with self._errors(f"re-running run {run_id} of {repo}", run=True):
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
        contexts ``cicd-orchestrator`` and ``cicd-orchestrator/session`` do not count)."""
        self.count_call(repo)
        listed = self._list_runs(repo, None, sha)
        states = [run_state(run) for run in listed]
        runs = [
            self.get_run(repo, run.id) if state is CombinedState.FAILURE else run
            for run, state in zip(listed, states, strict=True)
        ]
        with self._errors(f"reading the checks of {sha[:12]} in {repo}"):
            checks = self._retry(
                f"list check runs of {sha[:12]}",
                lambda: self._get_paged(f"/repos/{repo}/commits/{sha}/check-runs", "check_runs"),
            )
            combined, _ = self._retry(
                f"combined status of {sha[:12]}",
                lambda: self._get(f"/repos/{repo}/commits/{sha}/status"),
            )
        states += [
            mapping.check_state(c) for c in checks if c.get("name") not in OWN_STATUS_CONTEXTS
        ]
        statuses = (combined or {}).get("statuses") or []
        states += [
            mapping.status_state(s) for s in statuses if s.get("context") not in OWN_STATUS_CONTEXTS
        ]
        return RefStatus(sha=sha, state=combine_states(states), runs=runs)

    def commit_author(self, repo: str, sha: str) -> str:
        self.count_call(repo)
        with self._errors(f"reading commit {sha[:12]} of {repo}", run=True):
            try:
                data, _ = self._retry(
                    f"get commit {sha[:12]}", lambda: self._get(f"/repos/{repo}/commits/{sha}")
                )
            except Exception as exc:
                if status_of(exc) == 422:  # "No commit found for SHA"
                    raise UnknownRunError(f"no commit {sha[:12]} in {repo}") from None
                raise
        return str(((data or {}).get("commit") or {}).get("author", {}).get("email") or "")

    def _status_value(self, state: CombinedState) -> str:
        return "pending" if state is CombinedState.NONE else state.value

    def _post_status(self, repo: str, sha: str, body: dict[str, Any]) -> None:
        self._raw("POST", f"/repos/{repo}/statuses/{sha}", body=body)

    def _set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str],
        team_reviewers: list[str],
    ) -> None:
        """Assignees through the issues API; reviewers (teams by their slug, of the
        repository's organisation) through the pull request's review requests."""
        if assignees:
            path = f"/repos/{repo}/issues/{int(number)}/assignees"
            self._raw("POST", path, body={"assignees": assignees})
        owner = repo.split("/")[0].casefold()
        slugs = [t.split("/", 1)[1] for t in team_reviewers if t.split("/")[0].casefold() == owner]
        if reviewers or slugs:
            body = {"reviewers": reviewers, "team_reviewers": slugs}
            self._raw("POST", f"/repos/{repo}/pulls/{int(number)}/requested_reviewers", body=body)

    # ------------------------------------------------------------------ forks
    def is_fork_pr(self, repo: str, number: int) -> bool:
        """Whether pull request ``number`` of ``repo`` comes from a fork."""
        self.count_call(repo)
        with self._errors(f"reading pull request #{number} of {repo}"):
            data, _ = self._retry(
                f"get pull request #{number}", lambda: self._get(f"/repos/{repo}/pulls/{number}")
            )
        return mapping.is_fork(repo, data)

    # ------------------------------------------------------------------ pull requests
    def _list_open_pulls(self, repo: str) -> list[OpenPull]:
        items = self._get_paged(f"/repos/{repo}/pulls", None, {"state": "open"})
        return [_open_pull(repo, p) for p in items]

    def _get_pull(self, repo: str, number: int) -> OpenPull:
        data, _ = self._get(f"/repos/{repo}/pulls/{int(number)}")
        return _open_pull(repo, data)

    def _close_pull(self, repo: str, pull: OpenPull) -> None:
        self._raw("PATCH", f"/repos/{repo}/pulls/{pull.number}", body={"state": "closed"})

    def _update_pull(
        self, repo: str, pull: OpenPull, title: str, body: str, draft: bool
    ) -> PullRequest:
        """Title and body (GitHub's REST API cannot make a pull request a draft afterwards:
        one is opened as a draft or not)."""
        found = self._repo(repo).get_pull(pull.number)
        found.edit(title=title, body=body)
        return mapping.to_pull(found)

    def _mark_ready(self, repo: str, pull: OpenPull) -> PullRequest:
        """GitHub's REST API cannot change a pull request's draft flag: PyGithub sends the
        GraphQL mutation ``markPullRequestReadyForReview``."""
        found = self._repo(repo).get_pull(pull.number)
        if found.draft and found.state == "open":
            found.mark_ready_for_review()
        return mapping.to_pull(found)

    def _create_pull(
        self, repo: str, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        created = self._repo(repo).create_pull(
            base=base, head=head, title=title, body=body, draft=draft
        )
        return mapping.to_pull(created)

    # ------------------------------------------------------------------ comments and issues
    def _upsert_comment(self, repo: str, number: int, text: str, marker: str) -> None:
        issue = self._repo(repo).get_issue(int(number))
        mine = (c for c in issue.get_comments() if self._mine(c.user.login if c.user else ""))
        existing = find_marked(mine, marker, lambda c: c.body or "")
        if existing is None:
            issue.create_comment(text)
        elif existing.body != text:
            existing.edit(text)

    def _upsert_issue(
        self, repo: str, title: str, text: str, marker: str, labels: list[str]
    ) -> Issue:
        gh_repo = self._repo(repo)
        issues = (
            i
            for i in gh_repo.get_issues(state="open")
            if i.pull_request is None and self._mine(i.user.login if i.user else "")
        )
        found = find_marked(issues, marker, lambda i: i.body or "")
        if found is not None:
            found.edit(title=title, body=text, labels=labels)
            return Issue(found.number, found.title, found.html_url, found.state)
        created = gh_repo.create_issue(title=title, body=text, labels=labels)
        log.info("opened issue #%s of %s", created.number, repo)
        return Issue(created.number, created.title, created.html_url, created.state)


def _open_pull(repo: str, p: dict[str, Any]) -> OpenPull:
    return OpenPull(
        number=int(p["number"]),
        head=str((p.get("head") or {}).get("ref") or ""),
        base=str((p.get("base") or {}).get("ref") or ""),
        body=str(p.get("body") or ""),
        fork=mapping.is_fork(repo, p),
        author=_login(p),
        state=str(p.get("state") or "open"),
        head_sha=str((p.get("head") or {}).get("sha") or ""),
    )


def _login(payload: dict[str, Any]) -> str:
    """The login of who opened a pull request or issue (a payload's ``user``)."""
    return str((payload.get("user") or {}).get("login") or "")
