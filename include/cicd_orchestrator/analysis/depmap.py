"""Root causes and symptoms among the failed jobs of a run, the repair order, conflicts.

Two ways a failure is a symptom:

1. *needs*: the job needs (directly or not) a job that failed, and its own failure shows
   nothing of its own (same signature or error location as that job, or no classified
   cause at all): it failed because of the other one.
2. *same error*: the same signature, or the same error location (file and line), surfaces
   in several jobs (one syntax error breaks build, lint and test). The root is the job whose
   failure is the most basic, by this precedence (most basic first)::

       configuration, build, quality, test, deployment, flaky, infrastructure

   (the CI configuration decides what runs at all; a build failure explains lint and test
   failures of the same file; infrastructure failures are never the cause of another
   job's error). Ties go to the job that others need, then to the job name.

The repair order lists the roots first (by precedence), then the symptoms. Conflicts are
proposed repairs that touch the same file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import PurePath

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.models import DependencyMap, Failure, Repair

log = logging.getLogger(__name__)

PRECEDENCE: tuple[FailureCategory, ...] = (
    FailureCategory.CONFIGURATION,
    FailureCategory.BUILD,
    FailureCategory.QUALITY,
    FailureCategory.TEST,
    FailureCategory.DEPLOYMENT,
    FailureCategory.FLAKY,
    FailureCategory.INFRASTRUCTURE,
    FailureCategory.UNKNOWN,
)


def precedence(category: FailureCategory) -> int:
    """0 for the most basic category (configuration), larger for the less basic ones."""
    return PRECEDENCE.index(category) if category in PRECEDENCE else len(PRECEDENCE)


def error_location(failure: Failure) -> str | None:
    """``file-name:line`` of the error, independent of the checkout path."""
    caps = failure.captures
    file, line = caps.get("file"), caps.get("line")
    if not (file and line) and caps.get("location"):
        file, _, line = caps["location"].rpartition(":")
    if not (file and line and line.isdigit()):
        return None
    return f"{PurePath(file.replace(chr(92), '/')).name}:{line}"


def _ancestors(job: str, needs: Mapping[str, list[str]]) -> list[str]:
    """Jobs ``job`` needs, nearest first (breadth first, cycle-safe)."""
    seen: list[str] = []
    frontier = list(needs.get(job, []))
    while frontier:
        nxt: list[str] = []
        for j in frontier:
            if j not in seen and j != job:
                seen.append(j)
                nxt.extend(needs.get(j, []))
        frontier = nxt
    return seen


def _same_error(a: Failure, b: Failure) -> bool:
    if a.signature and a.signature == b.signature:
        return True
    la, lb = error_location(a), error_location(b)
    return la is not None and la == lb


def _needs_root(
    failure: Failure, by_job: Mapping[str, Failure], needs: Mapping[str, list[str]]
) -> str | None:
    for up in _ancestors(failure.job, needs):
        other = by_job.get(up)
        if other is None:
            continue
        own = failure.category is not FailureCategory.UNKNOWN and bool(
            failure.excerpts or failure.evidence
        )
        if not own or _same_error(failure, other) or "skipped" in " ".join(failure.notes):
            return up
    return None


def _rank_key(failure: Failure, needed: set[str]) -> tuple[int, int, str]:
    return (precedence(failure.category), 0 if failure.job in needed else 1, failure.job)


def _group_roots(failures: list[Failure], needed: set[str]) -> dict[str, str]:
    """job -> root job for failures sharing an error with a more basic one."""
    symptom_of: dict[str, str] = {}
    for f in failures:
        group = [g for g in failures if g is f or _same_error(f, g)]
        if len(group) < 2:
            continue
        root = min(group, key=lambda g: _rank_key(g, needed))
        if root is not f:
            symptom_of[f.job] = root.job
    return symptom_of


def _resolve(job: str, symptom_of: Mapping[str, str]) -> str:
    seen = {job}
    while job in symptom_of and symptom_of[job] not in seen:
        job = symptom_of[job]
        seen.add(job)
    return job


def map_dependencies(
    failures: list[Failure],
    job_needs: Mapping[str, list[str]] | None = None,
    repairs: Iterable[Repair] = (),
) -> DependencyMap:
    """Split ``failures`` into root causes and symptoms (sets ``root_cause``/``symptom_of``)."""
    needs = dict(job_needs or {})
    by_job = {f.job: f for f in failures}
    needed = {j for deps in needs.values() for j in deps}
    symptom_of: dict[str, str] = {}
    for f in failures:
        up = _needs_root(f, by_job, needs)
        if up is not None:
            symptom_of[f.job] = up
    for job, root in _group_roots(failures, needed).items():
        symptom_of.setdefault(job, root)
    symptom_of = {job: _resolve(job, symptom_of) for job in symptom_of}
    symptom_of = {job: root for job, root in symptom_of.items() if root != job}
    for f in failures:
        f.root_cause = f.job not in symptom_of
        f.symptom_of = symptom_of.get(f.job)
    roots = sorted((f for f in failures if f.root_cause), key=lambda f: _rank_key(f, needed))
    symptoms = sorted((f for f in failures if not f.root_cause), key=lambda f: _rank_key(f, needed))
    dmap = DependencyMap(
        root_causes=[f.job for f in roots],
        symptoms=dict(sorted(symptom_of.items())),
        repair_order=[f.job for f in roots] + [f.job for f in symptoms],
        conflicts=find_conflicts(repairs),
    )
    log.debug("dependency map: roots=%s symptoms=%s", dmap.root_causes, dmap.symptoms)
    return dmap


def find_conflicts(repairs: Iterable[Repair]) -> list[str]:
    """Pairs of proposed repairs that change the same file (one line per pair and file)."""
    owners: dict[str, list[str]] = {}
    for repair in repairs:
        for path in dict.fromkeys(repair.files):
            owners.setdefault(path, []).append(repair.fixer)
    out = []
    for path, fixers in sorted(owners.items()):
        for i in range(len(fixers)):
            for j in range(i + 1, len(fixers)):
                out.append(f"{fixers[i]} and {fixers[j]} both change {path}")
    return out
