"""The local CI provider: git repositories on disk are the remote, workflows run on this machine.

Layout under ``root``::

    config.json                      secrets, protected branch patterns, runner limits
    counters.json                    run, job, comment ids (locked counters)
    calls.json                       calls per repository (across processes)
    repos/<owner>/<name>.git         bare repositories with a post-receive hook
    data/<owner>/<name>/repo.json    default branch
    data/<owner>/<name>/runs/<id>.json   one run with all its attempts and jobs
    data/<owner>/<name>/logs/<job>.log   raw job logs (GitHub's format)
    data/<owner>/<name>/issues.json  issues and pull requests (one numbering, as on GitHub)
    data/<owner>/<name>/comments.json, statuses.json
    spawn/                           output of the detached run processes

A push of a branch runs the hook, which records a queued run per triggered workflow (and
per workflow the ``synchronize`` of an open pull request from the branch triggers) and
starts a detached process that executes it (``hook execute``); the push returns at once.
Opening a pull request starts its ``pull_request`` and ``pull_request_target`` runs
(:mod:`~cicd_orchestrator.ci.local.events`).
Everything needed to rebuild the provider is under ``root``, so any process can.

The provider is put together from one class per concern: the repositories
(:mod:`~cicd_orchestrator.ci.local.repositories`), the run records
(:mod:`~cicd_orchestrator.ci.local.runs`) and their execution
(:mod:`~cicd_orchestrator.ci.local.execution`), the hosting objects
(:mod:`~cicd_orchestrator.ci.local.hosting`), the events that start runs
(:mod:`~cicd_orchestrator.ci.local.events`); this module adds the combined state of a
commit and the waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from cicd_orchestrator import git
from cicd_orchestrator.actions.workflow import Workflow, parse_workflow
from cicd_orchestrator.ci.base import combine_states, run_state
from cicd_orchestrator.ci.local.events import LocalEvents
from cicd_orchestrator.ci.local.processes import reap
from cicd_orchestrator.constants import (
    OWN_STATUS_CONTEXTS,
    CombinedState,
    RunStatus,
)
from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.models import RefStatus, Run

T = TypeVar("T")


class RunWaitTimeoutError(ProviderError, TimeoutError):
    """A run or a ref did not complete in time."""


class LocalProvider(LocalEvents):
    """A CI provider backed by git repositories and a JSON database under ``root``."""

    name = "local"

    # ------------------------------------------------------------------ status
    def ref_status(self, repo: str, sha: str) -> RefStatus:
        self.count_call(repo)
        return self._ref_status(repo, sha)

    def _ref_status(self, repo: str, sha: str) -> RefStatus:
        runs = [self._get_run(repo, r.id) for r in self._list_runs(repo, None, sha)]
        states = [run_state(run) for run in runs]
        states += [
            s.state for s in self._statuses(repo, sha) if s.context not in OWN_STATUS_CONTEXTS
        ]
        return RefStatus(sha=sha, state=combine_states(states), runs=runs)

    # ------------------------------------------------------------------ waiting
    def wait_for_run(
        self,
        repo: str,
        run_id: int,
        attempt: int | None = None,
        timeout: float = 300.0,
        poll: float = 0.2,
    ) -> Run:
        """Poll until the attempt (default: the latest) is completed; returns it."""
        self.count_call(repo)
        return _poll_until(
            lambda: self._get_run(repo, run_id, attempt),
            lambda run: run.status is RunStatus.COMPLETED,
            lambda run: f"run {run_id} of {repo} still {run.status.value} after {timeout:g}s",
            timeout,
            poll,
        )

    def wait_for_ref(
        self, repo: str, sha: str, timeout: float = 300.0, poll: float = 0.2
    ) -> RefStatus:
        """Poll until no run of ``sha`` is queued or in progress; returns the combined state."""
        self.count_call(repo)
        return _poll_until(
            lambda: self._ref_status(repo, sha),
            lambda status: status.state is not CombinedState.PENDING,
            lambda _: f"CI of {sha[:12]} in {repo} still pending after {timeout:g}s",
            timeout,
            poll,
        )


def _poll_until(
    read: Callable[[], T],
    done: Callable[[T], bool],
    still: Callable[[T], str],
    timeout: float,
    poll: float,
) -> T:
    """``read()`` every ``poll`` seconds until ``done``; after ``timeout`` seconds raise
    RunWaitTimeoutError saying what it ``still`` is."""
    deadline = time.monotonic() + timeout
    while True:
        reap()
        value = read()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise RunWaitTimeoutError(still(value))
        time.sleep(poll)


def workflow_of(provider: LocalProvider, repo: str, sha: str, path: str) -> Workflow:
    """The parsed workflow file ``path`` of commit ``sha`` (raises InvalidWorkflowError)."""
    text = git.show_file(provider.repo_path(repo), sha, path)
    return parse_workflow(text, path)
