"""The events of the local provider that start runs, as on GitHub.

- A push of a branch starts its ``push`` runs and, for each open pull request from that
  branch, the pull request's ``synchronize`` runs; a push of a tag starts ``push`` runs
  whose trigger filters tags.
- Opening a pull request starts its ``opened`` runs.

A pull request's runs are ``pull_request`` runs of the workflows of its head (on the head's
commit, ref ``refs/pull/<n>/merge``, branch filters on the base branch, path filters on the
files the pull request changes against its merge base with the base) and
``pull_request_target`` runs of the workflows of its BASE (on the base's commit, ref
``refs/heads/<base>``). Both record the pull request's number and are listed under the head
branch; a ``pull_request_target`` run's ``head_sha`` is the base's commit it runs.

:meth:`LocalEvents.workflows_for` says which workflows an event would start, so a caller can
tell a branch that gets no CI at all from one whose CI has not started yet.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from cicd_orchestrator import git
from cicd_orchestrator.actions.run_info import pull_request_payload
from cicd_orchestrator.actions.triggers import TriggerEvent
from cicd_orchestrator.actions.workflow import list_workflow_files, parse_workflow
from cicd_orchestrator.ci.local.execution import LocalRunExecution, RunStart
from cicd_orchestrator.ci.local.hosting import PULL, LocalHosting
from cicd_orchestrator.exceptions import ProviderError, WorkflowError, WorkspaceError

log = logging.getLogger(__name__)


class LocalEvents(LocalRunExecution, LocalHosting):
    """Pushes and pull requests starting runs (see the module docstring)."""

    # ------------------------------------------------------------------ pushes
    def on_push(self, repo: str, branch: str, before: str | None, sha: str) -> list[int]:
        """A push of ``branch`` from ``before`` to ``sha``: its ``push`` runs, then the
        ``synchronize`` runs of each open pull request from the branch. Returns the run ids."""
        run_ids = self.start_runs(repo, sha, branch, "push", before=before)
        for item in self._items_of(repo, PULL, "open"):
            if item["head"] == branch:
                run_ids += self.start_pull_request_runs(repo, int(item["number"]), "synchronize")
        return run_ids

    # ------------------------------------------------------------------ pull requests
    def _pull_request_opened(self, repo: str, item: dict[str, Any]) -> None:
        try:
            self.start_pull_request_runs(repo, int(item["number"]), "opened")
        except (ProviderError, WorkspaceError) as exc:  # the pull request stays opened
            log.warning("no CI for pull request #%s of %s: %s", item["number"], repo, exc)

    def start_pull_request_runs(self, repo: str, number: int, action: str = "opened") -> list[int]:
        """Start the ``pull_request`` and ``pull_request_target`` runs of an ``action``
        (``opened``, ``synchronize``...) of pull request ``number``; returns the run ids."""
        self.count_call(repo)
        item = self._item(repo, number, PULL)
        head, base = str(item["head"]), str(item["base"])
        head_sha, base_sha = self._branch_sha(repo, head), self._branch_sha(repo, base)
        if head_sha is None or base_sha is None:
            missing = head if head_sha is None else base
            raise ProviderError(f"pull request #{number} of {repo}: no branch {missing!r}")
        payload = pull_request_payload(number, action, head, head_sha, base, base_sha)
        trigger = TriggerEvent(
            "pull_request",
            branch=head,
            base_branch=base,
            changed_paths=self.pull_request_changed_paths(repo, base_sha, head_sha),
            action=action,
        )
        merge_ref = f"refs/pull/{number}/merge"
        on_head = RunStart(head_sha, head, merge_ref, "pull_request", payload, number)
        run_ids = self._start_runs(repo, head_sha, on_head, trigger)
        on_base = RunStart(base_sha, head, f"refs/heads/{base}", "pull_request_target")
        on_base = dataclasses.replace(on_base, payload=payload, pull_request_number=number)
        target = dataclasses.replace(trigger, name="pull_request_target")
        # an invalid workflow of the base failed the base's own runs already
        run_ids += self._start_runs(repo, base_sha, on_base, target, report_invalid=False)
        return run_ids

    def pull_request_changed_paths(
        self, repo: str, base_sha: str, head_sha: str
    ) -> list[str] | None:
        """The files a pull request changes: its head against the merge base with its base."""
        merge_base = self.merge_base(repo, base_sha, head_sha)
        return None if merge_base is None else self.changed_paths(repo, merge_base, head_sha)

    # ------------------------------------------------------------------ which workflows
    def workflows_for(
        self,
        repo: str,
        sha: str,
        event: str = "push",
        branch: str | None = None,
        base_branch: str | None = None,
        changed_paths: Sequence[str] | None = None,
        *,
        action: str | None = None,
        tag: str | None = None,
    ) -> list[str]:
        """The workflow files of ``sha`` that ``event`` would start (GitHub's filters; a
        value not given does not filter), sorted. A file that does not parse is listed: it
        gives a failed run. An empty list: that event gets no CI at all."""
        self.count_call(repo)
        git_dir = self.repo_path(repo)
        trigger = TriggerEvent(
            event,
            branch=branch,
            base_branch=base_branch,
            tag=tag,
            changed_paths=changed_paths,
            action=action,
        )
        out: list[str] = []
        for path in list_workflow_files(git_dir, sha):
            try:
                wf = parse_workflow(git.show_file(git_dir, sha, path), path)
            except (WorkflowError, WorkspaceError):
                out.append(path)
                continue
            if wf.starts_on(trigger):
                out.append(path)
        return out
