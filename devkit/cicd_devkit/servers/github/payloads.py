"""GitHub REST payloads built from the documented examples in ``fixtures/``.

Each fixture is the example response of GitHub's REST documentation for one object (a
workflow run, a job, a pull request...). A payload is that example with the server's URLs and
the real values of the local provider filled in, so every field a client may read is present
with GitHub's shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cicd_devkit.servers.rest import FixturePayloads, read_fixture
from cicd_orchestrator.models import Job, Run

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_EXAMPLE_REPOS = (
    "octocat/Hello-World",
    "octo-org/octo-repo",
    "github/hello-world",
    "octokit/octokit.rb",
)
BOT_LOGIN = "cicd-orchestrator[bot]"


def fixture_text(name: str) -> str:
    return read_fixture(FIXTURES, f"{name}.json")


def _iso(value: str | None) -> str | None:
    """GitHub's timestamps: ``2020-01-22T19:33:08Z``."""
    if not value:
        return None
    return value.replace("+00:00", "Z")


class Payloads(FixturePayloads):
    """Builds payloads for one server (its API and web URLs)."""

    FIXTURES = FIXTURES
    EXAMPLE_URLS = (("https://api.github.com", "api_url"), ("https://github.com", "web_url"))
    EXAMPLE_REPOS = _EXAMPLE_REPOS

    def repo_url(self, repo: str) -> str:
        return f"{self.api_url}/repos/{repo}"

    # ------------------------------------------------------------------ users, repositories
    def user(self, login: str = BOT_LOGIN) -> dict[str, Any]:
        data = self.load("simple_user")
        text = json.dumps(data).replace("octocat", login)
        out = json.loads(text)
        out["type"] = "Bot" if login.endswith("[bot]") else "User"
        return dict(out)

    def repository(self, repo: str, default_branch: str, fork: bool = False) -> dict[str, Any]:
        owner, name = repo.split("/", 1)
        data = self.load("repository", repo)
        data.update(
            name=name,
            full_name=repo,
            owner=self.user(owner),
            default_branch=default_branch,
            fork=fork,
            clone_url=f"{self.web_url}/{repo}.git",
            html_url=f"{self.web_url}/{repo}",
            url=self.repo_url(repo),
            id=abs(hash(repo)) % 10_000_000,
        )
        return data

    def branch(self, repo: str, name: str, sha: str, protected: bool) -> dict[str, Any]:
        data = self.load("branch_short", repo)
        data.update(name=name, protected=protected)
        data["commit"] = {"sha": sha, "url": f"{self.repo_url(repo)}/commits/{sha}"}
        data["_links"] = {
            "self": f"{self.repo_url(repo)}/branches/{name}",
            "html": f"{self.web_url}/{repo}/tree/{name}",
        }
        data["protection_url"] = f"{self.repo_url(repo)}/branches/{name}/protection"
        return data

    # ------------------------------------------------------------------ actions
    def workflow_run(self, repo: str, run: Run, repository: dict[str, Any]) -> dict[str, Any]:
        data = self.load("workflow_run", repo)
        url = f"{self.repo_url(repo)}/actions/runs/{run.id}"
        data.update(
            id=run.id,
            name=run.workflow,
            display_title=run.workflow,
            head_branch=run.head_branch,
            head_sha=run.head_sha,
            path=run.workflow_path,
            run_number=run.run_number,
            run_attempt=run.run_attempt,
            event=run.event,
            status=run.status.value,
            conclusion=run.conclusion.value if run.conclusion else None,
            workflow_id=abs(hash((repo, run.workflow_path))) % 10_000_000,
            check_suite_id=run.id,
            url=url,
            html_url=f"{self.web_url}/{repo}/actions/runs/{run.id}",
            jobs_url=f"{url}/jobs",
            logs_url=f"{url}/logs",
            cancel_url=f"{url}/cancel",
            rerun_url=f"{url}/rerun",
            artifacts_url=f"{url}/artifacts",
            previous_attempt_url=(
                f"{url}/attempts/{run.run_attempt - 1}" if run.run_attempt > 1 else None
            ),
            created_at=_iso(run.created_at),
            updated_at=_iso(run.updated_at),
            run_started_at=_iso(run.created_at),
            actor=self.user("octocat"),
            triggering_actor=self.user("octocat"),
            repository=repository,
            head_repository=repository,
        )
        data["head_commit"] = {**data["head_commit"], "id": run.head_sha}
        data["pull_requests"] = []
        if run.pull_request_number is not None:  # a pull request run: its pull request
            number = run.pull_request_number
            data["pull_requests"] = [
                {
                    "id": number,
                    "number": number,
                    "url": f"{self.repo_url(repo)}/pulls/{number}",
                    "head": {"ref": run.head_branch, "sha": run.head_sha, "repo": None},
                    "base": {"ref": "", "sha": "", "repo": None},
                }
            ]
        return data

    def job(self, repo: str, run: Run, job: Job) -> dict[str, Any]:
        data = self.load("job", repo)
        data.update(
            id=job.id,
            run_id=run.id,
            run_url=f"{self.repo_url(repo)}/actions/runs/{run.id}",
            head_sha=run.head_sha,
            head_branch=run.head_branch,
            url=f"{self.repo_url(repo)}/actions/jobs/{job.id}",
            html_url=f"{self.web_url}/{repo}/actions/runs/{run.id}/job/{job.id}",
            check_run_url=f"{self.repo_url(repo)}/check-runs/{job.id}",
            status=job.status.value,
            conclusion=job.conclusion.value if job.conclusion else None,
            started_at=_iso(job.started_at),
            completed_at=_iso(job.completed_at),
            created_at=_iso(job.started_at or run.created_at),
            name=job.name,
            run_attempt=job.run_attempt,
            workflow_name=run.workflow,
            labels=["ubuntu-latest"],
            runner_name="cicd-local",
        )
        data["steps"] = [
            {
                "name": s.name,
                "status": s.status.value,
                "conclusion": s.conclusion.value if s.conclusion else None,
                "number": s.number,
                "started_at": _iso(s.started_at),
                "completed_at": _iso(s.completed_at),
            }
            for s in job.steps
        ]
        return data

    def check_run(self, repo: str, run: Run, job: Job) -> dict[str, Any]:
        data = self.load("check_run", repo)
        data.update(
            id=job.id,
            head_sha=run.head_sha,
            url=f"{self.repo_url(repo)}/check-runs/{job.id}",
            html_url=f"{self.web_url}/{repo}/actions/runs/{run.id}/job/{job.id}",
            details_url=f"{self.web_url}/{repo}/actions/runs/{run.id}/job/{job.id}",
            external_id=str(job.id),
            status=job.status.value,
            conclusion=job.conclusion.value if job.conclusion else None,
            started_at=_iso(job.started_at),
            completed_at=_iso(job.completed_at),
            name=job.name,
            check_suite={"id": run.id},
        )
        data["output"] = {**data["output"], "title": None, "summary": None, "text": None}
        data["output"]["annotations_count"] = 0
        return data

    # ------------------------------------------------------------------ statuses
    def status(self, repo: str, sha: str, entry: dict[str, Any], number: int) -> dict[str, Any]:
        data = self.load("commit_status", repo)
        data.update(
            id=number,
            url=f"{self.repo_url(repo)}/statuses/{sha}",
            state=entry["state"],
            description=entry.get("description") or None,
            target_url=entry.get("target_url") or None,
            context=entry["context"],
            created_at=_iso(entry.get("created_at")),
            updated_at=_iso(entry.get("created_at")),
            creator=self.user(),
        )
        return data

    def combined_status(
        self, repo: str, sha: str, statuses: list[dict[str, Any]], repository: dict[str, Any]
    ) -> dict[str, Any]:
        data = self.load("combined_status", repo)
        states = [s["state"] for s in statuses]
        if any(s in ("failure", "error") for s in states):
            state = "failure"
        elif not states or "pending" in states:
            state = "pending"
        else:
            state = "success"
        data.update(
            state=state,
            statuses=statuses,
            sha=sha,
            total_count=len(statuses),
            repository=repository,
            commit_url=f"{self.repo_url(repo)}/commits/{sha}",
            url=f"{self.repo_url(repo)}/commits/{sha}/status",
        )
        return data

    # ------------------------------------------------------------------ issues and PRs
    def issue(self, repo: str, item: dict[str, Any], comments: int) -> dict[str, Any]:
        number = int(item["number"])
        data = self.load("issue", repo)
        url = f"{self.repo_url(repo)}/issues/{number}"
        kind = "pull" if item["kind"] == "pull" else "issues"
        data.update(
            id=number,
            number=number,
            url=url,
            labels_url=f"{url}/labels{{/name}}",
            comments_url=f"{url}/comments",
            events_url=f"{url}/events",
            html_url=f"{self.web_url}/{repo}/{kind}/{number}",
            state=item["state"],
            title=item["title"],
            body=item.get("body", ""),
            user=self.user(item.get("author") or BOT_LOGIN),
            labels=[self.label(repo, name) for name in item.get("labels", [])],
            assignees=[self.user(login) for login in item.get("assignees", [])],
            comments=comments,
            created_at=_iso(item.get("created_at")),
            updated_at=_iso(item.get("updated_at")),
            closed_at=_iso(item.get("updated_at")) if item["state"] == "closed" else None,
        )
        if item["kind"] == "pull":
            data["pull_request"] = {
                "url": f"{self.repo_url(repo)}/pulls/{number}",
                "html_url": f"{self.web_url}/{repo}/pull/{number}",
                "diff_url": f"{self.web_url}/{repo}/pull/{number}.diff",
                "patch_url": f"{self.web_url}/{repo}/pull/{number}.patch",
            }
        return data

    def team(self, repo: str, name: str) -> dict[str, Any]:
        """A team (``org/slug``) as GitHub's requested_teams show it."""
        org, slug = name.split("/", 1)
        return {
            "id": abs(hash(name)) % 100_000,
            "name": slug,
            "slug": slug,
            "url": f"{self.api_url}/orgs/{org}/teams/{slug}",
            "html_url": f"{self.web_url}/orgs/{org}/teams/{slug}",
            "permission": "push",
            "privacy": "closed",
        }

    def label(self, repo: str, name: str) -> dict[str, Any]:
        data = self.load("label", repo)
        data.update(name=name, url=f"{self.repo_url(repo)}/labels/{name}", default=False)
        return data

    def pull(
        self,
        repo: str,
        item: dict[str, Any],
        head: dict[str, Any],
        base: dict[str, Any],
    ) -> dict[str, Any]:
        """``head`` and ``base``: {ref, sha, repo (a repository payload)}."""
        number = int(item["number"])
        data = self.load("pull_request", repo)
        url = f"{self.repo_url(repo)}/pulls/{number}"
        issue_url = f"{self.repo_url(repo)}/issues/{number}"
        data.update(
            id=number,
            number=number,
            url=url,
            html_url=f"{self.web_url}/{repo}/pull/{number}",
            diff_url=f"{self.web_url}/{repo}/pull/{number}.diff",
            patch_url=f"{self.web_url}/{repo}/pull/{number}.patch",
            issue_url=issue_url,
            commits_url=f"{url}/commits",
            review_comments_url=f"{url}/comments",
            comments_url=f"{issue_url}/comments",
            statuses_url=f"{self.repo_url(repo)}/statuses/{head['sha']}",
            state=item["state"],
            title=item["title"],
            body=item.get("body", ""),
            user=self.user(item.get("author") or BOT_LOGIN),
            created_at=_iso(item.get("created_at")),
            updated_at=_iso(item.get("updated_at")),
            closed_at=_iso(item.get("updated_at")) if item["state"] == "closed" else None,
            merge_commit_sha=None,
            draft=bool(item.get("draft")),
            assignees=[self.user(login) for login in item.get("assignees", [])],
            requested_reviewers=[self.user(login) for login in item.get("reviewers", [])],
            requested_teams=[self.team(repo, t) for t in item.get("team_reviewers", [])],
        )
        for side, info in (("head", head), ("base", base)):
            owner = str(info["repo"]["owner"]["login"])
            data[side] = {
                "label": f"{owner}:{info['ref']}",
                "ref": info["ref"],
                "sha": info["sha"],
                "user": info["repo"]["owner"],
                "repo": info["repo"],
            }
        return data

    def comment(self, repo: str, entry: dict[str, Any]) -> dict[str, Any]:
        data = self.load("issue_comment", repo)
        cid = int(entry["id"])
        number = int(entry["number"])
        data.update(
            id=cid,
            url=f"{self.repo_url(repo)}/issues/comments/{cid}",
            html_url=f"{self.web_url}/{repo}/issues/{number}#issuecomment-{cid}",
            issue_url=f"{self.repo_url(repo)}/issues/{number}",
            body=entry["body"],
            user=self.user(entry.get("author") or BOT_LOGIN),
            created_at=_iso(entry.get("created_at")),
            updated_at=_iso(entry.get("updated_at")),
        )
        return data

    def commit(self, repo: str, commit: dict[str, str]) -> dict[str, Any]:
        """A commit as ``GET /repos/{repo}/commits/{sha}`` shows it (git's author and
        committer; no GitHub user is matched to their e-mail)."""
        sha = commit["sha"]
        return {
            "sha": sha,
            "node_id": f"C_{sha[:20]}",
            "url": f"{self.repo_url(repo)}/commits/{sha}",
            "html_url": f"{self.web_url}/{repo}/commit/{sha}",
            "comments_url": f"{self.repo_url(repo)}/commits/{sha}/comments",
            "commit": {
                "url": f"{self.repo_url(repo)}/git/commits/{sha}",
                "author": {
                    "name": commit["author_name"],
                    "email": commit["author_email"],
                    "date": commit["authored_date"],
                },
                "committer": {
                    "name": commit["committer_name"],
                    "email": commit["committer_email"],
                    "date": commit["committed_date"],
                },
                "message": commit.get("message", "").rstrip("\n"),
                "comment_count": 0,
            },
            "author": None,
            "committer": None,
            "parents": [],
        }

    def content(self, repo: str, path: str, blob: bytes, ref: str) -> dict[str, Any]:
        import base64
        import hashlib

        data = self.load("content_file", repo)
        sha = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
        data.update(
            size=len(blob),
            name=path.rsplit("/", 1)[-1],
            path=path,
            sha=sha,
            content=base64.encodebytes(blob).decode("ascii"),
            url=f"{self.repo_url(repo)}/contents/{path}?ref={ref}",
            git_url=f"{self.repo_url(repo)}/git/blobs/{sha}",
            html_url=f"{self.web_url}/{repo}/blob/{ref}/{path}",
            download_url=None,
        )
        data["_links"] = {
            "git": data["git_url"],
            "self": data["url"],
            "html": data["html_url"],
        }
        return data

    def installation_token(self, token: str, expires_at: str) -> dict[str, Any]:
        data = self.load("installation_token")
        data.update(token=token, expires_at=expires_at)
        return data

    def error(self, message: str, status: int) -> dict[str, Any]:
        data = self.load("error")
        data.update(message=message, status=str(status))
        return data
