"""Repair rounds: a repaired job that still fails locally with a NEW failure (a step stops at
its first failing tool, so repairing that one reveals the next) is analysed again, with the
same analysis as discovery's, and handed back to the fixers, which repair it on top of the
earlier rounds; at most ``repair_rounds`` rounds per attempt (the first included).

The replay of the jobs (``validation.jobs``) keeps only a log's tail; :class:`LogKeeper`
keeps a copy of each replayed job's whole log, so the analysis reads what discovery would.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.analysis.classify import classify
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.logs.analyze import analyze_path
from cicd_orchestrator.models import Failure, JobResult, Repair, RepairRound
from cicd_orchestrator.validation.jobs import passed_here

log = logging.getLogger(__name__)

#: the fixers' answer to new failures: the repairs made on top of ``repairs`` (each applies
#: over them, in order) and what could not be repaired
RoundFixer = Callable[[Attempt, list[Repair], list[Failure]], tuple[list[Repair], list[str]]]
#: replays the failing jobs on (a clone's git directory, a sha)
Replay = Callable[[str | os.PathLike[str], str], list[JobResult]]


class LogKeeper(JobRunner):
    """A job runner that keeps a copy of the whole log of every job it runs (the runner it
    wraps does the work). Use it as a context manager: the copies are removed on exit."""

    def __init__(self, inner: JobRunner) -> None:  # delegates: the inner runner is set up
        self._inner = inner
        self._dir: Path | None = None
        self._count = 0
        #: the latest log of each job (by name), in the order they ran
        self.logs: dict[str, Path] = {}

    def __enter__(self) -> LogKeeper:
        self._dir = Path(tempfile.mkdtemp(prefix="cicd-round-logs-"))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def run_workflow(self, *args: Any, **kwargs: Any) -> list[JobExecution]:
        executions = self._inner.run_workflow(*args, **kwargs)
        for ex in executions:
            self._keep(ex)
        return executions

    def _keep(self, ex: JobExecution) -> None:
        if self._dir is None or not ex.executed or not ex.log_path:
            return
        if not os.path.isfile(ex.log_path):
            return
        self._count += 1
        copy = self._dir / f"{self._count}.log"
        shutil.copyfile(ex.log_path, copy)
        self.logs[ex.name] = copy


def analyse(job: str, path: Path) -> Failure:
    """The failure in a replayed job's log, as discovery would classify it."""
    failure = classify(job, None, analyze_path(path, names=[job]))
    failure.notes.append("found by the local replay of the job during validation")
    return failure


def known_signatures(failures: list[Failure]) -> dict[str, set[str]]:
    """The failure signatures known of each job."""
    known: dict[str, set[str]] = {}
    for failure in failures:
        known.setdefault(failure.job, set()).add(failure.signature)
    return known


def new_failures(
    results: list[JobResult], logs: dict[str, Path], known: dict[str, set[str]]
) -> list[Failure]:
    """The failures of replayed jobs (``logs``: their whole logs by job) that differ from
    every failure known of the same job."""
    found = []
    for result in results:
        path = logs.get(result.job)
        if passed_here(result) or result.not_replayable or path is None:
            continue
        failure = analyse(result.job, path)
        if failure.signature not in known.get(result.job, set()):
            found.append(failure)
    return found


def first_round(failures: list[Failure], repairs: list[Repair]) -> RepairRound:
    """Round 1: what discovery found of the repaired jobs and what the fixing stage made."""
    jobs = {j for r in repairs for j in r.jobs}
    return RepairRound(
        number=1,
        failures=[f for f in failures if f.job in jobs] or list(failures),
        repairs=list(repairs),
    )


def replay_in_rounds(
    attempt: Attempt,
    repairs: list[Repair],
    replay: Replay,
    keeper: LogKeeper,
    fix_round: RoundFixer | None,
    before: tuple[list[JobResult], dict[str, Path]],
) -> tuple[list[JobResult], list[RepairRound]]:
    """Replay the failing jobs with ``repairs``; while one fails with a new failure (one
    that differs from the failure the latest round repaired) and rounds are left, repair it
    on top and replay again. ``before``: the replay on the
    failing head and its logs (what the known failures look like here). Returns the last
    replay's results and the rounds (empty when there was no second round)."""
    limit = attempt.config.repair_rounds
    current = list(repairs)
    rounds: list[RepairRound] = []
    known: dict[str, set[str]] | None = None
    while True:
        with attempt.fixed_workspace(current) as ws:
            after = replay(ws.path, ws.head())
        if fix_round is None or len(rounds) + 1 >= limit or all(map(passed_here, after)):
            break
        if known is None:  # what the failure looked like here before any repair, too
            known = known_signatures(attempt.state.failures)
            for failure in new_failures(*before, {}):
                known.setdefault(failure.job, set()).add(failure.signature)
        found = new_failures(after, keeper.logs, known)
        if not found:
            break
        added, unrepaired = fix_round(attempt, current, found)
        this = RepairRound(len(rounds) + 2, found, added, unrepaired)
        rounds.append(this)
        known = known_signatures(found)  # what the next round must differ from
        log.info(
            "repair round %d: %d new failure(s), %d repair(s)", this.number, len(found), len(added)
        )
        if not added:
            this.notes.append("no fixer repaired the new failure: the rounds stop here")
            break
        current.extend(added)
    if rounds:
        rounds.insert(0, first_round(attempt.state.failures, repairs))
    return after, rounds
