"""The one interface every CI provider implements (local, GitHub, ...).

The orchestration code receives a provider and calls only these methods, so the same loop
runs on the embedded local provider, against GitHub, or against a test server.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from cicd_orchestrator.constants import CombinedState
from cicd_orchestrator.models import Issue, PullRequest, RefStatus, Run


@dataclass(frozen=True)
class GitRemote:
    """Where to fetch and push a repository with git, and the environment git needs.

    Credentials travel in ``env`` (GIT_ASKPASS, an extra header...), never in ``url``.
    """

    url: str
    env: dict[str, str] = field(default_factory=dict, repr=False)


class CIProvider(abc.ABC):
    """A CI system and the git hosting behind it."""

    name: str = "abstract"

    # ---------------------------------------------------------------- repositories
    @abc.abstractmethod
    def default_branch(self, repo: str) -> str:
        """The repository's default branch."""

    @abc.abstractmethod
    def protected_branches(self, repo: str) -> list[str]:
        """Branches the hosting itself protects (added to the configured patterns)."""

    @abc.abstractmethod
    def git_remote(self, repo: str) -> GitRemote:
        """How git reaches the repository (fetch and push)."""

    # ---------------------------------------------------------------- runs
    @abc.abstractmethod
    def list_runs(
        self, repo: str, branch: str | None = None, head_sha: str | None = None
    ) -> list[Run]:
        """Runs of the repository, newest first, without jobs (filtering by branch / sha)."""

    def list_failed_runs(self, repo: str, branch: str, since_run_id: int = 0) -> list[Run]:
        """Completed, failed runs of a branch with an id above the cursor, newest first."""
        from cicd_orchestrator.constants import Conclusion, RunStatus

        bad = {Conclusion.FAILURE, Conclusion.TIMED_OUT}
        return [
            r
            for r in self.list_runs(repo, branch=branch)
            if r.id > since_run_id and r.status is RunStatus.COMPLETED and r.conclusion in bad
        ]

    @abc.abstractmethod
    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        """A run with its jobs and steps (the latest attempt unless ``attempt`` is given)."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        """The raw log of a job as a binary stream (it may be huge: read it streaming)."""

    @abc.abstractmethod
    def rerun_failed_jobs(self, repo: str, run_id: int) -> int:
        """Re-run the failed jobs of a run (and what needs them); returns the new attempt."""

    @abc.abstractmethod
    def ref_status(self, repo: str, sha: str) -> RefStatus:
        """Combined CI state of a commit."""

    # ---------------------------------------------------------------- writes
    @abc.abstractmethod
    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        """Push HEAD of the local clone ``workdir`` to ``branch`` (never forced); returns sha."""

    @abc.abstractmethod
    def open_or_update_pull_request(
        self, repo: str, head: str, base: str, title: str, body: str, marker: str
    ) -> PullRequest:
        """One pull request per marker: found and updated if it exists, created otherwise."""

    @abc.abstractmethod
    def set_commit_status(
        self, repo: str, sha: str, state: CombinedState, description: str, target_url: str = ""
    ) -> None:
        """Set the orchestrator's commit status (context ``cicd-orchestrator``)."""

    @abc.abstractmethod
    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        """One comment per marker on a pull request or issue, updated if it exists."""

    @abc.abstractmethod
    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        """One issue per marker: found and updated if it exists, created otherwise."""

    # ---------------------------------------------------------------- accounting
    calls: int = 0

    def count_call(self, repo: str | None = None) -> None:
        """Count one call to the CI system (benchmarks report the number of calls)."""
        self.calls += 1
