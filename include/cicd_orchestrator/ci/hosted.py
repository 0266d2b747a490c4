"""What the providers of a git hosting with an API (GitHub, GitLab) do the same way.

- The client is given, or made at first use by a function (``LazyClient``).
- Every operation is retried within a bounded back-off (``ci.retry``); the provider's
  classifier decides what is worth a retry.
- The protected branches are those the hosting protects plus its default branch; a push is
  never forced and never goes to the default branch, a branch the hosting or the
  configuration protects (``branches.check_push_allowed``), nor the branch of a pull request
  from a fork.
- Writes carry the orchestrator's hidden marker and are looked up by it first (pull requests,
  comments, issues), so a retried task updates what it wrote instead of duplicating it. Only
  the provider's own objects are looked at: those its user (``identity``) authored, and for
  a pull request, one whose head is the expected branch of the repository itself (not a
  fork); whatever somebody else wrote, marker or not, is left alone. A fix for a fork's pull
  request goes to a new pull request into the fork's base.

A provider says how its hosting names things (``pull_noun``...) and implements the hosting's
side of each step (the ``_`` methods below).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

from cicd_orchestrator import branches, git
from cicd_orchestrator.ci.base import CIProvider, LazyClient, same_user, signed, with_marker
from cicd_orchestrator.ci.credentials import git_credential_env
from cicd_orchestrator.ci.retry import BackoffPolicy, status_of, with_backoff
from cicd_orchestrator.constants import (
    BROKEN_CONCLUSIONS,
    STATUS_CONTEXT,
    CombinedState,
    Conclusion,
    RunStatus,
)
from cicd_orchestrator.exceptions import (
    ProviderError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
)
from cicd_orchestrator.git import GitRemote
from cicd_orchestrator.models import Issue, PullHead, PullRequest, Run
from cicd_orchestrator.redact import redact, register_secret

log = logging.getLogger(__name__)

ClientT = TypeVar("ClientT")
ItemT = TypeVar("ItemT")
T = TypeVar("T")


def find_marked(
    items: Iterable[ItemT], marker: str, text_of: Callable[[ItemT], str]
) -> ItemT | None:
    """The first of ``items`` whose text carries ``marker`` (what a retried write looks for);
    None for an unsigned marker (``ci.base.signed``)."""
    if not signed(marker):
        return None
    return next((item for item in items if marker in text_of(item)), None)


class HostedOptions(TypedDict, Generic[ClientT], total=False):
    """The settings every hosted provider takes (keyword arguments of its constructor)."""

    #: makes the client at the provider's first use (when no client is given)
    connect: Callable[[], ClientT] | None
    #: the token git uses (default: the client's)
    git_token: str | None
    #: seconds a request may take (the client is made with it)
    timeout: float
    #: how long and how often an operation is retried
    backoff: BackoffPolicy | None
    #: the largest job log read, in bytes
    max_log_bytes: int
    #: branch patterns never pushed to, besides those the hosting protects (None: defaults)
    protected_patterns: list[str] | None
    #: the user name git gives with the token
    git_username: str
    #: how the back-off waits (a test records the waits)
    sleep: Callable[[float], None]
    #: the login the provider writes as (default: asked of the hosting at first use)
    bot_login: str | None


@dataclass(frozen=True)
class OpenPull:
    """An open pull (merge) request as the shared rules see it; ``raw`` is the hosting's own
    object or payload."""

    number: int
    head: str
    base: str
    body: str
    fork: bool
    author: str = ""
    state: str = "open"
    #: the commit of its head branch (empty when the hosting did not say)
    head_sha: str = ""
    raw: Any = field(default=None, compare=False, repr=False)


class HostedProvider(CIProvider, Generic[ClientT]):
    """The shared half of the GitHub and GitLab providers (see the module docstring)."""

    #: the hosting's name in messages
    service: ClassVar[str] = "the hosting"
    #: what an error message adds to a 401 answer
    unauthorized_hint: ClassVar[str] = ""
    #: how the hosting names a pull request and refers to one by number
    pull_noun: ClassVar[str] = "pull request"
    pull_sigil: ClassVar[str] = "#"
    #: where the fix for a fork's pull request goes
    fork_fix: ClassVar[str] = "a new pull request in the base repository"
    comment_noun: ClassVar[str] = "comment"
    comment_sigil: ClassVar[str] = "#"
    #: whether a pull request's body is redacted like comments and issues are
    redacts_pull_body: ClassVar[bool] = True
    #: the field of a commit status that names its context, and its description's limit
    status_key: ClassVar[str] = "context"
    status_description_limit: ClassVar[int] = 140

    default_timeout: ClassVar[float] = 15.0
    default_git_username: ClassVar[str] = "git"

    def __init__(self, client: ClientT | None, options: HostedOptions[ClientT]) -> None:
        self._clients = LazyClient(client, options.get("connect"), self.name)
        self._git_token = options.get("git_token")
        self.timeout = options.get("timeout", self.default_timeout)
        self.backoff = options.get("backoff") or BackoffPolicy()
        self.max_log_bytes = options.get("max_log_bytes", 256 * 1024 * 1024)
        patterns = options.get("protected_patterns")
        self.protected_patterns = list(
            branches.DEFAULT_PROTECTED_PATTERNS if patterns is None else patterns
        )
        self.git_username = options.get("git_username", self.default_git_username)
        self._sleep = options.get("sleep", time.sleep)
        self._login = options.get("bot_login")
        self.calls = 0
        register_secret(self._git_token)

    @property
    def client(self) -> ClientT:
        return self._clients.get()

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        return with_backoff(fn, self.backoff, what, self._retry_delay, sleep=self._sleep)

    # ------------------------------------------------------------------ the hosting's side
    @abc.abstractmethod
    def _retry_delay(self, exc: BaseException, attempt: int, policy: BackoffPolicy) -> float | None:
        """The provider's classifier of errors (see ``ci.retry``)."""

    @abc.abstractmethod
    def _client_error(self) -> type[Exception]:
        """The base class of the client's errors (imported when an error is met)."""

    @abc.abstractmethod
    def _error_text(self, exc: Exception) -> str:
        """What the hosting said in an error answer."""

    @abc.abstractmethod
    def _failed_candidates(
        self, repo: str, branch: str, since_run_id: int, conclusions: frozenset[Conclusion]
    ) -> list[Run]:
        """Runs of ``branch`` that may have failed with one of ``conclusions``, listed as
        cheaply as the hosting allows (stopping at the cursor)."""

    @abc.abstractmethod
    def _default_branch(self, repo: str) -> str: ...

    @abc.abstractmethod
    def _protected_names(self, repo: str) -> list[str]:
        """The branches (or patterns) the hosting protects."""

    @abc.abstractmethod
    def _clone_url(self, repo: str) -> str: ...

    @abc.abstractmethod
    def _client_token(self) -> str:
        """The token the client authenticates with (git uses it when none was given)."""

    @abc.abstractmethod
    def _own_login(self) -> str:
        """The login of the user the client authenticates as."""

    @abc.abstractmethod
    def _get_branch(self, repo: str, branch: str) -> object:
        """Ask the hosting for a branch (a missing branch raises the client's 404)."""

    @abc.abstractmethod
    def _list_open_pulls(self, repo: str) -> list[OpenPull]: ...

    @abc.abstractmethod
    def _update_pull(
        self, repo: str, pull: OpenPull, title: str, body: str, draft: bool
    ) -> PullRequest: ...

    @abc.abstractmethod
    def _create_pull(
        self, repo: str, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest: ...

    @abc.abstractmethod
    def _get_pull(self, repo: str, number: int) -> OpenPull:
        """A pull request by number, whatever its state."""

    @abc.abstractmethod
    def _close_pull(self, repo: str, pull: OpenPull) -> None: ...

    @abc.abstractmethod
    def _status_value(self, state: CombinedState) -> str:
        """The hosting's name of a commit status' state."""

    @abc.abstractmethod
    def _post_status(self, repo: str, sha: str, body: dict[str, Any]) -> None:
        """Set a commit status (``body``: the hosting's fields)."""

    @abc.abstractmethod
    def _upsert_comment(self, repo: str, number: int, text: str, marker: str) -> None:
        """Update the comment of ``identity()`` carrying ``marker`` on ``number`` to
        ``text``, or add one."""

    @abc.abstractmethod
    def _upsert_issue(
        self, repo: str, title: str, text: str, marker: str, labels: list[str]
    ) -> Issue:
        """Update the open issue of ``identity()`` carrying ``marker``, or open one."""

    @contextlib.contextmanager
    def _errors(self, what: str, *, run: bool = False) -> Iterator[None]:
        """The client's errors as ProviderError (redacted); 404 as an unknown repository (or
        run, job, log when ``run``)."""
        try:
            yield
        except self._client_error() as exc:
            status = status_of(exc)
            detail = redact(f"{what}: {self.service} answered {status}: {self._error_text(exc)}")
            if status == 404:
                cls = UnknownRunError if run else UnknownRepositoryError
                raise cls(detail) from None
            if status == 401 and self.unauthorized_hint:
                raise ProviderError(f"{detail} {self.unauthorized_hint}") from None
            raise ProviderError(detail) from None

    # ------------------------------------------------------------------ repositories
    def default_branch(self, repo: str) -> str:
        self.count_call(repo)
        return self._default_branch(repo)

    def protected_branches(self, repo: str) -> list[str]:
        """Branches the hosting protects (wildcards included), plus the default branch."""
        self.count_call(repo)
        with self._errors(f"listing protected branches of {repo}"):
            names = self._retry(
                f"list protected branches of {repo}", lambda: self._protected_names(repo)
            )
            default = self._default_branch(repo)
        return names if default in names else [*names, default]

    def git_remote(self, repo: str) -> GitRemote:
        self.count_call(repo)
        url = self._clone_url(repo)
        token = self._git_token or self._client_token()
        return GitRemote(url=url, env=git_credential_env(token, self.git_username))

    def identity(self) -> str:
        """The login the provider writes as: the configured one, else the hosting's answer
        for the client's user (asked once)."""
        if not self._login:
            with self._errors(f"asking {self.service} who the client is"):
                self._login = self._retry("get the authenticated user", self._own_login)
        return self._login

    def _mine(self, author: str) -> bool:
        return same_user(author, self.identity())

    # ------------------------------------------------------------------ runs
    def list_failed_runs(
        self,
        repo: str,
        branch: str,
        since_run_id: int = 0,
        conclusions: frozenset[Conclusion] = BROKEN_CONCLUSIONS,
    ) -> list[Run]:
        """Completed runs of a branch with one of ``conclusions`` above the cursor, newest
        first; the listing stops at the cursor, so a sweep of a branch with nothing new stays
        cheap."""
        self.count_call(repo)
        runs = self._failed_candidates(repo, branch, since_run_id, conclusions)
        found = [
            r
            for r in runs
            if r.id > since_run_id
            and r.status is RunStatus.COMPLETED
            and r.conclusion in conclusions
        ]
        return sorted(found, key=lambda r: r.id, reverse=True)

    def _branch_exists(self, repo: str, branch: str) -> bool:
        try:
            self._retry(f"get branch {branch}", lambda: self._get_branch(repo, branch))
        except Exception as exc:
            if status_of(exc) == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ pushing
    def check_branch_allowed(self, repo: str, branch: str) -> None:
        """Raise SafetyError for a bad name, the default branch or a protected branch."""
        branches.check_push_allowed(
            repo,
            branch,
            self.default_branch(repo),
            [*self.protected_branches(repo), *self.protected_patterns],
        )

    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        """Push HEAD of ``workdir`` to ``branch`` of ``repo`` over HTTPS: never forced, never
        to the default or a protected branch, never to the branch of a fork's pull request."""
        self.count_call(repo)
        self.check_branch_allowed(repo, branch)
        fork = self.fork_pull_for_branch(repo, branch)
        if fork is not None:
            raise SafetyError(
                f"refusing to push to {branch!r}: it is the branch of {self.pull_noun} "
                f"{self.pull_sigil}{fork} from a fork; the fix goes to {self.fork_fix}"
            )
        remote = self.git_remote(repo)
        return self._retry(
            f"push {branch} to {repo}", lambda: git.push_head(remote, workdir, repo, branch)
        )

    # ------------------------------------------------------------------ forks
    def pull_request_head(self, repo: str, number: int) -> PullHead | None:
        """Where pull request ``number`` comes from; a fork's (or a deleted fork's) head is
        not the repository's own."""
        where = f"{self.pull_noun} {self.pull_sigil}{number} of {repo}"
        with self._errors(f"getting {where}"):
            pull = self._retry(f"get {where}", lambda: self._get_pull(repo, number))
        return PullHead(pull.number, pull.head, pull.head_sha, not pull.fork)

    def branch_head(self, repo: str, branch: str) -> str | None:
        """The commit ``branch`` points at now (None: no such branch)."""
        self.count_call(repo)
        with self._errors(f"getting branch {branch} of {repo}"):
            try:
                found = self._retry(f"get branch {branch}", lambda: self._get_branch(repo, branch))
            except Exception as exc:
                if status_of(exc) == 404:
                    return None
                raise
        return self._branch_sha_of(found) or None

    @staticmethod
    def _branch_sha_of(found: object) -> str:
        """The commit sha in what ``_get_branch`` answered."""
        return ""

    def _open_pulls(self, repo: str) -> list[OpenPull]:
        return self._retry(
            f"list open {self.pull_noun}s of {repo}", lambda: self._list_open_pulls(repo)
        )

    def fork_pull_for_branch(self, repo: str, branch: str) -> int | None:
        """The open pull request from a fork whose head branch is ``branch`` (and that is no
        branch of ``repo`` itself), or None."""
        with self._errors(f"listing {self.pull_noun}s of {repo}"):
            forks = [p for p in self._open_pulls(repo) if p.head == branch and p.fork]
            if not forks or self._branch_exists(repo, branch):
                return None
        return forks[0].number

    # ------------------------------------------------------------------ commit status
    def set_commit_status(
        self,
        repo: str,
        sha: str,
        state: CombinedState,
        description: str,
        target_url: str = "",
        context: str = STATUS_CONTEXT,
    ) -> None:
        """The commit status ``context`` (its description redacted and cut to the
        hosting's limit)."""
        self.count_call(repo)
        body: dict[str, Any] = {
            "state": self._status_value(CombinedState(state)),
            self.status_key: context,
            "description": redact(description)[: self.status_description_limit],
        }
        if target_url:
            body["target_url"] = target_url
        with self._errors(f"setting the status of {sha[:12]} in {repo}"):
            self._retry(f"set status of {sha[:12]}", lambda: self._post_status(repo, sha, body))

    # ------------------------------------------------------------------ marked writes
    @staticmethod
    def _marked(body: str, marker: str, what: str, *, redacted: bool = True) -> str:
        if not marker:
            raise ProviderError(f"{what} needs a marker (idempotency)")
        text = with_marker(body, marker)
        return redact(text) if redacted else text

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
        """One pull request per marker. A ``base`` that is the branch of a pull request from a
        fork is replaced by that pull request's base: the fix goes to the base repository."""
        self.count_call(repo)
        noun = self.pull_noun
        text = self._marked(body, marker, f"a {noun}", redacted=self.redacts_pull_body)
        with self._errors(f"opening a {noun} in {repo}"):
            return self._retry(
                f"open or update the {noun} of {head} in {repo}",
                lambda: self._upsert_pull(repo, head, base, (title, text, draft), marker),
            )

    def _upsert_pull(
        self, repo: str, head: str, base: str, content: tuple[str, str, bool], marker: str
    ) -> PullRequest:
        """``content``: the title, body and whether it is a draft."""
        title, body, draft = content
        pulls = self._open_pulls(repo)
        ours = [p for p in pulls if p.head == head and not p.fork and self._mine(p.author)]
        found = find_marked(ours, marker, lambda p: p.body)
        if found is not None:
            pull = self._update_pull(repo, found, title, body, draft)
            log.info("updated %s %s%s of %s", self.pull_noun, self.pull_sigil, found.number, repo)
            return pull
        fork = next((p for p in pulls if p.head == base and p.fork), None)
        if fork is not None and not self._branch_exists(repo, base):
            base = fork.base
            body = (
                f"Fixes the CI of {self.pull_sigil}{fork.number} (from a fork), proposed to "
                f"`{base}`.\n\n{body}"
            )
        pull = self._create_pull(repo, head, base, title, body, draft)
        log.info("opened %s %s%s of %s", self.pull_noun, self.pull_sigil, pull.number, repo)
        return pull

    def close_pull_request(self, repo: str, number: int, comment_body: str, marker: str) -> None:
        """Close the provider's own pull request ``number`` with a comment (see
        ``CIProvider.close_pull_request``)."""
        self.count_call(repo)
        where = f"{self.pull_noun} {self.pull_sigil}{number} of {repo}"
        with self._errors(f"reading {where}"):
            pull = self._retry(f"get {where}", lambda: self._get_pull(repo, number))
        if pull.fork or not self._mine(pull.author):
            raise SafetyError(
                f"refusing to close {where}: {pull.author or 'somebody else'} opened it, not "
                f"the orchestrator ({self.identity()})"
            )
        if pull.state != "open":
            log.info("%s is already %s", where, pull.state)
            return
        self.comment(repo, number, comment_body, marker)
        with self._errors(f"closing {where}"):
            self._retry(f"close {where}", lambda: self._close_pull(repo, pull))
        log.info("closed %s", where)

    def mark_ready_for_review(self, repo: str, number: int) -> PullRequest:
        """Mark the provider's own draft pull request ``number`` ready for review (see
        ``CIProvider.mark_ready_for_review``)."""
        self.count_call(repo)
        where = f"{self.pull_noun} {self.pull_sigil}{number} of {repo}"
        with self._errors(f"reading {where}"):
            pull = self._retry(f"get {where}", lambda: self._get_pull(repo, number))
        if pull.fork or not self._mine(pull.author):
            raise SafetyError(
                f"refusing to mark {where} ready for review: {pull.author or 'somebody else'} "
                f"opened it, not the orchestrator ({self.identity()})"
            )
        with self._errors(f"marking {where} ready for review"):
            ready = self._retry(
                f"mark {where} ready for review", lambda: self._mark_ready(repo, pull)
            )
        log.info("%s is ready for review", where)
        return ready

    @abc.abstractmethod
    def _mark_ready(self, repo: str, pull: OpenPull) -> PullRequest:
        """The hosting's side of ``mark_ready_for_review`` (a no-op for a pull request that
        is not a draft or not open); the pull request as it is afterwards."""

    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        """One comment per marker on pull request or issue ``number``, updated if it exists."""
        self.count_call(repo)
        text = self._marked(body, marker, f"a {self.comment_noun}")
        where = f"{self.comment_sigil}{number} of {repo}"
        with self._errors(f"commenting on {where}"):
            self._retry(
                f"comment on {where}", lambda: self._upsert_comment(repo, number, text, marker)
            )

    def set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str] | None = None,
        team_reviewers: list[str] | None = None,
    ) -> None:
        self.count_call(repo)
        where = f"{self.comment_sigil}{number} of {repo}"
        with self._errors(f"assigning owners to {where}"):
            self._retry(
                f"assign owners to {where}",
                lambda: self._set_owners(
                    repo, number, assignees, list(reviewers or []), list(team_reviewers or [])
                ),
            )

    def _set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str],
        team_reviewers: list[str],
    ) -> None:
        """The hosting's side of ``set_owners`` (a hosting without one says so)."""
        raise ProviderError(f"the {self.name} provider does not assign owners")

    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        self.count_call(repo)
        text = self._marked(body, marker, "an issue")
        wanted = list(labels or [])
        with self._errors(f"opening an issue in {repo}"):
            return self._retry(
                f"open or update the issue in {repo}",
                lambda: self._upsert_issue(repo, title, text, marker, wanted),
            )
