"""What the Jenkins-compatible server shows of its jobs and builds: what a ``/job/...`` path
names (``Target``), and the JSON of the controller, folders, multibranch projects, branch and
Pipeline jobs, builds and queue items, the job configuration and the console of a build, all
from the local provider's runs (``model.BuildIndex``) and the documented examples
(``payloads``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from cicd_devkit.loopback import Answer
from cicd_devkit.servers.jenkins import payloads as p
from cicd_devkit.servers.jenkins.console import Rendered, millis, render
from cicd_devkit.servers.jenkins.model import BuildIndex, BuildRecord
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import RunStatus


@dataclass(frozen=True)
class Target:
    """What a ``/job/...`` path names."""

    kind: str  # folder | project | branch | pipeline
    path: str  # the job's URL path, with slashes
    repo: str = ""
    owner: str = ""
    branch: str = ""
    name: str = ""  # python-jenkins full name


def json_answer(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(data).encode("utf-8")
    return Answer(
        status, body, {"Content-Type": "application/json;charset=utf-8", **(headers or {})}
    )


def text_answer(status: int, text: str, ctype: str = "text/plain;charset=utf-8") -> Answer:
    return Answer(status, text.encode("utf-8"), {"Content-Type": ctype})


def error_page(status: int, message: str) -> Answer:
    page = (
        f"<html><head><title>Error {status} {message}</title></head>"
        f"<body><h2>HTTP ERROR {status} {message}</h2></body></html>"
    )
    return text_answer(status, page, "text/html;charset=utf-8")


NOT_FOUND = error_page(404, "Not Found")


class JobViews:
    """The read side of ``JenkinsServer`` (its base): it needs the server's ``url``, the
    ``local`` provider, the build ``index``, the ``standalone`` jobs and the ``git_url``."""

    local: LocalProvider
    index: BuildIndex
    standalone: dict[str, tuple[str, str]]
    git_url: str | None
    url: str  # the controller's URL (the server's)

    def job_url(self, repo: str, branch: str | None = None) -> str:
        owner, name = repo.split("/", 1)
        path = f"job/{quote(owner, safe='')}/job/{quote(name, safe='')}/"
        if branch is not None:
            path += f"job/{quote(quote(branch, safe=''), safe='')}/"
        return self.url + path

    def _target(self, names: list[str]) -> Target | None:
        """What the job names of a path (``/job/a/job/b/`` -> ``["a", "b"]``) name."""
        repos = set(self.index.repositories())
        if len(names) == 1 and names[0] in self.standalone:
            repo, branch = self.standalone[names[0]]
            path = f"/job/{quote(names[0], safe='')}/"
            return Target("pipeline", path, repo, repo.split("/")[0], branch, names[0])
        if len(names) == 1 and any(r.split("/")[0] == names[0] for r in repos):
            return Target(
                "folder", f"/job/{quote(names[0], safe='')}/", owner=names[0], name=names[0]
            )
        if len(names) >= 2 and f"{names[0]}/{names[1]}" in repos:
            repo = f"{names[0]}/{names[1]}"
            path = f"/job/{quote(names[0], safe='')}/job/{quote(names[1], safe='')}/"
            if len(names) == 2:
                return Target("project", path, repo, names[0], name=repo)
            if len(names) == 3:
                branch = unquote(names[2])
                if branch in self.index.branches(repo):
                    path += f"job/{quote(names[2], safe='')}/"
                    return Target("branch", path, repo, names[0], branch, f"{repo}/{names[2]}")
        return None

    # ------------------------------------------------------------------ payloads
    def _root(self, deep: bool) -> dict[str, Any]:
        """The controller; with a ``tree`` query the folders' jobs are nested (as Jenkins
        expands them for ``jobs[name,jobs[...]]``)."""
        data = p.fixture("hudson", self.url)
        owners = sorted({r.split("/")[0] for r in self.index.repositories()})
        data["jobs"] = [
            {
                "_class": p.ORG_FOLDER,
                "name": o,
                "url": f"{self.url}job/{quote(o, safe='')}/",
                "color": "blue",
                **({"jobs": self._projects_of(o, deep)} if deep else {}),
            }
            for o in owners
        ] + [
            {
                "_class": p.WORKFLOW_JOB,
                "name": n,
                "url": f"{self.url}job/{quote(n, safe='')}/",
                "color": "blue",
            }
            for n in sorted(self.standalone)
        ]
        return data

    def _projects_of(self, owner: str, deep: bool) -> list[dict[str, Any]]:
        repos = sorted(r for r in self.index.repositories() if r.split("/")[0] == owner)
        out = []
        for repo in repos:
            entry: dict[str, Any] = {
                "_class": p.MULTIBRANCH,
                "name": repo.split("/", 1)[1],
                "url": self.job_url(repo),
                "color": "blue",
            }
            if deep:
                entry["jobs"] = [
                    {
                        "_class": p.WORKFLOW_JOB,
                        "name": quote(b, safe=""),
                        "url": self.job_url(repo, b),
                        "color": "blue",
                    }
                    for b in self.index.branches(repo)
                ]
            out.append(entry)
        return out

    def _abs(self, path: str) -> str:
        return self.url + path.lstrip("/")

    def _job_payload(self, target: Target, deep: bool) -> dict[str, Any]:
        if target.kind == "folder":
            data = p.fixture("organization_folder", self.url)
            data["jobs"] = self._projects_of(target.owner, deep)
            data.update(
                name=target.owner,
                fullName=target.owner,
                displayName=target.owner,
                fullDisplayName=target.owner,
                url=self._abs(target.path),
            )
            return data
        if target.kind == "project":
            data = p.fixture("multibranch_project", self.url)
            name = target.repo.split("/", 1)[1]
            data["jobs"] = [
                self._branch_job(
                    Target(
                        "branch",
                        f"{target.path}job/{quote(quote(b, safe=''), safe='')}/",
                        target.repo,
                        target.owner,
                        b,
                        f"{target.repo}/{quote(b, safe='')}",
                    ),
                    nested=True,
                )
                for b in self.index.branches(target.repo)
            ]
            data.update(
                name=name,
                fullName=target.repo,
                displayName=name,
                fullDisplayName=f"{target.owner} » {name}",
                url=self._abs(target.path),
            )
            data["primaryView"]["url"] = data["views"][0]["url"] = self._abs(target.path)
            return data
        return self._branch_job(target, nested=False)

    def _branch_job(self, target: Target, nested: bool) -> dict[str, Any]:
        builds = self.index.builds(target.repo, target.branch)
        runs = {b.queue_id: self.index.attempt_run(b) for b in builds}
        full = [self._build_payload(target, b, runs[b.queue_id]) for b in builds]
        url = self._abs(target.path)
        short = target.name.rsplit("/", 1)[-1]
        if nested:  # depth 0 inside the project: the job's summary (builds for a tree query)
            last = full[0] if full else None
            return {
                "_class": p.WORKFLOW_JOB,
                "name": short,
                "url": url,
                "color": p.color_of(
                    last["result"] if last else None, bool(last and last["building"])
                ),
                "displayName": target.branch,
                "builds": full,
            }
        data = p.fixture("workflow_job", self.url)

        def ref(b: dict[str, Any] | None) -> dict[str, Any] | None:
            return p.build_ref(b["url"], b["number"]) if b else None

        def first(pred: Any) -> dict[str, Any] | None:
            return next((b for b in full if pred(b)), None)

        last = full[0] if full else None
        data.update(
            name=short,
            displayName=target.branch,
            fullName=target.name,
            fullDisplayName=" » ".join([*target.repo.split("/"), target.branch])
            if target.kind == "branch"
            else target.name,
            url=url,
            builds=full,
            color=p.color_of(last["result"] if last else None, bool(last and last["building"])),
            firstBuild=ref(full[-1] if full else None),
            lastBuild=ref(last),
            lastCompletedBuild=ref(first(lambda b: not b["building"])),
            lastFailedBuild=ref(first(lambda b: b["result"] == "FAILURE")),
            lastStableBuild=ref(first(lambda b: b["result"] == "SUCCESS")),
            lastSuccessfulBuild=ref(first(lambda b: b["result"] in ("SUCCESS", "UNSTABLE"))),
            lastUnstableBuild=ref(first(lambda b: b["result"] == "UNSTABLE")),
            lastUnsuccessfulBuild=ref(first(lambda b: b["result"] not in (None, "SUCCESS"))),
            nextBuildNumber=(last["number"] + 1) if last else 1,
            inQueue=False,
        )
        if target.kind == "pipeline":
            data["property"] = []
        return data

    def _remote(self, repo: str) -> str:
        return f"{self.git_url.rstrip('/')}/{repo}.git" if self.git_url else f"local://{repo}"

    @staticmethod
    def _timestamp(record: BuildRecord, run: Any) -> int:
        jobs = [millis(j.started_at) for j in run.jobs if j.started_at]
        return min(jobs) if jobs else millis(run.updated_at or run.created_at)

    @staticmethod
    def _duration(run: Any) -> int:
        if run.status is not RunStatus.COMPLETED:
            return 0
        starts = [millis(j.started_at) for j in run.jobs if j.started_at]
        ends = [millis(j.completed_at) for j in run.jobs if j.completed_at]
        return max(1, max(ends) - min(starts)) if starts and ends else 1

    def _build_payload(
        self, target: Target, record: BuildRecord, run: Any = None
    ) -> dict[str, Any]:
        run = run or self.index.attempt_run(record)
        building = run.status is not RunStatus.COMPLETED
        result = None if building else p.result_of(run.conclusion)
        builds = {b.number for b in self.index.builds(target.repo, target.branch)}
        url = self._abs(f"{target.path}{record.number}/")
        previous = record.number - 1 if record.number - 1 in builds else None
        following = record.number + 1 if record.number + 1 in builds else None
        return p.build_payload(
            self.url,
            url=url,
            full_display=" » ".join([*target.repo.split("/"), target.branch]),
            number=record.number,
            queue_id=record.queue_id,
            cause=record.cause,
            sha=run.head_sha,
            branch=target.branch,
            remote=self._remote(target.repo),
            building=building,
            result=result,
            timestamp=self._timestamp(record, run),
            duration=self._duration(run),
            previous=p.build_ref(self._abs(f"{target.path}{previous}/"), previous)
            if previous
            else None,
            following=p.build_ref(self._abs(f"{target.path}{following}/"), following)
            if following
            else None,
        )

    def _render(self, target: Target, record: BuildRecord, run: Any = None) -> Rendered:
        run = run or self.index.attempt_run(record)
        workspace = "/var/jenkins_home/workspace/" + re.sub(r"[^\w.-]", "_", target.name)[-60:]
        return render(
            run,
            lambda job: self.index.job_log(target.repo, job.id),
            cause=str(record.cause.get("shortDescription") or "Started"),
            script_path=self.index.script_path(target.repo),
            remote=self._remote(target.repo),
            workspace=workspace,
        )

    def _config(self, target: Target) -> Answer:
        script = self.index.script_path(target.repo)
        remote = self._remote(target.repo)
        if target.kind == "project":
            text = p.config_xml(
                "multibranch",
                source_id=hashlib.sha1(target.repo.encode()).hexdigest()[:12],
                remote=remote,
                script_path=script,
            )
        else:
            text = p.config_xml("pipeline", remote=remote, branch=target.branch, script_path=script)
        return text_answer(200, text, "application/xml;charset=utf-8")

    def _queue_item(self, ident: str) -> Answer:
        record = self.index.by_queue_id(int(ident)) if ident.isdigit() else None
        if record is None:
            return NOT_FOUND
        data = p.fixture("queue_item", self.url)
        target = self._target([*record.repo.split("/"), quote(record.branch, safe="")])
        if target is None:
            return NOT_FOUND
        data["actions"][0]["causes"] = [record.cause]
        data.update(id=record.queue_id, url=f"queue/item/{record.queue_id}/")
        data["task"].update(name=target.name.rsplit("/", 1)[-1], url=self._abs(target.path))
        data["executable"].update(
            number=record.number, url=self._abs(f"{target.path}{record.number}/")
        )
        return json_answer(200, data)
