"""The local provider's runs seen as Jenkins builds.

Each repository ``owner/name`` is the multibranch Pipeline project ``name`` in the
organization folder ``owner``; its script path is the repository's first workflow file; each
branch of the repository is a branch job. Each attempt of a local run of that workflow is a
build of the branch job: attempt 1 a fresh build (caused by the push), attempt n the rebuild
of an earlier build of the run (caused by ``replay/rebuild`` or ``rebuild``). Build numbers
(per branch job) and queue ids (per server, growing) are given in the order the server first
sees the attempts, and kept for the server's life.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.actions.workflow import list_workflow_files
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.git import git
from cicd_orchestrator.models import Run

log = logging.getLogger(__name__)

FIRST_QUEUE_ID = 1001
DEFAULT_SCRIPT = ".github/workflows/ci.yml"


@dataclass
class BuildRecord:
    repo: str
    branch: str
    number: int
    queue_id: int
    run_id: int
    attempt: int
    cause: dict[str, Any]


@dataclass
class _Repo:
    script_path: str
    numbers: dict[str, int] = field(default_factory=dict)  # branch -> last build number


class BuildIndex:
    """Build numbers and queue ids of the local runs (thread-safe)."""

    def __init__(self, local: LocalProvider) -> None:
        self.local = local
        self.lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._builds: dict[tuple[str, int, int], BuildRecord] = {}
        self._by_number: dict[tuple[str, str, int], BuildRecord] = {}
        self._next_queue_id = FIRST_QUEUE_ID
        self.pending_causes: dict[tuple[str, int, int], dict[str, Any]] = {}

    def repositories(self) -> list[str]:
        return self.local.repositories()

    def _repo(self, repo: str) -> _Repo:
        if repo not in self._repos:
            self._repos[repo] = _Repo(self._script_path(repo))
        return self._repos[repo]

    def _script_path(self, repo: str) -> str:
        try:
            git_dir = self.local.repo_path(repo)
            default = self.local._default_branch(repo)
            files = list_workflow_files(git_dir, f"refs/heads/{default}")
        except CicdError as exc:
            log.info("no workflow file for %s: %s", repo, exc)
            return DEFAULT_SCRIPT
        return files[0] if files else DEFAULT_SCRIPT

    def script_path(self, repo: str) -> str:
        with self.lock:
            return self._repo(repo).script_path

    def branches(self, repo: str) -> list[str]:
        """Every branch of the repository (a branch job each), plus branches with builds."""
        out = git(
            ["for-each-ref", "--format=%(refname:short)", "refs/heads"], self.local.repo_path(repo)
        )
        names = {line.strip() for line in out.splitlines() if line.strip()}
        with self.lock:
            names |= {b.branch for b in self._builds.values() if b.repo == repo}
        return sorted(names)

    def branch_sha(self, repo: str, branch: str) -> str | None:
        return self.local._branch_sha(repo, branch)

    # ------------------------------------------------------------------ sync
    def sync(self, repo: str) -> None:
        """Give every new attempt of the repository's runs a build number and a queue id."""
        with self.lock:
            info = self._repo(repo)
            runs = sorted(self.local._list_runs(repo, None, None), key=lambda r: r.id)
            for run in runs:
                # a branch job builds pushes; a multibranch project's pull requests would be
                # jobs of their own (PR-<n>), which this server does not model
                if run.workflow_path != info.script_path or run.pull_request_number is not None:
                    continue
                for attempt in range(1, run.run_attempt + 1):
                    if (repo, run.id, attempt) not in self._builds:
                        self._allocate(repo, info, run, attempt)

    def _allocate(self, repo: str, info: _Repo, run: Run, attempt: int) -> None:
        branch = run.head_branch
        number = info.numbers.get(branch, 0) + 1
        info.numbers[branch] = number
        cause = self.pending_causes.pop((repo, run.id, attempt), None)
        if cause is None and attempt == 1:
            cause = {
                "_class": "jenkins.branch.BranchEventCause",
                "shortDescription": f"Push event to branch {branch}",
            }
        elif cause is None:
            previous = self._builds[(repo, run.id, attempt - 1)].number
            cause = replay_cause(previous)
        record = BuildRecord(repo, branch, number, self._next_queue_id, run.id, attempt, cause)
        self._next_queue_id += 1
        self._builds[(repo, run.id, attempt)] = record
        self._by_number[(repo, branch, number)] = record

    # ------------------------------------------------------------------ lookups
    def builds(self, repo: str, branch: str) -> list[BuildRecord]:
        """The builds of a branch job, newest first."""
        self.sync(repo)
        with self.lock:
            items = [b for b in self._builds.values() if b.repo == repo and b.branch == branch]
        return sorted(items, key=lambda b: b.number, reverse=True)

    def build(self, repo: str, branch: str, number: int) -> BuildRecord | None:
        self.sync(repo)
        with self.lock:
            return self._by_number.get((repo, branch, number))

    def by_queue_id(self, queue_id: int) -> BuildRecord | None:
        for repo in self.repositories():
            self.sync(repo)
        with self.lock:
            return next((b for b in self._builds.values() if b.queue_id == queue_id), None)

    def record_of(self, repo: str, run_id: int, attempt: int) -> BuildRecord | None:
        self.sync(repo)
        with self.lock:
            return self._builds.get((repo, run_id, attempt))

    def attempt_run(self, record: BuildRecord) -> Run:
        """The local run's attempt of a build, with its jobs."""
        return self.local._get_run(record.repo, record.run_id, record.attempt)

    def job_log(self, repo: str, job_id: int) -> str:
        path = self.local._data(repo) / "logs" / f"{int(job_id)}.log"
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


def replay_cause(number: int) -> dict[str, Any]:
    return {
        "_class": "org.jenkinsci.plugins.workflow.cps.replay.ReplayCause",
        "shortDescription": f"Replayed #{number}",
    }


def rebuild_cause(number: int, project: str, url: str) -> dict[str, Any]:
    return {
        "_class": "com.sonyericsson.rebuild.RebuildCause",
        "shortDescription": f"Rebuilds #{number}",
        "upstreamBuild": number,
        "upstreamProject": project,
        "upstreamUrl": url,
    }


def user_cause(user: str) -> dict[str, Any]:
    return {
        "_class": "hudson.model.Cause$UserIdCause",
        "shortDescription": f"Started by user {user}",
        "userId": user,
        "userName": user,
    }
