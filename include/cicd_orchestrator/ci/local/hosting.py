"""The hosting objects of the local provider: pull requests and issues (one numbering, as on
GitHub), comments, and commit statuses. Opening a pull request starts its runs
(:mod:`~cicd_orchestrator.ci.local.events`).

A body longer than GitHub takes (``body_limit``) is refused, as GitHub refuses it.

Pull requests, issues and comments are idempotent by a signed marker in their body: opening
one whose marker an open one of the provider's user (``identity``) already carries updates
that one (a pull request: from the same head branch). Each records who wrote it
(``author``). A commit status is kept per sha and context (the latest wins).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator.actions.results import utc_now
from cicd_orchestrator.ci.base import same_user, signed, with_marker
from cicd_orchestrator.ci.local import store
from cicd_orchestrator.ci.local.repositories import LocalRepositories
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState
from cicd_orchestrator.exceptions import ProviderError, SafetyError
from cicd_orchestrator.models import Issue, PullHead, PullRequest
from cicd_orchestrator.serde import from_json_obj, to_json_obj

PULL, ISSUE = "pull", "issue"


@dataclass
class LocalPullRequest(PullRequest):
    body: str = ""
    author: str = ""
    created_at: str = ""
    updated_at: str = ""


@dataclass
class LocalIssue(Issue):
    body: str = ""
    author: str = ""
    labels: list[str] = dataclasses.field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""


@dataclass
class Comment:
    id: int
    number: int
    body: str
    url: str
    created_at: str = ""
    updated_at: str = ""
    author: str = ""


@dataclass
class CommitStatus:
    sha: str
    context: str
    state: CombinedState
    description: str = ""
    target_url: str = ""
    created_at: str = ""


class LocalHosting(LocalRepositories):
    """Pull requests, issues, comments and commit statuses of the local repositories."""

    # ------------------------------------------------------------------ issues and PRs
    def _issues_file(self, repo: str) -> Path:
        return self._data(repo) / "issues.json"

    def _items(self, repo: str) -> list[dict[str, Any]]:
        data = store.read_json(self._issues_file(repo), {"items": []})
        return list(data.get("items", []))

    def _items_of(self, repo: str, kind: str, state: str | None) -> list[dict[str, Any]]:
        return [
            i
            for i in self._items(repo)
            if i["kind"] == kind and (state is None or i["state"] == state)
        ]

    def _item(self, repo: str, number: int, kind: str | None = None) -> dict[str, Any]:
        """Issue or pull request ``number`` (of ``kind`` when given)."""
        for item in self._items(repo):
            if item["number"] == number and kind in (None, item["kind"]):
                return item
        what = "pull request" if kind == PULL else "issue or pull request"
        raise ProviderError(f"no {what} #{number} in {repo}")

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
        self.count_call(repo)
        for branch in (head, base):
            if self._branch_sha(repo, branch) is None:
                raise ProviderError(f"branch {branch!r} does not exist in {repo}")
        if not marker:
            raise ProviderError("a pull request needs a marker (idempotency)")
        fields: dict[str, Any] = {"head": head, "base": base, "title": title, "draft": draft}
        fields["body"] = self._body(body, marker)
        known = {i["number"] for i in self._items(repo)}
        item = self._upsert(repo, PULL, marker, fields, lambda i: i["head"] == head)
        if item["number"] not in known:
            self._pull_request_opened(repo, item)
        return _to_pull(item)

    def _pull_request_opened(self, repo: str, item: dict[str, Any]) -> None:
        """A pull request was opened (the provider starts its ``pull_request`` runs)."""

    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        self.count_call(repo)
        if not marker:
            raise ProviderError("an issue needs a marker (idempotency)")
        fields = {"title": title, "body": self._body(body, marker), "labels": list(labels or [])}
        return _to_issue(self._upsert(repo, ISSUE, marker, fields))

    def _body(self, body: str, marker: str) -> str:
        """``body`` with its marker; ProviderError when it is longer than a body may be."""
        text = with_marker(body, marker)
        if len(text) > self.body_limit:
            raise ProviderError(
                f"body is too long ({len(text):,} characters; the maximum is {self.body_limit:,})"
            )
        return text

    def _upsert(
        self,
        repo: str,
        kind: str,
        marker: str,
        fields: dict[str, Any],
        also: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Update the open item of ``kind`` that the provider's user wrote, whose body carries
        the (signed) ``marker`` and that ``also`` accepts; else add one (``fields`` may name
        another ``author``)."""
        now = utc_now()
        me = self.identity()

        def ours(item: dict[str, Any]) -> bool:
            return (
                item["kind"] == kind
                and item["state"] == "open"
                and same_user(str(item.get("author") or ""), me)
                and marker in item["body"]
                and (also is None or also(item))
            )

        def upsert(data: dict[str, Any]) -> dict[str, Any]:
            items = data.setdefault("items", [])
            found = next((i for i in items if ours(i)), None) if signed(marker) else None
            if found is not None:
                found.update(fields)
                found["updated_at"] = now
                return dict(found)
            number = int(data.get("last_number", 0)) + 1
            data["last_number"] = number
            item = {
                "kind": kind,
                "number": number,
                "state": "open",
                "author": me,
                "url": self._url(repo, "pull" if kind == PULL else "issues", number),
                "created_at": now,
                "updated_at": now,
                **fields,
            }
            items.append(item)
            return dict(item)

        return store.update_json(self._issues_file(repo), upsert, default={"items": []})

    def close_pull_request(self, repo: str, number: int, comment_body: str, marker: str) -> None:
        self.count_call(repo)
        item = self._item(repo, number, PULL)
        if not same_user(str(item.get("author") or ""), self.identity()):
            raise SafetyError(
                f"refusing to close pull request #{number} of {repo}: "
                f"{item.get('author') or 'somebody else'} opened it, not {self.identity()}"
            )
        if item["state"] != "open":
            return
        self.comment(repo, number, comment_body, marker)
        self.close(repo, number)

    def mark_ready_for_review(self, repo: str, number: int) -> PullRequest:
        self.count_call(repo)
        item = self._item(repo, number, PULL)
        if not same_user(str(item.get("author") or ""), self.identity()):
            raise SafetyError(
                f"refusing to mark pull request #{number} of {repo} ready for review: "
                f"{item.get('author') or 'somebody else'} opened it, not {self.identity()}"
            )
        if item["state"] != "open" or not item.get("draft"):
            return _to_pull(item)

        def ready(data: dict[str, Any]) -> dict[str, Any]:
            found = next(i for i in data.get("items", []) if i["number"] == number)
            found.update(draft=False, updated_at=utc_now())
            return dict(found)

        return _to_pull(store.update_json(self._issues_file(repo), ready, default={"items": []}))

    def close(self, repo: str, number: int) -> None:
        """Close an issue or a pull request."""
        self.count_call(repo)

        def close(data: dict[str, Any]) -> None:
            for item in data.get("items", []):
                if item["number"] == number:
                    item["state"] = "closed"
                    item["updated_at"] = utc_now()
                    return
            raise ProviderError(f"no issue or pull request #{number} in {repo}")

        store.update_json(self._issues_file(repo), close, default={"items": []})

    def list_pull_requests(self, repo: str, state: str | None = None) -> list[LocalPullRequest]:
        self.count_call(repo)
        return [_to_pull(i) for i in self._items_of(repo, PULL, state)]

    def list_issues(self, repo: str, state: str | None = None) -> list[LocalIssue]:
        self.count_call(repo)
        return [_to_issue(i) for i in self._items_of(repo, ISSUE, state)]

    def get_issue(self, repo: str, number: int) -> LocalIssue:
        """An issue (or a pull request, seen as an issue, as on GitHub) by number."""
        self.count_call(repo)
        return _to_issue(self._item(repo, number))

    def get_pull_request(self, repo: str, number: int) -> LocalPullRequest:
        self.count_call(repo)
        return _to_pull(self._item(repo, number, PULL))

    def pull_request_head(self, repo: str, number: int) -> PullHead | None:
        """A local pull request's head is always a branch of the repository itself."""
        pull = self.get_pull_request(repo, number)
        return PullHead(number, pull.head, self._branch_sha(repo, pull.head) or "", True)

    def branch_head(self, repo: str, branch: str) -> str | None:
        self.count_call(repo)
        return self._branch_sha(repo, branch)

    def set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str] | None = None,
        team_reviewers: list[str] | None = None,
    ) -> None:
        """Kept on the item (``assignees``, ``reviewers``, ``team_reviewers``), added to what is
        there; reviewers only on a pull request."""
        self.count_call(repo)
        item = self._item(repo, number)
        if item["kind"] != PULL and (reviewers or team_reviewers):
            raise ProviderError(f"#{number} of {repo} is an issue: it has no reviewers")

        def add(data: dict[str, Any]) -> None:
            for entry in data.get("items", []):
                if entry["number"] != number:
                    continue
                for key, names in (
                    ("assignees", assignees),
                    ("reviewers", reviewers or []),
                    ("team_reviewers", team_reviewers or []),
                ):
                    entry[key] = list(dict.fromkeys([*entry.get(key, []), *names]))

        store.update_json(self._issues_file(repo), add, default={"items": []})

    def owners(self, repo: str, number: int) -> dict[str, list[str]]:
        """The assignees, reviewers and team reviewers of item ``number``."""
        item = self._item(repo, number)
        return {k: list(item.get(k, [])) for k in ("assignees", "reviewers", "team_reviewers")}

    # ------------------------------------------------------------------ comments
    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        self.count_call(repo)
        self._item(repo, number)
        if not marker:
            raise ProviderError("a comment needs a marker (idempotency)")
        text = self._body(body, marker)
        now = utc_now()
        me = self.identity()

        def ours(c: dict[str, Any]) -> bool:
            mine = same_user(str(c.get("author") or ""), me)
            return c["number"] == number and mine and marker in c["body"]

        def upsert(data: dict[str, Any]) -> None:
            items = data.setdefault("items", [])
            found = next((c for c in items if ours(c)), None) if signed(marker) else None
            if found is not None:
                found.update(body=text, updated_at=now)
                return
            cid = self._counter("comment")
            url = self._url(repo, "issues", number) + f"#issuecomment-{cid}"
            items.append(to_json_obj(Comment(cid, number, text, url, now, now, me)))

        store.update_json(self._data(repo) / "comments.json", upsert, default={"items": []})

    def list_comments(self, repo: str, number: int) -> list[Comment]:
        self.count_call(repo)
        data = store.read_json(self._data(repo) / "comments.json", {"items": []})
        return [from_json_obj(Comment, c) for c in data["items"] if c["number"] == number]

    # ------------------------------------------------------------------ commit statuses
    def set_commit_status(
        self,
        repo: str,
        sha: str,
        state: CombinedState,
        description: str,
        target_url: str = "",
        context: str = STATUS_CONTEXT,
    ) -> None:
        self.count_call(repo)
        self._put_status(repo, sha, context, CombinedState(state), description, target_url)

    def add_commit_status(
        self,
        repo: str,
        sha: str,
        context: str,
        state: CombinedState,
        description: str = "",
        target_url: str = "",
    ) -> None:
        """A commit status of another context (an external check); it counts in ref_status."""
        self.count_call(repo)
        self._put_status(repo, sha, context, CombinedState(state), description, target_url)

    def _put_status(
        self, repo: str, sha: str, context: str, state: CombinedState, description: str, url: str
    ) -> None:
        entry = CommitStatus(sha, context, state, description[:140], url, utc_now())

        def put(data: dict[str, list[Any]]) -> None:
            items = [s for s in data.get(sha, []) if s.get("context") != context]
            data[sha] = [*items, to_json_obj(entry)]

        store.update_json(self._data(repo) / "statuses.json", put, default={})

    def commit_statuses(self, repo: str, sha: str) -> list[CommitStatus]:
        """The commit statuses of a sha (the latest per context)."""
        self.count_call(repo)
        return self._statuses(repo, sha)

    def _statuses(self, repo: str, sha: str) -> list[CommitStatus]:
        data = store.read_json(self._data(repo) / "statuses.json", {})
        return [from_json_obj(CommitStatus, s) for s in data.get(sha, [])]


def _to_pull(item: dict[str, Any]) -> LocalPullRequest:
    return LocalPullRequest(
        number=int(item["number"]),
        head=item["head"],
        base=item["base"],
        title=item["title"],
        url=item["url"],
        state=item["state"],
        draft=bool(item.get("draft")),
        body=item.get("body", ""),
        author=str(item.get("author") or ""),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
    )


def _to_issue(item: dict[str, Any]) -> LocalIssue:
    return LocalIssue(
        number=int(item["number"]),
        title=item["title"],
        url=item["url"],
        state=item["state"],
        body=item.get("body", ""),
        author=str(item.get("author") or ""),
        labels=list(item.get("labels", [])),
        created_at=item.get("created_at", ""),
        updated_at=item.get("updated_at", ""),
    )
