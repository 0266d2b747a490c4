"""The one interface every CI provider implements (local, GitHub, ...), and the rules every
provider applies the same way: how commit states combine, how a write carries its marker.

The orchestration code receives a provider and calls only these methods, so the same loop
runs on the embedded local provider, against GitHub, or against a test server.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Generic, TypeVar

from cicd_orchestrator.constants import (
    BROKEN_CONCLUSIONS,
    FAILED_CONCLUSIONS,
    MARKER_SIGNATURE,
    STATUS_CONTEXT,
    CombinedState,
    Conclusion,
    RunStatus,
)
from cicd_orchestrator.exceptions import ConfigError, ProviderError
from cicd_orchestrator.git import GitRemote
from cicd_orchestrator.models import Issue, PullHead, PullRequest, RefStatus, Run

ClientT = TypeVar("ClientT")


def combine_states(states: Iterable[CombinedState]) -> CombinedState:
    """The combined state of a commit from the states of its runs, checks and statuses:
    pending while one is, else failed when one failed, else green (none: no state at all)."""
    states = list(states)
    if not states:
        return CombinedState.NONE
    if CombinedState.PENDING in states:
        return CombinedState.PENDING
    if CombinedState.FAILURE in states:
        return CombinedState.FAILURE
    return CombinedState.SUCCESS


def run_state(run: Run) -> CombinedState:
    """What a run adds to its commit's combined state."""
    if run.status is not RunStatus.COMPLETED:
        return CombinedState.PENDING
    return CombinedState.FAILURE if run.conclusion in FAILED_CONCLUSIONS else CombinedState.SUCCESS


def with_marker(body: str, marker: str) -> str:
    """``body`` carrying the hidden ``marker`` a write is found by when it is retried."""
    return body if marker in body else f"{body}\n\n{marker}"


def same_user(a: str, b: str) -> bool:
    """Whether two logins name the same user (hostings compare them case-insensitively)."""
    return bool(a) and a.casefold() == b.casefold()


def signed(marker: str) -> bool:
    """Whether ``marker`` carries a signature (``publish.markers``). Only a signed marker
    finds an object to update, and only by the whole marker, signature included: a marker
    with another signature, or none, is not the one looked for. A write with an unsigned
    marker always makes a new object."""
    return MARKER_SIGNATURE in marker


