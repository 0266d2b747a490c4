"""What the GitHub- and GitLab-compatible servers need of the local provider beyond its public
interface.

A hosting creates a new pull request, issue or comment on every POST and edits one by number
or id; the local provider's own writes are idempotent by marker (as the orchestrator's are).
To model the hosting faithfully (so the providers' marker lookups are really tested), the
servers write the local provider's JSON store directly, in the same record format and under
the same locks.
"""

from __future__ import annotations

import logging
import subprocess
import uuid
from pathlib import Path
from typing import Any

from cicd_orchestrator.actions.results import utc_now
from cicd_orchestrator.ci.local import store
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.git import env as git_env

log = logging.getLogger(__name__)


class Backend:
    """Issues, pull requests, comments and git data of a local provider, as a hosting keeps
    them."""

    def __init__(self, local: LocalProvider) -> None:
        self.local = local

    # ------------------------------------------------------------------ items
    def _issues_file(self, repo: str) -> Path:
        return self.local._data(repo) / "issues.json"

    def _comments_file(self, repo: str) -> Path:
        return self.local._data(repo) / "comments.json"

    def items(self, repo: str) -> list[dict[str, Any]]:
        data = store.read_json(self._issues_file(repo), {"items": []})
        return list(data.get("items", []))

    def item(self, repo: str, number: int) -> dict[str, Any] | None:
        return next((i for i in self.items(repo) if int(i["number"]) == number), None)

    def create_item(self, repo: str, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A new issue or pull request (always new, as a POST on GitHub); ``fields`` name its
        ``author``."""
        nonce = f"<!-- test-server:{uuid.uuid4().hex} -->"  # matches no existing item
        return self.local._upsert(repo, kind=kind, marker=nonce, fields=fields)

    def edit_item(self, repo: str, number: int, changes: dict[str, Any]) -> dict[str, Any]:
        def edit(data: dict[str, Any]) -> dict[str, Any]:
            for item in data.get("items", []):
                if int(item["number"]) == number:
                    item.update(changes)
                    item["updated_at"] = utc_now()
                    return dict(item)
            raise ProviderError(f"no issue or pull request #{number} in {repo}")

        return store.update_json(self._issues_file(repo), edit, default={"items": []})

    # ------------------------------------------------------------------ comments
    def comments(self, repo: str, number: int | None = None) -> list[dict[str, Any]]:
        data = store.read_json(self._comments_file(repo), {"items": []})
        return [c for c in data.get("items", []) if number is None or c["number"] == number]

    def create_comment(self, repo: str, number: int, body: str, author: str) -> dict[str, Any]:
        now = utc_now()
        cid = self.local._counter("comment")
        entry = {
            "id": cid,
            "number": number,
            "body": body,
            "author": author,
            "url": f"local://{repo}/issues/{number}#issuecomment-{cid}",
            "created_at": now,
            "updated_at": now,
        }

        def add(data: dict[str, Any]) -> None:
            data.setdefault("items", []).append(entry)

        store.update_json(self._comments_file(repo), add, default={"items": []})
        return entry

    def edit_comment(self, repo: str, cid: int, body: str) -> dict[str, Any]:
        def edit(data: dict[str, Any]) -> dict[str, Any]:
            for c in data.get("items", []):
                if int(c["id"]) == cid:
                    c.update(body=body, updated_at=utc_now())
                    return dict(c)
            raise ProviderError(f"no comment {cid} in {repo}")

        return store.update_json(self._comments_file(repo), edit, default={"items": []})

    # ------------------------------------------------------------------ git
    def git(self, repo: str, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.local.repo_path(repo),
            env=git_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if proc.returncode != 0:
            raise ProviderError(proc.stderr.strip() or f"git {args[0]} failed")
        return proc.stdout

    def commit(self, repo: str, sha: str) -> dict[str, str] | None:
        """A commit's sha, author, committer (name, e-mail, date) and message, or None."""
        if not sha.isalnum():
            return None
        fields = ("sha", "author_name", "author_email", "authored_date")
        fields += ("committer_name", "committer_email", "committed_date", "message")
        try:
            out = self.git(
                repo,
                "log",
                "-1",
                "--format=%H%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B",
                f"{sha}^{{commit}}",
                "--",
            )
        except ProviderError:
            return None
        return dict(zip(fields, out.split("\x00"), strict=False))

    def branches(self, repo: str) -> dict[str, str]:
        out = self.git(
            repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"
        )
        pairs = (line.split(" ", 1) for line in out.splitlines() if line.strip())
        return {name: sha for name, sha in pairs}

    def blob(self, repo: str, ref: str, path: str) -> bytes | None:
        proc = subprocess.run(
            ["git", "show", f"{ref}:{path}"],
            cwd=self.local.repo_path(repo),
            env=git_env(),
            capture_output=True,
            check=False,
            timeout=60,
        )
        return proc.stdout if proc.returncode == 0 else None
