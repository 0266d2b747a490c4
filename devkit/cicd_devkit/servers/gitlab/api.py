"""The REST v4 endpoints of the GitLab-compatible server, answered from a local provider.

Each handler takes the route's match (``project`` already resolved to the local repository),
the query and the JSON body and returns ``(status, payload, extra headers)``; the server adds
authentication, pagination headers, rate-limit headers and fault injection around them.

How the local provider's objects appear: a local workflow run is a pipeline (same id); each
attempt's jobs are its jobs, the jobs a re-run replaced staying as retried jobs
(``include_retried=true``); a job's stage is its depth in the local ``needs`` graph
(``stage-1``, ``stage-2``...); its ``failure_reason`` is ``script_failure`` for a failure,
``job_execution_timeout`` for a timeout, or what a test set (``ServerState.failure_reasons``);
its trace is rendered by ``trace``. Merge requests and issues are the local provider's pull
requests and issues (GitLab numbers them separately, here they share one sequence, which no
client can tell apart); notes are its comments. Their assignees and reviewers are the local
provider's, by username: ``assignee_ids`` and ``reviewer_ids`` (numeric ids of the users the
server knows, ``ServerState.users``; GET ``/users?username=``) replace them, as on GitLab, and
an id of nobody the server knows is ignored. External commit statuses are kept by the
server (GitLab refuses to set a status to the state it already has, so does the server) and
mirrored to the local provider; GitLab would also add them to the newest pipeline of the
commit as jobs of their own, which the server does not model.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cicd_devkit.servers.backend import Backend
from cicd_devkit.servers.gitlab.payloads import Payloads, gitlab_status, project_id, user_id
from cicd_devkit.servers.gitlab.trace import render_trace
from cicd_devkit.servers.rest import ApiError, Result, Route, RoutedApi
from cicd_orchestrator.actions.workflow import list_workflow_files
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import ProviderError, UnknownRepositoryError, UnknownRunError
from cicd_orchestrator.models import Job, Run

log = logging.getLogger(__name__)

PROJECT = r"/projects/(?P<project>[^/]+)"
#: the longest description (merge request, issue) and note GitLab takes
DESCRIPTION_LIMIT = 1_048_576
NOTE_LIMIT = 1_000_000

__all__ = ["Api", "ApiError", "ServerState"]
_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
#: the parameters that set a merge request's (an issue's) users, and where they are kept
_OWNER_KEYS = {"assignee_ids": "assignees", "reviewer_ids": "reviewers"}
_TO_LOCAL = {
    "pending": CombinedState.PENDING,
    "running": CombinedState.PENDING,
    "success": CombinedState.SUCCESS,
    "skipped": CombinedState.SUCCESS,
    "failed": CombinedState.FAILURE,
    "canceled": CombinedState.FAILURE,
}
_FROM_LOCAL = {
    CombinedState.PENDING: "pending",
    CombinedState.SUCCESS: "success",
    CombinedState.FAILURE: "failed",
    CombinedState.NONE: "pending",
}


@dataclass
class ForkSource:
    project: str
    branch: str
    sha: str


@dataclass
class ServerState:
    """What GitLab knows that the local provider does not: protected branches, failure
    reasons set by a test, merge requests from forks, the exact states of commit statuses,
    the users of the instance (by username)."""

    protected: dict[str, set[str]] = field(default_factory=dict)
    protect_default: bool = True
    failure_reasons: dict[tuple[str, int], str] = field(default_factory=dict)
    fork_sources: dict[tuple[str, int], ForkSource] = field(default_factory=dict)
    statuses: dict[tuple[str, str, str], str] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)

    def add_user(self, username: str) -> None:
        """A user of the instance (once: GitLab's usernames are case-insensitive)."""
        if all(known.casefold() != username.casefold() for known in self.users):
            self.users.add(username)


@dataclass
class _JobView:
    job: Job
    run: Run
    retried: bool


class Api(RoutedApi):
    """Route table and handlers."""

    GONE = "404 Not found"
    NO_ROUTE = "404 Not Found"
    WRONG_METHOD = "405"

    def __init__(self, local: LocalProvider, payloads: Payloads, state: ServerState) -> None:
        self.local = local
        self.backend = Backend(local)
        self.p = payloads
        self.state = state
        super().__init__()

    def table(self) -> list[Route]:
        pipes = f"{PROJECT}/pipelines"
        mrs = f"{PROJECT}/merge_requests"
        issues = f"{PROJECT}/issues"
        return [
            ("GET", "/user", self.get_user),
            ("GET", "/users", self.list_users),
            ("GET", PROJECT, self.get_project),
            ("GET", f"{PROJECT}/protected_branches", self.list_protected),
            ("GET", f"{PROJECT}/repository/branches/(?P<branch>[^/]+)", self.get_branch),
            ("GET", pipes, self.list_pipelines),
            ("GET", rf"{pipes}/(?P<pipeline>\d+)", self.get_pipeline),
            ("GET", rf"{pipes}/(?P<pipeline>\d+)/jobs", self.list_jobs),
            ("POST", rf"{pipes}/(?P<pipeline>\d+)/retry", self.retry_pipeline),
            ("GET", rf"{PROJECT}/jobs/(?P<job>\d+)", self.get_job),
            ("GET", rf"{PROJECT}/jobs/(?P<job>\d+)/trace", self.get_trace),
            ("GET", f"{PROJECT}/repository/commits/(?P<sha>[^/]+)", self.get_commit),
            ("GET", f"{PROJECT}/repository/commits/(?P<sha>[^/]+)/statuses", self.list_statuses),
            ("POST", f"{PROJECT}/statuses/(?P<sha>[^/]+)", self.create_status),
            ("GET", mrs, self.list_mrs),
            ("POST", mrs, self.create_mr),
            ("GET", rf"{mrs}/(?P<iid>\d+)", self.get_mr),
            ("PUT", rf"{mrs}/(?P<iid>\d+)", self.edit_mr),
            ("GET", rf"{mrs}/(?P<iid>\d+)/notes", self.list_mr_notes),
            ("POST", rf"{mrs}/(?P<iid>\d+)/notes", self.create_mr_note),
            ("PUT", rf"{mrs}/(?P<iid>\d+)/notes/(?P<nid>\d+)", self.edit_mr_note),
            ("GET", issues, self.list_issues),
            ("POST", issues, self.create_issue),
            ("GET", rf"{issues}/(?P<iid>\d+)", self.get_issue),
            ("PUT", rf"{issues}/(?P<iid>\d+)", self.edit_issue),
            ("GET", rf"{issues}/(?P<iid>\d+)/notes", self.list_issue_notes),
            ("POST", rf"{issues}/(?P<iid>\d+)/notes", self.create_issue_note),
            ("PUT", rf"{issues}/(?P<iid>\d+)/notes/(?P<nid>\d+)", self.edit_issue_note),
        ]

    def arguments(self, match: re.Match[str]) -> dict[str, Any]:
        """The route's groups, decoded; ``project`` resolved to the local repository."""
        args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        if "project" in args:
            args["repo"] = self.resolve(args.pop("project"))
        return args

    def body(self, body: Any) -> Any:
        return body if isinstance(body, dict) else {}

    def resolve(self, ident: str) -> str:
        """A project path or numeric id as the local repository's name."""
        if ident.isdigit():
            for repo in self.local.repositories():
                if project_id(repo) == int(ident):
                    return repo
            raise ApiError(404, "404 Project Not Found")
        try:
            self.local.repo_path(ident)
        except UnknownRepositoryError as exc:
            raise ApiError(404, "404 Project Not Found") from exc
        return ident

    # ------------------------------------------------------------------ projects, branches
    def get_user(self, user: str, **_: Any) -> Result:
        return 200, self.p.user(user), {}

    def list_users(self, query: dict[str, str], **_: Any) -> Result:
        """The users the server knows (``username``: the one of that name, whatever its
        case, or none)."""
        wanted = query.get("username")
        names = sorted(self.state.users, key=user_id)
        if wanted is not None:
            names = [n for n in names if n.casefold() == wanted.casefold()]
        return 200, self.p.users(names), {}

    def owners(self, body: dict[str, Any], params: tuple[str, ...]) -> dict[str, list[str]]:
        """The ``assignees`` (``reviewers``) that ``params`` (``assignee_ids``,
        ``reviewer_ids``) of ``body`` set: the usernames of the users the server knows, in
        the order given (an unknown id is left out; an empty list or ``0`` sets none)."""
        known = {user_id(name): name for name in self.state.users}
        changes: dict[str, list[str]] = {}
        for param in params:
            value = body.get(param)
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, int) or str(v).strip().isdigit() for v in values if v != ""):
                raise ApiError(400, f"400 Bad request - {param} is invalid")
            ids = [int(v) for v in values if v != ""]
            names = (known[i] for i in ids if i in known)
            changes[_OWNER_KEYS[param]] = list(dict.fromkeys(names))
        return changes

    def ci_config_path(self, repo: str) -> str:
        """The first workflow file of the default branch (the project's CI configuration)."""
        sha = self.backend.branches(repo).get(self.local._default_branch(repo))
        if not sha:
            return ""
        try:
            files = list_workflow_files(self.local.repo_path(repo), sha)
        except Exception:
            return ""
        return sorted(files)[0] if files else ""

    def get_project(self, repo: str, **_: Any) -> Result:
        default = self.local._default_branch(repo)
        return 200, self.p.project(repo, default, self.ci_config_path(repo)), {}

    def protected_names(self, repo: str) -> list[str]:
        names = set(self.state.protected.get(repo, set()))
        if self.state.protect_default:
            names.add(self.local._default_branch(repo))
        return sorted(names)

    def list_protected(self, repo: str, **_: Any) -> Result:
        names = self.protected_names(repo)
        return 200, [self.p.protected_branch(i + 1, n) for i, n in enumerate(names)], {}

    def get_branch(self, repo: str, branch: str, **_: Any) -> Result:
        from cicd_orchestrator.branches import matches

        sha = self.backend.branches(repo).get(branch)
        if sha is None:
            raise ApiError(404, "404 Branch Not Found")
        protected = matches(branch, self.protected_names(repo))
        default = branch == self.local._default_branch(repo)
        return 200, self.p.branch(repo, branch, sha, protected, default), {}

    # ------------------------------------------------------------------ pipelines and jobs
    def get_commit(self, repo: str, sha: str, **_: Any) -> Result:
        commit = self.backend.commit(repo, sha)
        if commit is None:
            raise ApiError(404, "404 Commit Not Found")
        return 200, self.p.commit(repo, commit), {}

    def list_pipelines(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        runs = self.local._list_runs(repo, query.get("ref"), query.get("sha"))
        out = []
        for run in runs:
            status = gitlab_status(run.status, run.conclusion)
            if query.get("status") and query["status"] != status:
                continue
            if query.get("source") and query["source"] != (run.event or "push"):
                continue
            out.append(self.p.pipeline(repo, run, status, basic=True))
        if query.get("sort") == "asc":
            out.reverse()
        return 200, out, {}

    def _run(self, repo: str, pipeline: str, attempt: int | None = None) -> Run:
        return self.local._get_run(repo, int(pipeline), attempt)

    def get_pipeline(self, repo: str, pipeline: str, **_: Any) -> Result:
        run = self._run(repo, pipeline)
        status = gitlab_status(run.status, run.conclusion)
        return 200, self.p.pipeline(repo, run, status), {}

    def job_views(self, repo: str, pipeline: str) -> list[_JobView]:
        """Every job of every attempt of a run (a carried-over job once), oldest first."""
        latest = self._run(repo, pipeline)
        current = {j.id for j in latest.jobs}
        seen: dict[int, _JobView] = {}
        for number in range(1, latest.run_attempt + 1):
            run = latest if number == latest.run_attempt else self._run(repo, pipeline, number)
            for job in run.jobs:
                seen[job.id] = _JobView(job, run, job.id not in current)
        return sorted(seen.values(), key=lambda v: v.job.id)

    @staticmethod
    def stages(jobs: list[Job]) -> dict[str, str]:
        """Job name -> ``stage-N``, N its depth in the ``needs`` graph."""
        depth: dict[str, int] = {}

        def of(job: Job, trail: frozenset[str]) -> int:
            if job.name in depth:
                return depth[job.name]
            needed = [
                j
                for j in jobs
                if j.name not in trail
                and any(j.name == n or j.name.startswith(f"{n} (") for n in job.needs)
            ]
            value = 1 + max((of(j, trail | {job.name}) for j in needed), default=-1)
            depth[job.name] = value
            return value

        return {j.name: f"stage-{of(j, frozenset()) + 1}" for j in jobs}

    def failure_reason(self, repo: str, job: Job, run: Run) -> str | None:
        found = self.state.failure_reasons.get((repo, job.id))
        if found:
            return found
        if job.conclusion is Conclusion.TIMED_OUT:
            return "job_execution_timeout"
        if job.conclusion is Conclusion.FAILURE:
            return "script_failure"
        return None

    def _job_status(self, repo: str, job: Job) -> str:
        if self.state.failure_reasons.get((repo, job.id)) and job.status is RunStatus.COMPLETED:
            return "failed"
        return gitlab_status(job.status, job.conclusion)

    def _job_payload(self, repo: str, view: _JobView, stages: dict[str, str]) -> dict[str, Any]:
        job, run = view.job, view.run
        reason = self.failure_reason(repo, job, run)
        status = self._job_status(repo, job)
        stage = stages.get(job.name, "stage-1")
        return self.p.job(repo, run, job, stage, reason, status, view.retried)

    def list_jobs(self, repo: str, pipeline: str, query: dict[str, str], **_: Any) -> Result:
        views = self.job_views(repo, pipeline)
        if str(query.get("include_retried", "")).lower() not in ("true", "1"):
            views = [v for v in views if not v.retried]
        stages = self.stages([v.job for v in views])
        out = [self._job_payload(repo, v, stages) for v in views]
        scope = query.get("scope[]") or query.get("scope")
        if scope:
            out = [j for j in out if j["status"] == scope]
        out.sort(key=lambda j: -int(j["id"]))  # GitLab lists the newest job first
        return 200, out, {}

    def _find_job(self, repo: str, job_id: int) -> tuple[_JobView, dict[str, str]]:
        for summary in self.local._list_runs(repo, None, None):
            views = self.job_views(repo, str(summary.id))
            for view in views:
                if view.job.id == job_id:
                    return view, self.stages([v.job for v in views])
        raise ApiError(404, "404 Not found")

    def get_job(self, repo: str, job: str, **_: Any) -> Result:
        view, stages = self._find_job(repo, int(job))
        return 200, self._job_payload(repo, view, stages), {}

    def trace_bytes(self, repo: str, job_id: int) -> bytes:
        view, _ = self._find_job(repo, job_id)
        with self.local.open_job_log(repo, job_id) as fh:
            text = fh.read().decode("utf-8", "replace")
        if not text and view.job.status is not RunStatus.COMPLETED:
            return b""
        reason = self.state.failure_reasons.get((repo, job_id))
        conclusion = Conclusion.FAILURE if reason else view.job.conclusion
        names = [s.name for s in view.job.steps]
        return render_trace(text, names, conclusion, reason).encode("utf-8")

    def get_trace(self, repo: str, job: str, **_: Any) -> Result:
        return 200, self.trace_bytes(repo, int(job)), {"Content-Type": "text/plain"}

    def retry_pipeline(self, repo: str, pipeline: str, **_: Any) -> Result:
        try:
            self.local._rerun(repo, int(pipeline), only_failed=True)
        except UnknownRunError:
            raise
        except ProviderError as exc:
            if "still" in str(exc):
                raise ApiError(400, "400 Bad request - pipeline is still running") from exc
            # no failed or cancelled job: GitLab answers with the pipeline, nothing retried
        run = self._run(repo, pipeline)
        return 201, self.p.pipeline(repo, run, gitlab_status(run.status, run.conclusion)), {}

    # ------------------------------------------------------------------ commit statuses
    def _status_entries(self, repo: str, sha: str) -> list[dict[str, Any]]:
        out = []
        for entry in self.local._statuses(repo, sha):
            exact = self.state.statuses.get((repo, sha, entry.context))
            out.append(
                {
                    "id": 5_000_000 + zlib.crc32(f"{sha}:{entry.context}".encode()) % 1_000_000,
                    "sha": sha,
                    "ref": None,
                    "status": exact or _FROM_LOCAL[entry.state],
                    "name": entry.context,
                    "description": entry.description,
                    "target_url": entry.target_url,
                    "created_at": entry.created_at,
                }
            )
        return out

    def list_statuses(self, repo: str, sha: str, query: dict[str, str], **_: Any) -> Result:
        """Jobs of the commit's pipelines and the external statuses, as GitLab lists them."""
        out: list[dict[str, Any]] = []
        for summary in self.local._list_runs(repo, None, sha):
            views = [v for v in self.job_views(repo, str(summary.id)) if not v.retried]
            for view in views:
                out.append(
                    {
                        "id": view.job.id,
                        "sha": sha,
                        "ref": view.run.head_branch,
                        "status": self._job_status(repo, view.job),
                        "name": view.job.name,
                        "description": None,
                        "target_url": f"{self.p.web_url}/{repo}/-/jobs/{view.job.id}",
                        "created_at": view.job.started_at or view.run.created_at,
                    }
                )
        out.extend(self._status_entries(repo, sha))
        if query.get("name"):
            out = [s for s in out if s["name"] == query["name"]]
        return 200, [self.p.commit_status(repo, s) for s in out], {}

    def create_status(self, repo: str, sha: str, body: dict[str, Any], **_: Any) -> Result:
        state = body.get("state")
        if state not in _STATES:
            raise ApiError(400, "400 Bad request - state does not have a valid value")
        if self.backend.git(repo, "cat-file", "-t", sha).strip() != "commit":
            raise ApiError(404, "404 References for commit Not Found")
        name = str(body.get("name") or body.get("context") or "default")
        key = (repo, sha, name)
        current = self.state.statuses.get(key)
        if current == state:
            verb = {"pending": "enqueue", "running": "run", "success": "success"}.get(state, state)
            raise ApiError(
                400,
                f"Cannot transition status via :{verb} from :{current} (Reason(s): Status "
                f'cannot transition via "{verb}")',
            )
        self.state.statuses[key] = state
        description = str(body.get("description") or "")
        target = str(body.get("target_url") or "")
        self.local._put_status(repo, sha, name, _TO_LOCAL[state], description, target)
        entry = next(e for e in self._status_entries(repo, sha) if e["name"] == name)
        entry["ref"] = body.get("ref")
        return 201, self.p.commit_status(repo, entry), {}

    # ------------------------------------------------------------------ merge requests
    def _mr_payload(self, repo: str, item: dict[str, Any]) -> dict[str, Any]:
        fork = self.state.fork_sources.get((repo, int(item["number"])))
        if fork is not None:
            return self.p.merge_request(repo, item, fork.sha, project_id(fork.project), fork.branch)
        sha = self.backend.branches(repo).get(item["head"], "")
        return self.p.merge_request(repo, item, sha, project_id(repo))

    def _items(self, repo: str, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.backend.items(repo) if i["kind"] == kind]

    @staticmethod
    def _state_matches(item: dict[str, Any], wanted: str | None) -> bool:
        if not wanted or wanted == "all":
            return True
        return {"open": "opened"}.get(str(item["state"]), str(item["state"])) == wanted

    def list_mrs(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        out = []
        for item in sorted(self._items(repo, "pull"), key=lambda i: -int(i["number"])):
            if not self._state_matches(item, query.get("state")):
                continue
            payload = self._mr_payload(repo, item)
            if query.get("source_branch") and payload["source_branch"] != query["source_branch"]:
                continue
            if query.get("target_branch") and payload["target_branch"] != query["target_branch"]:
                continue
            out.append(payload)
        return 200, out, {}

    def _item(self, repo: str, kind: str, iid: str) -> dict[str, Any]:
        item = self.backend.item(repo, int(iid))
        if item is None or item["kind"] != kind:
            raise ApiError(404, "404 Not found")
        return item

    def get_mr(self, repo: str, iid: str, **_: Any) -> Result:
        return 200, self._mr_payload(repo, self._item(repo, "pull", iid)), {}

    def create_mr(self, repo: str, body: dict[str, Any], user: str, **_: Any) -> Result:
        source, target = str(body.get("source_branch") or ""), str(body.get("target_branch") or "")
        title = str(body.get("title") or "")
        if not source or not target or not title:
            raise ApiError(400, "400 Bad request - source_branch, target_branch, title missing")
        branches = self.backend.branches(repo)
        for branch in (source, target):
            if branch not in branches:
                raise ApiError(400, f'400 Bad request - Branch "{branch}" does not exist')
        for item in self._items(repo, "pull"):
            if (repo, int(item["number"])) in self.state.fork_sources:
                continue  # another source project: no conflict
            if item["state"] == "open" and item["head"] == source and item["base"] == target:
                raise ApiError(
                    409,
                    "Another open merge request already exists for this source branch: "
                    f"!{item['number']}",
                )
        fields = {"head": source, "base": target, "title": title, "author": user}
        fields["body"] = _text(body.get("description"), "description", DESCRIPTION_LIMIT)
        item = self.backend.create_item(repo, "pull", fields)
        return 201, self._mr_payload(repo, item), {}

    def edit_mr(self, repo: str, iid: str, body: dict[str, Any], **_: Any) -> Result:
        self._item(repo, "pull", iid)
        changes = {**_edits(body), **self.owners(body, ("assignee_ids", "reviewer_ids"))}
        item = self.backend.edit_item(repo, int(iid), changes)
        return 200, self._mr_payload(repo, item), {}

    def add_fork_mr(
        self,
        repo: str,
        fork_project: str,
        branch: str,
        sha: str,
        target: str,
        title: str,
        description: str,
        author: str,
    ) -> int:
        fields = {"head": branch, "base": target, "title": title, "body": description}
        item = self.backend.create_item(repo, "pull", {**fields, "author": author})
        number = int(item["number"])
        self.state.fork_sources[(repo, number)] = ForkSource(fork_project, branch, sha)
        return number

    # ------------------------------------------------------------------ issues
    def _issue_payload(self, repo: str, item: dict[str, Any]) -> dict[str, Any]:
        return self.p.issue(repo, item, len(self.backend.comments(repo, int(item["number"]))))

    def list_issues(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        out = [
            self._issue_payload(repo, i)
            for i in sorted(self._items(repo, "issue"), key=lambda i: -int(i["number"]))
            if self._state_matches(i, query.get("state"))
        ]
        return 200, out, {}

    def get_issue(self, repo: str, iid: str, **_: Any) -> Result:
        return 200, self._issue_payload(repo, self._item(repo, "issue", iid)), {}

    def create_issue(self, repo: str, body: dict[str, Any], user: str, **_: Any) -> Result:
        title = str(body.get("title") or "")
        if not title:
            raise ApiError(400, "400 Bad request - title is missing")
        description = _text(body.get("description"), "description", DESCRIPTION_LIMIT)
        fields = {"title": title, "body": description, "author": user}
        fields["labels"] = _labels(body.get("labels"))  # type: ignore[assignment]
        item = self.backend.create_item(repo, "issue", fields)
        return 201, self._issue_payload(repo, item), {}

    def edit_issue(self, repo: str, iid: str, body: dict[str, Any], **_: Any) -> Result:
        self._item(repo, "issue", iid)
        changes = {**_edits(body), **self.owners(body, ("assignee_ids",))}
        item = self.backend.edit_item(repo, int(iid), changes)
        return 200, self._issue_payload(repo, item), {}

    # ------------------------------------------------------------------ notes
    def _list_notes(self, repo: str, kind: str, iid: str, noteable: str) -> Result:
        self._item(repo, kind, iid)
        notes = sorted(self.backend.comments(repo, int(iid)), key=lambda c: -int(c["id"]))
        return 200, [self.p.note(repo, c, noteable) for c in notes], {}

    def _create_note(
        self, repo: str, kind: str, iid: str, body: dict[str, Any], noteable: str, user: str
    ) -> Result:
        self._item(repo, kind, iid)
        text = _text(body.get("body"), "note", NOTE_LIMIT)
        if not text:
            raise ApiError(400, "400 Bad request - body is missing")
        entry = self.backend.create_comment(repo, int(iid), text, user)
        return 201, self.p.note(repo, entry, noteable), {}

    def _edit_note(
        self, repo: str, kind: str, iid: str, nid: str, body: dict[str, Any], noteable: str
    ) -> Result:
        self._item(repo, kind, iid)
        if not any(int(c["id"]) == int(nid) for c in self.backend.comments(repo, int(iid))):
            raise ApiError(404, "404 Note Not Found")
        entry = self.backend.edit_comment(
            repo, int(nid), _text(body.get("body"), "note", NOTE_LIMIT)
        )
        return 200, self.p.note(repo, entry, noteable), {}

    def list_mr_notes(self, repo: str, iid: str, **_: Any) -> Result:
        return self._list_notes(repo, "pull", iid, "MergeRequest")

    def create_mr_note(
        self, repo: str, iid: str, body: dict[str, Any], user: str, **_: Any
    ) -> Result:
        return self._create_note(repo, "pull", iid, body, "MergeRequest", user)

    def edit_mr_note(self, repo: str, iid: str, nid: str, body: dict[str, Any], **_: Any) -> Result:
        return self._edit_note(repo, "pull", iid, nid, body, "MergeRequest")

    def list_issue_notes(self, repo: str, iid: str, **_: Any) -> Result:
        return self._list_notes(repo, "issue", iid, "Issue")

    def create_issue_note(
        self, repo: str, iid: str, body: dict[str, Any], user: str, **_: Any
    ) -> Result:
        return self._create_note(repo, "issue", iid, body, "Issue", user)

    def edit_issue_note(
        self, repo: str, iid: str, nid: str, body: dict[str, Any], **_: Any
    ) -> Result:
        return self._edit_note(repo, "issue", iid, nid, body, "Issue")


def _text(value: Any, field: str, limit: int) -> str:
    """A description or note as GitLab takes it: refused (400) when longer than ``limit``."""
    text = str(value or "")
    if len(text) > limit:
        raise ApiError(400, f"{{'{field}': ['is too long (maximum is {limit} characters)']}}")
    return text


def _labels(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if str(v)]
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


def _edits(body: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if body.get("title") is not None:
        changes["title"] = str(body["title"])
    if body.get("description") is not None:
        changes["body"] = _text(body["description"], "description", DESCRIPTION_LIMIT)
    if body.get("labels") is not None:
        changes["labels"] = _labels(body["labels"])
    event = body.get("state_event")
    if event in ("close", "reopen"):
        changes["state"] = "closed" if event == "close" else "open"
    elif event is not None:
        raise ApiError(400, "400 Bad request - state_event does not have a valid value")
    return changes
