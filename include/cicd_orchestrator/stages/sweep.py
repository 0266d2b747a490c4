"""The sweep: the failures of each watched branch that have no session yet, most urgent
first. A workflow's failure counts only while it is the branch's newest run of that
workflow (a newer run, or the same run green again, supersedes it); the failed workflows of
one push make one session; the orchestrator's own runs (its fix branches, commits it
authored) are skipped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cicd_orchestrator import branches
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig, WatchedRepository
from cicd_orchestrator.constants import (
    PRIORITY_WEIGHT,
    Conclusion,
    Priority,
    RunStatus,
    failed_run_conclusions,
)
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.models import Run
from cicd_orchestrator.session import branch_priority, newest_per_workflow, session_id_of_run
from cicd_orchestrator.stages.opening import own_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepItem:
    """A failed run that needs a session."""

    repository: str
    run_id: int
    provider: str
    session_id: str
    priority: Priority


def sweep(
    config: OrchestratorConfig,
    provider_for: Callable[[str], CIProvider],
    has_session: Callable[[str], bool],
) -> list[SweepItem]:
    """Failed runs of the watched branches without a session, most urgent first; a
    repository or branch the provider cannot list is logged and skipped."""
    found: list[SweepItem] = []
    for watched in config.watched_repositories:
        try:
            provider = provider_for(watched.provider)
            default = provider.default_branch(watched.repository)
        except CicdError as exc:
            log.error("sweep: %s: %s", watched.repository, exc)
            continue
        found.extend(_new_failures(config, provider, watched, default, has_session))
    found.sort(key=lambda item: -PRIORITY_WEIGHT[item.priority])
    log.info("sweep: %d new failed run(s)", len(found))
    return found


def _new_failures(
    config: OrchestratorConfig,
    provider: CIProvider,
    watched: WatchedRepository,
    default_branch: str,
    has_session: Callable[[str], bool],
) -> list[SweepItem]:
    items: list[SweepItem] = []
    for branch in watched.branches:
        if branches.own_branch(branch, config.fix_branch_prefix):
            log.warning(
                "sweep: %s@%s skipped: a fix branch of the orchestrator", watched.repository, branch
            )
            continue
        try:
            runs = provider.list_runs(watched.repository, branch=branch)
            pushes = current_failures(runs, failed_run_conclusions(config.cancelled_is_failure))
            first = [r for r in pushes if not has_session(_sid(watched, r))]
            first = [r for r in first if not _own(config, provider, r)]
        except CicdError as exc:
            log.error("sweep: %s@%s: %s", watched.repository, branch, exc)
            continue
        priority = branch_priority(branch, default_branch)
        items.extend(
            SweepItem(r.repository, r.id, watched.provider, _sid(watched, r), priority)
            for r in first
        )
    return items


def current_failures(runs: list[Run], failed: frozenset[Conclusion]) -> list[Run]:
    """The failures of a branch that are not superseded, one run per push (its first failed
    workflow), newest push first: each workflow counts by its newest run on the branch, and
    only when that run is completed with one of ``failed``."""
    newest = newest_per_workflow(runs).values()
    failing = [r for r in newest if r.status is RunStatus.COMPLETED and r.conclusion in failed]
    pushes: dict[tuple[str, str], Run] = {}
    for run in sorted(failing, key=lambda r: r.id):
        pushes.setdefault((run.head_branch, run.head_sha), run)
    return sorted(pushes.values(), key=lambda r: r.id, reverse=True)


def _sid(watched: WatchedRepository, run: Run) -> str:
    return session_id_of_run(watched.provider, run)


def _own(config: OrchestratorConfig, provider: CIProvider, run: Run) -> bool:
    """Whether ``run`` is the orchestrator's own (logged: no session for it)."""
    why = own_run(provider, run, config)
    if why:
        log.info("sweep: run %s of %s skipped: %s", run.id, run.repository, why)
    return why is not None