class CIProvider(abc.ABC):
    """A CI system and the git hosting behind it."""

    name: str = "abstract"
    #: the longest body (of a pull request, a comment, an issue) the hosting takes, in
    #: characters (GitHub's: 65,536; what is published is cut well under it)
    body_limit: int = 65_536

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

    def list_failed_runs(
        self,
        repo: str,
        branch: str,
        since_run_id: int = 0,
        conclusions: frozenset[Conclusion] = BROKEN_CONCLUSIONS,
    ) -> list[Run]:
        """Completed runs of a branch with one of ``conclusions`` and an id above the cursor,
        newest first."""
        return [
            r
            for r in self.list_runs(repo, branch=branch)
            if r.id > since_run_id
            and r.status is RunStatus.COMPLETED
            and r.conclusion in conclusions
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

    @abc.abstractmethod
    def commit_author(self, repo: str, sha: str) -> str:
        """The e-mail address of the author of commit ``sha`` (the orchestrator's own
        commits are told apart by it; an unknown commit raises UnknownRunError)."""

    # ---------------------------------------------------------------- writes
    @abc.abstractmethod
    def identity(self) -> str:
        """Who the provider writes as on the hosting (a login). A pull request, comment or
        issue is adopted by its marker (updated, closed) only when this user authored it; a
        pull request only when its head is the expected branch of the repository itself."""

    @abc.abstractmethod
    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        """Push HEAD of the local clone ``workdir`` to ``branch`` (never forced); returns sha."""

    @abc.abstractmethod
    def open_or_update_pull_request(
        self,
        repo: str,
        head: str,
        base: str,
        title: str,
        body: str,
        marker: str,
        draft: bool = False,
    ) -> PullRequest:
        """One pull request per marker: found and updated if it exists (opened by
        ``identity()`` from ``head`` of the repository itself, not a fork), created
        otherwise; ``draft``: it is opened as a draft."""

    @abc.abstractmethod
    def close_pull_request(self, repo: str, number: int, comment_body: str, marker: str) -> None:
        """Close pull request ``number`` with a comment (one per marker) saying why. Only a
        pull request ``identity()`` opened from a branch of the repository itself is closed
        (SafetyError otherwise); one that is already closed or merged is left as it is, so a
        retry does nothing twice."""

    @abc.abstractmethod
    def mark_ready_for_review(self, repo: str, number: int) -> PullRequest:
        """Mark the draft pull request ``number`` ready for review (once the real CI is green
        on a fix it verifies). Only a pull request ``identity()`` opened from a branch of the
        repository itself is changed (SafetyError otherwise); one that is not a draft, or no
        longer open, is left as it is, so a retry does nothing twice. Returns it as it is
        now."""

    def workflows_for(
        self,
        repo: str,
        sha: str,
        event: str = "push",
        branch: str | None = None,
        base_branch: str | None = None,
    ) -> list[str] | None:
        """The workflows (paths) of ``sha`` that ``event`` (on ``branch``; a pull request's
        into ``base_branch``) starts, by their triggers and branch filters; an empty list:
        that event gets no CI at all; None when the provider cannot tell (the monitor then
        waits ``ci_no_run_grace`` for a run to appear)."""
        return None

    def pull_request_head(self, repo: str, number: int) -> PullHead | None:
        """Where pull request ``number`` comes from (its head branch and commit, and whether
        that branch is of ``repo`` itself or of a fork); None when the provider cannot
        tell (a fix then never goes onto the pull request's own branch)."""
        return None

    def branch_head(self, repo: str, branch: str) -> str | None:
        """The commit ``branch`` of ``repo`` points at now, or None (no such branch, or the
        provider cannot tell)."""
        return None

    @abc.abstractmethod
    def set_commit_status(
        self,
        repo: str,
        sha: str,
        state: CombinedState,
        description: str,
        target_url: str = "",
        context: str = STATUS_CONTEXT,
    ) -> None:
        """Set one of the orchestrator's commit statuses: ``cicd-orchestrator`` (the fix's,
        the default) or ``cicd-orchestrator/session`` (the failing commit's); the latest of a
        context replaces the earlier one. Neither counts in ``ref_status``."""

    @abc.abstractmethod
    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        """One comment per marker on a pull request or issue, updated if it exists (written
        by ``identity()``)."""

    @abc.abstractmethod
    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        """One issue per marker: found and updated if it exists (opened by ``identity()``),
        created otherwise."""

    def set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str] | None = None,
        team_reviewers: list[str] | None = None,
    ) -> None:
        """Assign ``assignees`` to the pull request or issue ``number`` and ask ``reviewers``
        and ``team_reviewers`` (``org/team``) to review it (a pull request only); who is
        already there stays. ProviderError where the hosting's provider cannot."""
        raise ProviderError(f"the {self.name} provider does not assign owners")

    # ---------------------------------------------------------------- accounting
    calls: int = 0

    def count_call(self, repo: str | None = None) -> None:
        """Count one call to the CI system (benchmarks report the number of calls)."""
        self.calls += 1


class LazyClient(Generic[ClientT]):
    """A provider's API client: the one it was given, or the one ``connect`` makes at first
    use (so that a connection is only resolved when the provider is used)."""

    def __init__(
        self, client: ClientT | None, connect: Callable[[], ClientT] | None, provider: str
    ) -> None:
        self._client = client
        self._connect = connect
        self._provider = provider

    def get(self) -> ClientT:
        if self._client is None:
            self._client = self._make()
        return self._client

    def _make(self) -> ClientT:
        if self._connect is None:
            raise ConfigError(
                f"the {self._provider} provider has no client: give it a client, or a function "
                "that makes one (make_provider does, from the configured connection)"
            )
        return self._connect()
