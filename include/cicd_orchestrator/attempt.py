"""The attempt object: what one task of an attempt works with, built once per task.

A task reads the session state once and builds an :class:`Attempt` around it with the
configuration in force and the CI provider; the stages (discovery, classification, fixing,
validation, publishing) take it and ask it for the facts they share, each fetched once: the
failed run, the last green run of the same workflow, a mirror of the repository, workspaces
at the failing head.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

from cicd_orchestrator.agents import AgentFactory
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import Conclusion, RepairKind, RunStatus
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.git import MirrorCache, Workspace, checkout
from cicd_orchestrator.models import AttemptRecord, Repair, Run, SessionState
from cicd_orchestrator.session import session_runs

#: the repairs that change code (a commit each on the fix branch)
CODE_CHANGES = frozenset({RepairKind.CHANGE, RepairKind.REVERT})


class Attempt:
    """One attempt of a session, as one task sees it."""

    def __init__(
        self,
        state: SessionState,
        number: int,
        config: OrchestratorConfig,
        provider: CIProvider,
        *,
        cache_dir: Path | None = None,
        agent_factory: AgentFactory | None = None,
        marker_key: bytes | None = None,
        airflow_base_url: str | None = None,
    ) -> None:
        """``marker_key``: what the markers of the attempt's writes are signed with, when the
        deployment gives one (see ``publish.markers``); ``airflow_base_url``: Airflow's own
        URL, when the configuration names none (a cut body links the session's report)."""
        self.state = state
        self.number = number
        self.config = config
        self.provider = provider
        self.cache_dir = cache_dir or config.cache_root()
        self.agent_factory = agent_factory
        self.marker_key = marker_key
        self.airflow_base_url = airflow_base_url

    # ------------------------------------------------------------------ the session
    @property
    def repository(self) -> str:
        return self.state.repository

    @property
    def head_sha(self) -> str:
        return self.state.head_sha

    @property
    def branch(self) -> str:
        return self.state.branch

    @property
    def record(self) -> AttemptRecord:
        """This attempt's record in the session (ValueError when there is none)."""
        record = self.state.attempt_record(self.number)
        if record is None:
            raise ValueError(f"session {self.state.session_id} has no attempt {self.number}")
        return record

    def repairs(self, kinds: frozenset[RepairKind] | None = None) -> list[Repair]:
        """The repairs this attempt kept so far (of ``kinds`` only, when given)."""
        record = self.state.attempt_record(self.number)
        repairs = list(record.repairs) if record else []
        return [r for r in repairs if kinds is None or r.kind in kinds]

    # ------------------------------------------------------------------ runs, fetched once
    @functools.cached_property
    def failed_run(self) -> Run:
        """The failed run of the session, with its jobs and steps."""
        return self.provider.get_run(self.repository, self.state.pipeline_id)

    @functools.cached_property
    def failed_runs(self) -> list[Run]:
        """Every failed run of the session's push (one per failed workflow), with their
        jobs; the session's first failed run first."""
        others = [i for i in session_runs(self.state) if i != self.state.pipeline_id]
        return [self.failed_run, *(self.provider.get_run(self.repository, i) for i in others)]

    @functools.cached_property
    def last_green_run(self) -> Run | None:
        """The newest green run of the same workflow on the branch before the failed one,
        with its jobs (None when the branch has none)."""
        return self.last_green_of(self.failed_run)

    def last_green_of(self, before: Run) -> Run | None:
        """The newest green run of ``before``'s workflow on the branch before it, with its
        jobs (None when the branch has none)."""
        if before.id not in self._last_green:
            self._last_green[before.id] = self._find_last_green(before)
        return self._last_green[before.id]

    def _find_last_green(self, before: Run) -> Run | None:
        for run in self._branch_runs:
            if (
                run.id < before.id
                and run.workflow_path == before.workflow_path
                and run.status is RunStatus.COMPLETED
                and run.conclusion is Conclusion.SUCCESS
            ):
                return self.provider.get_run(self.repository, run.id)
        return None

    @functools.cached_property
    def _last_green(self) -> dict[int, Run | None]:
        """The last green run before each failed run, fetched once each."""
        return {}

    @functools.cached_property
    def _branch_runs(self) -> list[Run]:
        return self.provider.list_runs(self.repository, branch=self.branch)

    def jobs_by_workflow(self, jobs: set[str]) -> dict[str, set[str]]:
        """The job names ``jobs`` by the workflow (path) of the failed run they belong to: a
        job of several failed workflows is in each that failed it, else in the first that
        has it; a job no failed run knows stays with the first failed run's workflow."""
        runs = self.failed_runs if len(session_runs(self.state)) > 1 else [self.failed_run]
        out: dict[str, set[str]] = {}
        for name in jobs:
            failed_in = [r for r in runs if any(j.name == name for j in r.failed_jobs)]
            having = failed_in or [r for r in runs if any(j.name == name for j in r.jobs)]
            for run in having or runs[:1]:
                out.setdefault(run.workflow_path, set()).add(name)
        return out

    def job_needs(self) -> dict[str, list[str]]:
        """Each job of the failed run with the jobs it needs."""
        return {job.name: list(job.needs) for job in self.failed_run.jobs}

    # ------------------------------------------------------------------ git
    def mirror(self, *shas: str) -> Path:
        """The local mirror of the repository, fetched until it has ``shas``."""
        remote = self.provider.git_remote(self.repository)
        return MirrorCache(self.cache_dir).mirror(self.repository, remote, shas)

    def workspace(self) -> contextlib.AbstractContextManager[Workspace]:
        """A fresh clone at the failing head (commits dated as the session started, so the
        same repairs make the same commits in every task)."""
        return checkout(self.mirror(self.head_sha), self.head_sha, date=self.state.start_time)

    @contextlib.contextmanager
    def fixed_workspace(self, repairs: list[Repair]) -> Iterator[Workspace]:
        """A workspace at the failing head with the code changes among ``repairs``
        committed, one commit each, in order."""
        with self.workspace() as ws:
            for repair in repairs:
                if repair.kind not in CODE_CHANGES:
                    continue
                if not ws.apply(repair.patch):
                    raise WorkspaceError(f"the change of {repair.fixer} no longer applies")
                ws.commit(repair.commit_message or repair.description)
            yield ws
