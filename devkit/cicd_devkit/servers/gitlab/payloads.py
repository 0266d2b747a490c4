"""GitLab REST v4 payloads built from the documented examples in ``fixtures/``.

Each fixture is the example response of GitLab's API documentation for one object (a project,
a pipeline, a job, a merge request...). A payload is that example with the server's URLs and
the real values of the local provider filled in, so every field a client may read is there
with GitLab's shape. ``pipeline_hook`` and ``job_hook`` are the documented webhook events.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from cicd_devkit.servers.rest import FixturePayloads, read_fixture
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.models import Job, Run

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_EXAMPLE_URL = "https://gitlab.example.com"
_EXAMPLE_REPOS = ("diaspora/diaspora-project-site", "gitlab-org/gitlab-test")
BOT_USERNAME = "cicd-orchestrator-bot"


def fixture_text(name: str) -> str:
    return read_fixture(FIXTURES, f"{name}.json")


def project_id(repo: str) -> int:
    """A stable numeric id of a project path."""
    return zlib.crc32(repo.encode("utf-8")) % 9_000_000 + 1_000_000


def user_id(username: str) -> int:
    """A stable numeric id of a username (GitLab's usernames are case-insensitive)."""
    return zlib.crc32(username.casefold().encode("utf-8")) % 9_000_000 + 1_000_000


def iso(value: str | None) -> str | None:
    """GitLab's timestamps: ``2016-08-11T11:28:34.085Z``."""
    if not value:
        return None
    text = value.replace("+00:00", "Z")
    return text if "." in text else text.replace("Z", ".000Z")


def is_draft(title: str) -> bool:
    """Whether GitLab reads a merge request's title as a draft's."""
    lowered = title.lower()
    return lowered.startswith(("draft:", "[draft]", "(draft)"))


def gitlab_status(status: RunStatus, conclusion: Conclusion | None) -> str:
    """A local status as GitLab's job/pipeline status."""
    if status is RunStatus.QUEUED:
        return "pending"
    if status is RunStatus.IN_PROGRESS:
        return "running"
    return {
        Conclusion.SUCCESS: "success",
        Conclusion.FAILURE: "failed",
        Conclusion.TIMED_OUT: "failed",
        Conclusion.CANCELLED: "canceled",
        Conclusion.SKIPPED: "skipped",
        Conclusion.NEUTRAL: "success",
    }.get(conclusion or Conclusion.SUCCESS, "success")


class Payloads(FixturePayloads):
    """Builds payloads for one server (its API and web URLs)."""

    FIXTURES = FIXTURES
    EXAMPLE_URLS = ((_EXAMPLE_URL, "web_url"),)
    EXAMPLE_REPOS = _EXAMPLE_REPOS

    def user(self, username: str = BOT_USERNAME) -> dict[str, Any]:
        data = self.load("user")
        data.update(
            id=user_id(username),
            username=username,
            name=username,
            web_url=f"{self.web_url}/{username}",
        )
        return data

    def users(self, usernames: list[str]) -> list[dict[str, Any]]:
        """Users as a merge request or issue lists them (``assignees``, ``reviewers``)."""
        return [self.user(name) for name in usernames]

    # ------------------------------------------------------------------ projects
    def project(self, repo: str, default_branch: str, ci_config_path: str) -> dict[str, Any]:
        namespace, _, name = repo.rpartition("/")
        pid = project_id(repo)
        data = self.load("project", repo)
        data.update(
            id=pid,
            name=name,
            path=name,
            name_with_namespace=f"{namespace} / {name}",
            path_with_namespace=repo,
            default_branch=default_branch,
            ci_config_path=ci_config_path or None,
            http_url_to_repo=f"{self.web_url}/{repo}.git",
            web_url=f"{self.web_url}/{repo}",
        )
        data["namespace"] = {
            **data["namespace"],
            "name": namespace,
            "path": namespace,
            "full_path": namespace,
            "web_url": f"{self.web_url}/groups/{namespace}",
        }
        base = f"{self.api_url}/projects/{pid}"
        data["_links"] = {
            "self": base,
            "issues": f"{base}/issues",
            "merge_requests": f"{base}/merge_requests",
            "repo_branches": f"{base}/repository/branches",
            "labels": f"{base}/labels",
            "events": f"{base}/events",
            "members": f"{base}/members",
            "cluster_agents": f"{base}/cluster_agents",
        }
        return data

    def branch(
        self, repo: str, name: str, sha: str, protected: bool, default: bool
    ) -> dict[str, Any]:
        data = self.load("branch", repo)
        data.update(
            name=name,
            protected=protected,
            default=default,
            web_url=f"{self.web_url}/{repo}/-/tree/{name}",
        )
        data["commit"] = {
            **data["commit"],
            "id": sha,
            "short_id": sha[:8],
            "web_url": f"{self.web_url}/{repo}/-/commit/{sha}",
        }
        return data

    def protected_branch(self, number: int, name: str) -> dict[str, Any]:
        data = self.load("protected_branch")
        data.update(id=number, name=name)
        return data

    # ------------------------------------------------------------------ pipelines and jobs
    def pipeline(self, repo: str, run: Run, status: str, basic: bool = False) -> dict[str, Any]:
        data = self.load("pipeline_basic" if basic else "pipeline", repo)
        data.update(
            id=run.id,
            iid=run.run_number,
            project_id=project_id(repo),
            name=run.workflow,
            sha=run.head_sha,
            ref=run.head_branch,
            status=status,
            source="merge_request_event" if run.event == "pull_request" else run.event or "push",
            created_at=iso(run.created_at),
            updated_at=iso(run.updated_at),
            web_url=f"{self.web_url}/{repo}/-/pipelines/{run.id}",
        )
        if not basic:
            done = status in ("success", "failed", "canceled", "skipped")
            data.update(
                user=self.user(),
                started_at=iso(run.created_at),
                finished_at=iso(run.updated_at) if done else None,
                before_sha="0" * 40,
            )
            data["detailed_status"] = {
                **data["detailed_status"],
                "icon": f"status_{status}",
                "text": {"success": "passed"}.get(status, status),
                "label": {"success": "passed"}.get(status, status),
                "group": status,
                "tooltip": status,
                "details_path": f"/{repo}/-/pipelines/{run.id}",
            }
        return data

    def job(
        self,
        repo: str,
        run: Run,
        job: Job,
        stage: str,
        failure_reason: str | None,
        status: str,
        retried: bool,
    ) -> dict[str, Any]:
        data = self.load("job", repo)
        data.update(
            id=job.id,
            name=job.name,
            stage=stage,
            status=status,
            failure_reason=failure_reason if status == "failed" else None,
            ref=run.head_branch,
            created_at=iso(job.started_at or run.created_at),
            started_at=iso(job.started_at),
            finished_at=iso(job.completed_at),
            web_url=f"{self.web_url}/{repo}/-/jobs/{job.id}",
            user=self.user(),
            retried=retried,
            tag_list=["cicd-local"],
        )
        data["commit"] = {**data["commit"], "id": run.head_sha, "short_id": run.head_sha[:8]}
        data["pipeline"] = {
            "id": run.id,
            "project_id": project_id(repo),
            "ref": run.head_branch,
            "sha": run.head_sha,
            "status": gitlab_status(run.status, run.conclusion),
        }
        return data

    def commit_status(self, repo: str, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry``: id, sha, ref, status, name, description, target_url, created_at."""
        data = self.load("commit_status", repo)
        done = entry["status"] not in ("pending", "running")
        data.update(
            id=entry["id"],
            sha=entry["sha"],
            ref=entry.get("ref"),
            status=entry["status"],
            name=entry["name"],
            description=entry.get("description") or None,
            target_url=entry.get("target_url") or None,
            created_at=iso(entry.get("created_at")),
            started_at=iso(entry.get("created_at")),
            finished_at=iso(entry.get("created_at")) if done else None,
            allow_failure=bool(entry.get("allow_failure")),
            author=self.user(),
        )
        return data

    def commit(self, repo: str, commit: dict[str, str]) -> dict[str, Any]:
        """A commit as ``GET /projects/:id/repository/commits/:sha`` shows it."""
        sha, message = commit["sha"], commit.get("message", "").rstrip("\n")
        return {
            "id": sha,
            "short_id": sha[:8],
            "title": message.split("\n", 1)[0],
            "message": message,
            "author_name": commit["author_name"],
            "author_email": commit["author_email"],
            "authored_date": commit["authored_date"],
            "committer_name": commit["committer_name"],
            "committer_email": commit["committer_email"],
            "committed_date": commit["committed_date"],
            "created_at": commit["committed_date"],
            "parent_ids": [],
            "web_url": f"{self.web_url}/{repo}/-/commit/{sha}",
            "project_id": project_id(repo),
        }

    # ------------------------------------------------------------------ merge requests, issues
    def merge_request(
        self,
        repo: str,
        item: dict[str, Any],
        sha: str,
        source_project: int,
        source_branch: str | None = None,
    ) -> dict[str, Any]:
        number = int(item["number"])
        data = self.load("merge_request", repo)
        assignees = self.users(item.get("assignees", []))
        state = {"open": "opened"}.get(str(item["state"]), str(item["state"]))
        data.update(
            id=number + 100_000,
            iid=number,
            project_id=project_id(repo),
            title=item["title"],
            description=item.get("body", ""),
            state=state,
            created_at=iso(item.get("created_at")),
            updated_at=iso(item.get("updated_at")),
            closed_at=iso(item.get("updated_at")) if state == "closed" else None,
            target_branch=item["base"],
            source_branch=source_branch or item["head"],
            source_project_id=source_project,
            target_project_id=project_id(repo),
            author=self.user(item.get("author") or BOT_USERNAME),
            assignees=assignees,
            assignee=assignees[0] if assignees else None,
            reviewers=self.users(item.get("reviewers", [])),
            draft=is_draft(item["title"]),
            work_in_progress=is_draft(item["title"]),
            sha=sha,
            reference=f"!{number}",
            references={
                "short": f"!{number}",
                "relative": f"!{number}",
                "full": f"{repo}!{number}",
            },
            web_url=f"{self.web_url}/{repo}/-/merge_requests/{number}",
        )
        return data

    def issue(self, repo: str, item: dict[str, Any], notes: int) -> dict[str, Any]:
        number = int(item["number"])
        data = self.load("issue", repo)
        assignees = self.users(item.get("assignees", []))
        state = {"open": "opened"}.get(str(item["state"]), str(item["state"]))
        base = f"{self.api_url}/projects/{project_id(repo)}"
        data.update(
            id=number + 200_000,
            iid=number,
            project_id=project_id(repo),
            title=item["title"],
            description=item.get("body", ""),
            state=state,
            labels=list(item.get("labels", [])),
            created_at=iso(item.get("created_at")),
            updated_at=iso(item.get("updated_at")),
            closed_at=iso(item.get("updated_at")) if state == "closed" else None,
            author=self.user(item.get("author") or BOT_USERNAME),
            assignees=assignees,
            assignee=assignees[0] if assignees else None,
            user_notes_count=notes,
            web_url=f"{self.web_url}/{repo}/-/issues/{number}",
            references={
                "short": f"#{number}",
                "relative": f"#{number}",
                "full": f"{repo}#{number}",
            },
        )
        data["_links"] = {
            "self": f"{base}/issues/{number}",
            "notes": f"{base}/issues/{number}/notes",
            "award_emoji": f"{base}/issues/{number}/award_emoji",
            "project": base,
            "closed_as_duplicate_of": None,
        }
        return data

    def note(self, repo: str, entry: dict[str, Any], noteable: str) -> dict[str, Any]:
        data = self.load("note", repo)
        data.update(
            id=int(entry["id"]),
            body=entry["body"],
            author=self.user(entry.get("author") or BOT_USERNAME),
            created_at=iso(entry.get("created_at")),
            updated_at=iso(entry.get("updated_at")),
            system=False,
            noteable_id=int(entry["number"]) + (100_000 if noteable == "MergeRequest" else 200_000),
            noteable_type=noteable,
            noteable_iid=int(entry["number"]),
            project_id=project_id(repo),
        )
        return data

    def error(self, message: str) -> dict[str, Any]:
        data = self.load("error")
        data["message"] = message
        return data
