"""The REST endpoints of the GitHub-compatible server, answered from a local provider.

Each handler takes the route's match, the query and the JSON body and returns
``(status, payload, extra headers)``; the server adds authentication, ETags, rate-limit
headers, pagination links and fault injection around them.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cicd_devkit.servers.backend import Backend
from cicd_devkit.servers.github.payloads import Payloads
from cicd_devkit.servers.rest import ApiError, Result, Route, RoutedApi
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import CombinedState
from cicd_orchestrator.exceptions import ProviderError, UnknownRepositoryError, UnknownRunError
from cicd_orchestrator.models import Run

log = logging.getLogger(__name__)

REPO = r"/repos/(?P<repo>[^/]+/[^/]+)"
#: the longest body of a pull request, an issue or a comment GitHub takes
BODY_LIMIT = 65_536

__all__ = ["Api", "ApiError", "ServerState"]


@dataclass
class ForkHead:
    repo: str
    ref: str
    sha: str


@dataclass
class ServerState:
    """What GitHub knows that the local provider does not: branch protection, forks, the
    log archives replaced by a test, the numbering of statuses."""

    protected: dict[str, set[str]] = field(default_factory=dict)
    protect_default: bool = True
    fork_heads: dict[tuple[str, int], ForkHead] = field(default_factory=dict)
    run_archives: dict[tuple[str, int], bytes] = field(default_factory=dict)
    status_ids: int = 0


class Api(RoutedApi):
    """Route table and handlers."""

    def __init__(
        self,
        local: LocalProvider,
        payloads: Payloads,
        state: ServerState,
        sign: Callable[[str], str],
    ) -> None:
        self.local = local
        self.backend = Backend(local)
        self.p = payloads
        self.state = state
        self.sign = sign
        super().__init__()

    def table(self) -> list[Route]:
        runs = f"{REPO}/actions/runs"
        return [
            ("GET", "/user", self.get_user),
            ("GET", REPO, self.get_repo),
            ("GET", f"{REPO}/branches", self.list_branches),
            ("GET", f"{REPO}/branches/(?P<branch>.+)", self.get_branch),
            ("GET", f"{REPO}/contents/(?P<path>.+)", self.get_content),
            ("GET", runs, self.list_runs),
            ("GET", rf"{runs}/(?P<run>\d+)", self.get_run),
            ("GET", rf"{runs}/(?P<run>\d+)/attempts/(?P<attempt>\d+)", self.get_run),
            ("GET", rf"{runs}/(?P<run>\d+)/jobs", self.list_jobs),
            ("GET", rf"{runs}/(?P<run>\d+)/attempts/(?P<attempt>\d+)/jobs", self.list_jobs),
            ("GET", rf"{runs}/(?P<run>\d+)/logs", self.run_logs),
            ("POST", rf"{runs}/(?P<run>\d+)/rerun-failed-jobs", self.rerun_failed),
            ("GET", rf"{REPO}/actions/jobs/(?P<job>\d+)", self.get_job),
            ("GET", rf"{REPO}/actions/jobs/(?P<job>\d+)/logs", self.job_logs),
            ("GET", f"{REPO}/commits/(?P<sha>[^/]+)", self.get_commit),
            ("GET", f"{REPO}/commits/(?P<sha>[^/]+)/check-runs", self.check_runs),
            ("GET", f"{REPO}/commits/(?P<sha>[^/]+)/status", self.combined_status),
            ("GET", f"{REPO}/commits/(?P<sha>[^/]+)/statuses", self.list_statuses),
            ("POST", f"{REPO}/statuses/(?P<sha>[^/]+)", self.create_status),
            ("GET", f"{REPO}/pulls", self.list_pulls),
            ("POST", f"{REPO}/pulls", self.create_pull),
            ("GET", rf"{REPO}/pulls/(?P<number>\d+)", self.get_pull),
            ("PATCH", rf"{REPO}/pulls/(?P<number>\d+)", self.edit_pull),
            ("GET", f"{REPO}/issues", self.list_issues),
            ("POST", f"{REPO}/issues", self.create_issue),
            ("GET", rf"{REPO}/issues/(?P<number>\d+)", self.get_issue),
            ("PATCH", rf"{REPO}/issues/(?P<number>\d+)", self.edit_issue),
            ("GET", rf"{REPO}/issues/(?P<number>\d+)/comments", self.list_comments),
            ("POST", rf"{REPO}/issues/(?P<number>\d+)/comments", self.create_comment),
            ("PATCH", rf"{REPO}/issues/comments/(?P<cid>\d+)", self.edit_comment),
            ("POST", rf"{REPO}/issues/(?P<number>\d+)/assignees", self.add_assignees),
            (
                "POST",
                rf"{REPO}/pulls/(?P<number>\d+)/requested_reviewers",
                self.request_reviewers,
            ),
            ("POST", "/graphql", self.graphql),
        ]

    def arguments(self, match: re.Match[str]) -> dict[str, Any]:
        """The route's groups; a repository the local provider does not have is a 404."""
        args = match.groupdict()
        repo = args.get("repo")
        if repo is not None:
            try:
                self.local.repo_path(repo)
            except UnknownRepositoryError as exc:
                raise ApiError(404, "Not Found") from exc
        return args

    # ------------------------------------------------------------------ repositories
    def repository(self, repo: str) -> dict[str, Any]:
        return self.p.repository(repo, self.local._default_branch(repo))

    def get_user(self, user: str, **_: Any) -> Result:
        return 200, self.p.user(user), {}

    def get_repo(self, repo: str, **_: Any) -> Result:
        return 200, self.repository(repo), {}

    def is_protected(self, repo: str, branch: str) -> bool:
        if self.state.protect_default and branch == self.local._default_branch(repo):
            return True
        return branch in self.state.protected.get(repo, set())

    def list_branches(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        out = [
            self.p.branch(repo, name, sha, self.is_protected(repo, name))
            for name, sha in sorted(self.backend.branches(repo).items())
        ]
        wanted = query.get("protected")
        if wanted in ("true", "false"):
            out = [b for b in out if b["protected"] is (wanted == "true")]
        return 200, out, {}

    def get_branch(self, repo: str, branch: str, **_: Any) -> Result:
        sha = self.backend.branches(repo).get(branch)
        if sha is None:
            raise ApiError(404, "Branch not found")
        return 200, self.p.branch(repo, branch, sha, self.is_protected(repo, branch)), {}

    def get_content(self, repo: str, path: str, query: dict[str, str], **_: Any) -> Result:
        ref = query.get("ref") or self.local._default_branch(repo)
        blob = self.backend.blob(repo, ref, path)
        if blob is None:
            raise ApiError(404, "Not Found")
        return 200, self.p.content(repo, path, blob, ref), {}

    # ------------------------------------------------------------------ runs and jobs
    def _run_payload(self, repo: str, run: Run) -> dict[str, Any]:
        return self.p.workflow_run(repo, run, self.repository(repo))

    def list_runs(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        runs = self.local._list_runs(repo, query.get("branch"), query.get("head_sha"))
        status = query.get("status")
        if status:
            runs = [
                r
                for r in runs
                if r.status.value == status or (r.conclusion and r.conclusion.value == status)
            ]
        if query.get("event"):
            runs = [r for r in runs if r.event == query["event"]]
        return 200, {"workflow_runs": [self._run_payload(repo, r) for r in runs]}, {}

    def _get_run(self, repo: str, run: str, attempt: str | None) -> Run:
        return self.local._get_run(repo, int(run), int(attempt) if attempt else None)

    def get_run(self, repo: str, run: str, attempt: str | None = None, **_: Any) -> Result:
        return 200, self._run_payload(repo, self._get_run(repo, run, attempt)), {}

    def list_jobs(
        self, repo: str, run: str, query: dict[str, str], attempt: str | None = None, **_: Any
    ) -> Result:
        latest = self._get_run(repo, run, attempt)
        runs = [latest]
        if attempt is None and query.get("filter") == "all":
            runs = [self._get_run(repo, run, str(n)) for n in range(1, latest.run_attempt + 1)]
        jobs = [self.p.job(repo, r, j) for r in runs for j in r.jobs]
        return 200, {"jobs": jobs}, {}

    def _download_url(self, kind: str, repo: str, ident: str) -> str:
        path = f"/_blobs/{kind}/{repo}/{ident}"
        return f"{self.p.web_url}{path}?{self.sign(path)}"

    def get_job(self, repo: str, job: str, **_: Any) -> Result:
        run_id, attempt = self.local.job_attempt(repo, int(job))
        run = self._get_run(repo, str(run_id), str(attempt))
        found = next((j for j in run.jobs if j.id == int(job)), None)
        if found is None:
            raise UnknownRunError(f"unknown job {job} of {repo}")
        return 200, self.p.job(repo, run, found), {}

    def job_logs(self, repo: str, job: str, **_: Any) -> Result:
        with self.local.open_job_log(repo, int(job)):
            pass  # raises UnknownRunError for an unknown job
        return 302, None, {"Location": self._download_url("job-logs", repo, job)}

    def run_logs(self, repo: str, run: str, **_: Any) -> Result:
        self._get_run(repo, run, None)
        return 302, None, {"Location": self._download_url("run-logs", repo, run)}

    def job_log_bytes(self, repo: str, job: int) -> bytes:
        with self.local.open_job_log(repo, job) as fh:
            return fh.read()

    def run_archive(self, repo: str, run_id: int) -> bytes:
        """The run's log archive as GitHub builds it: ``<n>_<job>.txt`` per job."""
        replaced = self.state.run_archives.get((repo, run_id))
        if replaced is not None:
            return replaced
        run = self.local._get_run(repo, run_id)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for index, job in enumerate(run.jobs):
                safe = job.name.replace("/", "_")
                zf.writestr(f"{index}_{safe}.txt", self.job_log_bytes(repo, job.id))
        return buf.getvalue()

    def rerun_failed(self, repo: str, run: str, **_: Any) -> Result:
        try:
            self.local._rerun(repo, int(run), only_failed=True)
        except UnknownRunError:
            raise
        except ProviderError as exc:
            raise ApiError(403, str(exc)) from exc
        return 201, {}, {}

    def get_commit(self, repo: str, sha: str, **_: Any) -> Result:
        commit = self.backend.commit(repo, sha)
        if commit is None:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        return 200, self.p.commit(repo, commit), {}

    # ------------------------------------------------------------------ checks and statuses
    def check_runs(self, repo: str, sha: str, **_: Any) -> Result:
        checks: list[dict[str, Any]] = []
        for summary in self.local._list_runs(repo, None, sha):
            run = self.local._get_run(repo, summary.id)
            checks.extend(self.p.check_run(repo, run, job) for job in run.jobs)
        return 200, {"total_count": len(checks), "check_runs": checks}, {}

    def _statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        out = []
        for number, entry in enumerate(self.local._statuses(repo, sha), start=1):
            raw = {
                "state": entry.state.value,
                "context": entry.context,
                "description": entry.description,
                "target_url": entry.target_url,
                "created_at": entry.created_at,
            }
            out.append(self.p.status(repo, sha, raw, number))
        return out

    def combined_status(self, repo: str, sha: str, **_: Any) -> Result:
        statuses = self._statuses(repo, sha)
        return 200, self.p.combined_status(repo, sha, statuses, self.repository(repo)), {}

    def list_statuses(self, repo: str, sha: str, **_: Any) -> Result:
        return 200, list(reversed(self._statuses(repo, sha))), {}

    def create_status(self, repo: str, sha: str, body: Any, **_: Any) -> Result:
        body = body if isinstance(body, dict) else {}
        state = body.get("state")
        if state not in ("error", "failure", "pending", "success"):
            raise ApiError(422, "Validation Failed: state")
        context = str(body.get("context") or "default")
        local_state = CombinedState.FAILURE if state == "error" else CombinedState(state)
        description = str(body.get("description") or "")
        target = str(body.get("target_url") or "")
        # the orchestrator's own context and any other are stored alike (ref_status of the
        # local provider leaves out STATUS_CONTEXT, as the GitHub provider does)
        self.local._put_status(repo, sha, context, local_state, description, target)
        self.state.status_ids += 1
        raw = {"state": state, "context": context, "description": description}
        raw["target_url"] = target
        return 201, self.p.status(repo, sha, raw, self.state.status_ids), {}

    # ------------------------------------------------------------------ GraphQL
    def graphql(self, body: Any, user: str, **_: Any) -> Result:
        """The GraphQL mutations the providers send (``markPullRequestReadyForReview``);
        GraphQL answers 200 with ``errors`` for what it cannot do."""
        body = body if isinstance(body, dict) else {}
        match = _MUTATION.search(str(body.get("query") or ""))
        name = match.group("name") if match else ""
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        given = variables.get("input") if isinstance(variables.get("input"), dict) else {}
        if name != "markPullRequestReadyForReview":
            return 200, _graphql_error(f"the server does not model {name or 'this query'}"), {}
        target = _pull_of_node(str(given.get("pullRequestId") or ""))
        item = self.backend.item(target[0], target[1]) if target else None
        if target is None or item is None or item["kind"] != "pull":
            return 200, _graphql_error("Could not resolve to a node", "NOT_FOUND"), {}
        if item.get("author") != user:
            return 200, _graphql_error(f"{user} may not change this pull request"), {}
        if item["state"] == "open" and item.get("draft"):
            self.backend.edit_item(target[0], target[1], {"draft": False})
        answer = {
            "clientMutationId": given.get("clientMutationId"),
            "pullRequest": {"isDraft": False},
        }
        return 200, {"data": {name: answer}}, {}

    # ------------------------------------------------------------------ pull requests
    def _pull_payload(self, repo: str, item: dict[str, Any]) -> dict[str, Any]:
        number = int(item["number"])
        branches = self.backend.branches(repo)
        repository = self.repository(repo)
        fork = self.state.fork_heads.get((repo, number))
        if fork is not None:
            head = {
                "ref": fork.ref,
                "sha": fork.sha,
                "repo": self.p.repository(fork.repo, fork.ref, fork=True),
            }
        else:
            head = {"ref": item["head"], "sha": branches.get(item["head"], ""), "repo": repository}
        base = {"ref": item["base"], "sha": branches.get(item["base"], ""), "repo": repository}
        payload = self.p.pull(repo, item, head, base)
        payload["node_id"] = pull_node_id(repo, number)
        return payload

    def _pulls(self, repo: str) -> list[dict[str, Any]]:
        return [i for i in self.backend.items(repo) if i["kind"] == "pull"]

    def list_pulls(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        state = query.get("state", "open")
        out = []
        for item in sorted(self._pulls(repo), key=lambda i: -int(i["number"])):
            if state != "all" and item["state"] != state:
                continue
            payload = self._pull_payload(repo, item)
            head = query.get("head")
            if head and head not in (payload["head"]["label"], payload["head"]["ref"]):
                continue
            if query.get("base") and payload["base"]["ref"] != query["base"]:
                continue
            out.append(payload)
        return 200, out, {}

    def _pull_item(self, repo: str, number: str) -> dict[str, Any]:
        item = self.backend.item(repo, int(number))
        if item is None or item["kind"] != "pull":
            raise ApiError(404, "Not Found")
        return item

    def get_pull(self, repo: str, number: str, **_: Any) -> Result:
        return 200, self._pull_payload(repo, self._pull_item(repo, number)), {}

    def create_pull(self, repo: str, body: Any, user: str, **_: Any) -> Result:
        body = body if isinstance(body, dict) else {}
        head = str(body.get("head") or "").split(":", 1)[-1]
        base = str(body.get("base") or "")
        branches = self.backend.branches(repo)
        if head not in branches or base not in branches:
            raise ApiError(422, "Validation Failed: head or base is not a branch")
        if not body.get("title"):
            raise ApiError(422, "Validation Failed: title")
        fields: dict[str, Any] = {"head": head, "base": base, "title": str(body["title"])}
        fields.update(author=user, body=_body(body.get("body")))
        fields["draft"] = bool(body.get("draft"))
        item = self.backend.create_item(repo, "pull", fields)
        return 201, self._pull_payload(repo, item), {}

    def edit_pull(self, repo: str, number: str, body: Any, **_: Any) -> Result:
        self._pull_item(repo, number)
        changes = _edits(body, ("title", "body", "state"))
        item = self.backend.edit_item(repo, int(number), changes)
        return 200, self._pull_payload(repo, item), {}

    def add_fork_pull(
        self,
        repo: str,
        fork_repo: str,
        ref: str,
        sha: str,
        base: str,
        title: str,
        body: str,
        author: str,
    ) -> int:
        fields = {"head": ref, "base": base, "title": title, "body": body, "author": author}
        item = self.backend.create_item(repo, "pull", fields)
        number = int(item["number"])
        self.state.fork_heads[(repo, number)] = ForkHead(fork_repo, ref, sha)
        return number

    # ------------------------------------------------------------------ issues and comments
    def _issue_payload(self, repo: str, item: dict[str, Any]) -> dict[str, Any]:
        count = len(self.backend.comments(repo, int(item["number"])))
        return self.p.issue(repo, item, count)

    def list_issues(self, repo: str, query: dict[str, str], **_: Any) -> Result:
        state = query.get("state", "open")
        labels = {x for x in (query.get("labels") or "").split(",") if x}
        out = [
            self._issue_payload(repo, i)
            for i in sorted(self.backend.items(repo), key=lambda i: -int(i["number"]))
            if (state == "all" or i["state"] == state) and labels <= set(i.get("labels") or [])
        ]
        return 200, out, {}

    def _item(self, repo: str, number: str) -> dict[str, Any]:
        item = self.backend.item(repo, int(number))
        if item is None:
            raise ApiError(404, "Not Found")
        return item

    def get_issue(self, repo: str, number: str, **_: Any) -> Result:
        return 200, self._issue_payload(repo, self._item(repo, number)), {}

    def create_issue(self, repo: str, body: Any, user: str, **_: Any) -> Result:
        body = body if isinstance(body, dict) else {}
        if not body.get("title"):
            raise ApiError(422, "Validation Failed: title")
        fields = {
            "title": str(body["title"]),
            "body": _body(body.get("body")),
            "labels": [str(x) for x in body.get("labels") or []],
            "author": user,
        }
        item = self.backend.create_item(repo, "issue", fields)
        return 201, self._issue_payload(repo, item), {}

    def edit_issue(self, repo: str, number: str, body: Any, **_: Any) -> Result:
        self._item(repo, number)
        changes = _edits(body, ("title", "body", "state", "labels"))
        if "labels" in changes:
            changes["labels"] = [
                x if isinstance(x, str) else str(x.get("name")) for x in changes["labels"] or []
            ]
        item = self.backend.edit_item(repo, int(number), changes)
        return 200, self._issue_payload(repo, item), {}

    def add_assignees(self, repo: str, number: str, body: Any, **_: Any) -> Result:
        """Assignees added (GitHub keeps at most 10 and ignores who cannot be assigned)."""
        item = self._item(repo, number)
        names = _names((body or {}).get("assignees"))
        self.local.set_owners(repo, int(item["number"]), names[:10])
        return 201, self._issue_payload(repo, self._item(repo, number)), {}

    def request_reviewers(self, repo: str, number: str, body: Any, user: str, **_: Any) -> Result:
        """Review requests (the author of the pull request cannot be one: 422, as on GitHub);
        team slugs are of the repository's owner."""
        item = self._pull_item(repo, number)
        body = body if isinstance(body, dict) else {}
        reviewers = _names(body.get("reviewers"))
        if str(item.get("author") or "").casefold() in {r.casefold() for r in reviewers}:
            raise ApiError(422, "Review cannot be requested from pull request author.")
        owner = repo.split("/")[0]
        teams = [f"{owner}/{slug}" for slug in _names(body.get("team_reviewers"))]
        self.local.set_owners(repo, int(item["number"]), [], reviewers, teams)
        return 201, self._pull_payload(repo, self._pull_item(repo, number)), {}

    def list_comments(self, repo: str, number: str, **_: Any) -> Result:
        self._item(repo, number)
        comments = self.backend.comments(repo, int(number))
        return 200, [self.p.comment(repo, c) for c in comments], {}

    def create_comment(self, repo: str, number: str, body: Any, user: str, **_: Any) -> Result:
        self._item(repo, number)
        text = _body((body or {}).get("body"))
        if not text:
            raise ApiError(422, "Validation Failed: body")
        entry = self.backend.create_comment(repo, int(number), text, user)
        return 201, self.p.comment(repo, entry), {}

    def edit_comment(self, repo: str, cid: str, body: Any, **_: Any) -> Result:
        text = _body((body or {}).get("body"))
        try:
            entry = self.backend.edit_comment(repo, int(cid), text)
        except ProviderError as exc:
            raise ApiError(404, "Not Found") from exc
        return 200, self.p.comment(repo, entry), {}


def _body(value: Any) -> str:
    """A body as GitHub takes it: refused (422) when longer than ``BODY_LIMIT``."""
    text = str(value or "")
    if len(text) > BODY_LIMIT:
        raise ApiError(
            422, f"Validation Failed: body is too long (maximum is {BODY_LIMIT} characters)"
        )
    return text


def _edits(body: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    body = body if isinstance(body, dict) else {}
    changes = {k: body[k] for k in keys if k in body and body[k] is not None}
    if "body" in changes:
        changes["body"] = _body(changes["body"])
    if "state" in changes and changes["state"] not in ("open", "closed"):
        raise ApiError(422, "Validation Failed: state")
    return changes


_MUTATION = re.compile(r"mutation\b[^{]*\{\s*(?P<name>\w+)")


def pull_node_id(repo: str, number: int) -> str:
    """The GraphQL node id of pull request ``number`` of ``repo``."""
    return "PR_" + base64.urlsafe_b64encode(f"{repo}#{number}".encode()).decode().rstrip("=")


def _pull_of_node(node_id: str) -> tuple[str, int] | None:
    """(repository, number) of a pull request's node id, or None."""
    if not node_id.startswith("PR_"):
        return None
    raw = node_id[3:]
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except ValueError:
        return None
    repo, _, number = text.rpartition("#")
    return (repo, int(number)) if repo and number.isdigit() else None


def _graphql_error(message: str, kind: str = "UNPROCESSABLE") -> dict[str, Any]:
    return {"data": None, "errors": [{"type": kind, "message": message}]}


def _names(value: Any) -> list[str]:
    """The logins (or slugs) of a request's list; anything else is a 422."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ApiError(422, "Validation Failed: a list of names is expected")
    return list(value)
