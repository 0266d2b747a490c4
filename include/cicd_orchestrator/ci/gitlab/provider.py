"""The GitLab provider: GitLab CI pipelines and a GitLab project behind ``CIProvider``.

Everything goes through python-gitlab, with a client given to the provider, made from a URL
and an access token, or made at first use by a function it is given (``make_provider``
passes one that reads the configured connection).

How GitLab's objects map onto the interface (see ``mapping``):

- a repository is a project, named by its path (``group/project``); a run is a pipeline, its
  workflow path the project's CI configuration file (``ci_config_path``, ``.gitlab-ci.yml``
  when unset); a job is a job, its step its stage;
- attempts: GitLab retries a pipeline's failed jobs in the same pipeline, as new jobs with
  new ids (the old ones stay, as retried jobs), so ``rerun_failed_jobs`` (``POST
  /pipelines/:id/retry``) makes attempt 2, 3... of the same pipeline, as on GitHub;
- the combined state of a commit: its pipelines (by their jobs) and the commit statuses that
  are not jobs of those pipelines; the orchestrator's own status ``cicd-orchestrator`` does
  not count;
- pull requests are merge requests (``number`` = ``iid``), comments are notes (on the merge
  request ``!number``; on issue ``#number`` when there is no such merge request), issues are
  issues; every write carries the orchestrator's hidden marker and is looked up by it first,
  among the objects of the token's user (``GET /user``; ``ci.hosted``);
- owners: the assignees of a merge request or issue and the reviewers of a merge request
  are users by numeric id, found by username (``GET /users?username=``); who is already
  there stays, a username GitLab does not know is skipped (a warning in the log), and teams
  are not asked to review (GitLab has no team reviewers; see ``_set_owners``).

Each operation backs off on rate limits (429 with Retry-After or RateLimit-Reset), 5xx
answers, timeouts and truncated bodies, within a bound (``ratelimit``). git runs over HTTPS
with the token in its environment only (``ci.credentials``); pushes are never forced and
never go to the default branch, a branch the project protects (protected branches API,
wildcards included) or a configured protected pattern, nor to the branch of a merge request
from a fork.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Unpack

from cicd_orchestrator.ci.base import combine_states, run_state
from cicd_orchestrator.ci.gitlab import mapping
from cicd_orchestrator.ci.gitlab.auth import (
    DEFAULT_GIT_USERNAME,
    DEFAULT_TIMEOUT,
    install_log_filter,
    token_client,
    token_of,
)
from cicd_orchestrator.ci.gitlab.ratelimit import retry_delay
from cicd_orchestrator.ci.hosted import HostedOptions, HostedProvider, OpenPull, find_marked
from cicd_orchestrator.ci.retry import BackoffPolicy
from cicd_orchestrator.constants import OWN_STATUS_CONTEXTS, CombinedState, Conclusion
from cicd_orchestrator.exceptions import ProviderError, UnknownRunError
from cicd_orchestrator.models import Issue, PullRequest, RefStatus, Run

if TYPE_CHECKING:
    from gitlab import Gitlab
    from gitlab.v4.objects import Project

log = logging.getLogger(__name__)

_STATES = {CombinedState.SUCCESS: "success", CombinedState.FAILURE: "failed"}


class _TraceTooLargeError(ProviderError):
    """A job's trace is larger than the provider's limit."""


class GitLabOptions(HostedOptions["Gitlab"], total=False):
    """The settings of the GitLab provider (keyword arguments of its constructor)."""

    #: the GitLab instance (with ``token``; default: gitlab.com)
    url: str | None
    #: an access token to make the client with (and git's token)
    token: str | None
    #: at most this many pages of pipelines are listed
    max_pipeline_pages: int


class GitLabProvider(HostedProvider["Gitlab"]):
    """GitLab CI and a GitLab project (gitlab.com or a self-managed instance)."""

    name = "gitlab"
    service = "GitLab"
    status_key = "name"
    status_description_limit = 255
    unauthorized_hint = "(is the access token valid?)"
    pull_noun = "merge request"
    pull_sigil = "!"
    fork_fix = "a new merge request in the project"
    comment_noun = "note"
    comment_sigil = ""
    #: a note's limit (1,000,000 characters; descriptions take 1,048,576)
    body_limit = 1_000_000

    default_timeout = DEFAULT_TIMEOUT
    default_git_username = DEFAULT_GIT_USERNAME

    def __init__(self, client: Gitlab | None = None, **options: Unpack[GitLabOptions]) -> None:
        """``client``: a python-gitlab client (``auth.token_client``); without one, the
        options ``token`` (and ``url``) make one, or ``connect`` at first use. ``options``:
        see ``GitLabOptions``."""
        token = options.get("token")
        if token:
            timeout = options.get("timeout", self.default_timeout)
            options["connect"] = functools.partial(token_client, token, options.get("url"), timeout)
            options["git_token"] = token
        super().__init__(client, options)
        self.max_pipeline_pages = options.get("max_pipeline_pages", 5)
        self._project_cache: dict[str, dict[str, Any]] = {}
        self._source_branches: dict[tuple[str, int], str] = {}
        self._user_ids: dict[str, int] = {}
        install_log_filter()

    @property
    def url(self) -> str:
        return str(self.client.url).rstrip("/")

    def _retry_delay(self, exc: BaseException, attempt: int, policy: BackoffPolicy) -> float | None:
        getter = getattr(self.client, "last_error_headers", None)
        headers: Mapping[str, str] = getter() if callable(getter) else {}
        return retry_delay(exc, attempt, policy, headers)

    def _client_token(self) -> str:
        return token_of(self.client)

    def _client_error(self) -> type[Exception]:
        from gitlab.exceptions import GitlabError

        return GitlabError

    def _error_text(self, exc: Exception) -> str:
        return str(getattr(exc, "error_message", exc))

    # ------------------------------------------------------------------ the project
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
        return path.split("@", 1)[0] or mapping.DEFAULT_CI_CONFIG

    def _default_branch(self, repo: str) -> str:
        return str(self._project_data(repo).get("default_branch") or "main")

    def _clone_url(self, repo: str) -> str:
        return str(self._project_data(repo)["http_url_to_repo"])

    def _protected_names(self, repo: str) -> list[str]:
        """Branches (or wildcards such as ``release/*``) the project protects."""
        items = self._project(repo).protectedbranches.list(iterator=True)
        return [str(b.attributes["name"]) for b in items]

    def _get_branch(self, repo: str, branch: str) -> object:
        return self._project(repo).branches.get(branch)

    @staticmethod
    def _branch_sha_of(found: object) -> str:
        commit = getattr(found, "commit", None)
        return str(commit.get("id") or "") if isinstance(commit, dict) else ""

    def _own_login(self) -> str:
        """The token's user (a project or group token has a bot user of its own)."""
        data = self.client.http_get("/user")
        return str(data["username"]) if isinstance(data, dict) else ""

    # ------------------------------------------------------------------ runs
    def _to_run(self, repo: str, data: Mapping[str, Any]) -> Run:
        run = mapping.to_run(repo, data, self._workflow_path(repo))
        if run.pull_request_number is not None:
            # a merge request pipeline runs on refs/merge-requests/<iid>/...: its branch is
            # the merge request's source branch
            run.head_branch = self._source_branch(repo, run.pull_request_number)
        return run

    def _source_branch(self, repo: str, iid: int) -> str:
        """The source branch of merge request ``iid`` (asked once per provider)."""
        key = (repo, iid)
        if key not in self._source_branches:
            where = f"merge request !{iid} of {repo}"
            with self._errors(f"getting {where}"):
                pull = self._retry(f"get {where}", lambda: self._get_pull(repo, iid))
            self._source_branches[key] = pull.head
        return self._source_branches[key]

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

    def _failed_candidates(
        self, repo: str, branch: str, since_run_id: int, conclusions: frozenset[Conclusion]
    ) -> list[Run]:
        """Pipelines of the branch GitLab lists as ``failed`` (and ``canceled`` when cancelled
        runs count), each listing stopping at the cursor."""
        statuses = ["failed", "canceled"] if Conclusion.CANCELLED in conclusions else ["failed"]
        return [
            self._to_run(repo, p)
            for status in statuses
            for p in self._pipelines(
                repo, branch, None, status, lambda p: int(p["id"]) <= since_run_id
            )
            if int(p["id"]) > since_run_id
        ]

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
        instances = mapping.job_instances(jobs)
        latest = mapping.latest_attempt(instances)
        number = latest if attempt is None else int(attempt)
        if not 1 <= number <= latest:
            raise UnknownRunError(f"pipeline {run_id} of {repo} has no attempt {attempt}")
        run.run_attempt = number
        run.jobs = mapping.attempt_jobs(run, instances, number)
        if run.jobs:
            run.status, run.conclusion = mapping.combine_jobs(run.jobs)
        return run

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
        return mapping.latest_attempt(mapping.job_instances(self._pipeline_jobs(repo, run_id)))

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
        their jobs; the orchestrator's own statuses (``OWN_STATUS_CONTEXTS``) do not count."""
        self.count_call(repo)
        runs = [
            self.get_run(repo, int(pipeline["id"]))
            for pipeline in self._pipelines(repo, None, sha)
            if pipeline.get("source") != "external"  # commit statuses only: read below
        ]
        states = [run_state(run) for run in runs]
        job_ids = {j.id for run in runs for j in run.jobs}
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
        states += [
            mapping.status_state(entry)
            for entry in statuses
            if entry.get("name") not in OWN_STATUS_CONTEXTS
            and int(entry.get("id") or 0) not in job_ids
        ]
        return RefStatus(sha=sha, state=combine_states(states), runs=runs)

    def commit_author(self, repo: str, sha: str) -> str:
        self.count_call(repo)
        with self._errors(f"reading commit {sha[:12]} of {repo}", run=True):
            commit = self._retry(
                f"get commit {sha[:12]}", lambda: self._project(repo).commits.get(sha)
            )
        return str(commit.attributes.get("author_email") or "")

    def _status_value(self, state: CombinedState) -> str:
        return _STATES.get(state, "pending")

    def _post_status(self, repo: str, sha: str, body: dict[str, Any]) -> None:
        """GitLab refuses to set a status to the state it already has (400 "Cannot
        transition status"): that is success here."""
        from gitlab.exceptions import GitlabError

        try:
            self._project(repo).commits.get(sha, lazy=True).statuses.create(body)
        except GitlabError as exc:
            if exc.response_code == 400 and "transition" in str(exc.error_message):
                log.debug("status of %s is already %s", sha[:12], body["state"])
                return
            raise

    # ------------------------------------------------------------------ merge requests
    def _list_open_pulls(self, repo: str) -> list[OpenPull]:
        items = self._project(repo).mergerequests.list(iterator=True, per_page=100, state="opened")
        return [_open_pull(mr) for mr in items]

    def _get_pull(self, repo: str, number: int) -> OpenPull:
        return _open_pull(self._project(repo).mergerequests.get(int(number)))

    def _close_pull(self, repo: str, pull: OpenPull) -> None:
        mr = pull.raw
        mr.state_event = "close"
        mr.save()

    def _update_pull(
        self, repo: str, pull: OpenPull, title: str, body: str, draft: bool
    ) -> PullRequest:
        mr = pull.raw
        title = mapping.draft_title(title) if draft else title
        if mr.attributes.get("title") != title or mr.attributes.get("description") != body:
            mr.title = title
            mr.description = body
            mr.save()
        return mapping.to_pull(mr.attributes)

    def _mark_ready(self, repo: str, pull: OpenPull) -> PullRequest:
        """A merge request is ready once its title has no draft prefix (``Draft:``,
        ``[Draft]``, ``(Draft)``)."""
        mr = pull.raw
        title = str(mr.attributes.get("title") or "")
        ready = mapping.ready_title(title)
        if pull.state == "open" and ready != title:
            mr.title = ready
            mr.save()
        return mapping.to_pull(mr.attributes)

    def _create_pull(
        self, repo: str, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest:
        """A merge request; a draft is one whose title starts with ``Draft:``."""
        title = mapping.draft_title(title) if draft else title
        created = self._project(repo).mergerequests.create(
            {"source_branch": head, "target_branch": base, "title": title, "description": body}
        )
        return mapping.to_pull(created.attributes)

    # ------------------------------------------------------------------ owners
    def _user_id(self, username: str) -> int | None:
        """The numeric id of the user ``username`` (GitLab matches it whatever its case),
        or None when GitLab knows nobody of that name; found ids are kept."""
        key = username.casefold()
        if key not in self._user_ids:
            found = self.client.users.list(username=username)
            match = next(
                (u for u in found if str(u.attributes.get("username") or "").casefold() == key),
                None,
            )
            if match is None:
                return None
            self._user_ids[key] = int(match.attributes["id"])
        return self._user_ids[key]

    def _user_ids_of(self, usernames: list[str], role: str, where: str) -> list[int]:
        """The ids of ``usernames``, those GitLab does not know left out (with a warning)."""
        ids = []
        for name in dict.fromkeys(usernames):
            found = self._user_id(name)
            if found is None:
                log.warning("GitLab has no user %s: not made %s of %s", name, role, where)
            else:
                ids.append(found)
        return ids

    def _set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str],
        team_reviewers: list[str],
    ) -> None:
        """The assignees (``assignee_ids``) of merge request ``!number``, or of issue
        ``#number`` when the project has no such merge request (as ``_upsert_comment``
        decides), and the reviewers (``reviewer_ids``) of a merge request, added to those it
        has (GitLab replaces them: the ids sent are those it has, then the new ones, so an
        instance that keeps one assignee or reviewer keeps the one it had).

        Users are found by username (``GET /users?username=``); a username GitLab does not
        know is skipped with a warning, not an error. GitLab has no team reviewers: teams
        (``org/team``) are not asked to review, which the log notes. An issue has no
        reviewers: asking for some is a ProviderError (nothing is changed)."""
        from gitlab.v4.objects import ProjectMergeRequest

        target = self._notable(repo, number)
        pull = isinstance(target, ProjectMergeRequest)
        where = f"{'!' if pull else '#'}{number} of {repo}"
        if not pull and (reviewers or team_reviewers):
            raise ProviderError(f"{where} is an issue: it has no reviewers")
        if team_reviewers:
            log.warning(
                "GitLab has no team reviewers: %s not asked to review %s",
                ", ".join(team_reviewers),
                where,
            )
        wanted = {"assignee_ids": ("assignees", "an assignee", assignees)}
        if pull:
            wanted["reviewer_ids"] = ("reviewers", "a reviewer", reviewers)
        changed = False
        for param, (key, role, names) in wanted.items():
            have = [int(u["id"]) for u in target.attributes.get(key) or [] if u.get("id")]
            ids = list(dict.fromkeys([*have, *self._user_ids_of(names, role, where)]))
            setattr(target, param, ids)
            changed = changed or ids != have
        if changed:
            target.save()  # the answer's users replace the attributes
            now = {
                key: ", ".join(str(u.get("username")) for u in target.attributes.get(key) or [])
                for key, _, _ in wanted.values()
            }
            log.info("owners of %s: %s", where, now)

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

    def _upsert_comment(self, repo: str, number: int, text: str, marker: str) -> None:
        """One note per marker on merge request ``!number`` (or issue ``#number`` when the
        project has no such merge request); system notes do not count."""
        target = self._notable(repo, number)
        notes = target.notes.list(iterator=True, per_page=100)
        mine = (n for n in notes if self._mine(_author(n.attributes)))
        found = find_marked(mine, marker, _note_text)
        if found is None:
            target.notes.create({"body": text})
        elif found.attributes.get("body") != text:
            found.body = text
            found.save()

    def _upsert_issue(
        self, repo: str, title: str, text: str, marker: str, labels: list[str]
    ) -> Issue:
        project = self._project(repo)
        issues = project.issues.list(iterator=True, per_page=100, state="opened")
        mine = (i for i in issues if self._mine(_author(i.attributes)))
        found = find_marked(mine, marker, lambda i: str(i.attributes.get("description") or ""))
        if found is not None:
            found.title = title
            found.description = text
            found.labels = labels
            found.save()
            return mapping.to_issue(found.attributes)
        created = project.issues.create({"title": title, "description": text, "labels": labels})
        log.info("opened issue #%s of %s", created.attributes["iid"], repo)
        return mapping.to_issue(created.attributes)


def _note_text(note: Any) -> str:
    data = note.attributes
    return "" if data.get("system") else str(data.get("body") or "")


def _open_pull(mr: Any) -> OpenPull:
    data = mr.attributes
    return OpenPull(
        number=int(data["iid"]),
        head=str(data.get("source_branch") or ""),
        base=str(data.get("target_branch") or ""),
        body=str(data.get("description") or ""),
        fork=data.get("source_project_id") != data.get("target_project_id"),
        author=_author(data),
        state={"opened": "open"}.get(str(data.get("state")), str(data.get("state"))),
        raw=mr,
        head_sha=str(data.get("sha") or ""),
    )


def _author(data: Mapping[str, Any]) -> str:
    """The username of who wrote a merge request, note or issue."""
    return str((data.get("author") or {}).get("username") or "")
