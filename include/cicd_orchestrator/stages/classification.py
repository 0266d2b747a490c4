"""Classification: final categories (what the repository learned, a secret the failing step
reads and did not get, evidence of flakiness) and the dependency mapping of root causes and
their symptoms."""

from __future__ import annotations

import logging

from cicd_orchestrator import git
from cicd_orchestrator.analysis.classify import mark_flaky
from cicd_orchestrator.analysis.depmap import map_dependencies as map_jobs
from cicd_orchestrator.analysis.secrets import (
    apply_secret_evidence,
    find_missing_secrets,
    log_lines,
)
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.constants import Conclusion, FailureCategory, RepairKind
from cicd_orchestrator.exceptions import CicdError, UnknownRepositoryError
from cicd_orchestrator.models import DependencyMap, Failure
from cicd_orchestrator.session import session_reruns

log = logging.getLogger(__name__)


def _jobs_passed_on_head(attempt: Attempt) -> set[str]:
    """Jobs that passed on the failing commit in any run or attempt of a run."""
    provider, repo = attempt.provider, attempt.repository
    passed: set[str] = set()
    for run in provider.list_runs(repo, head_sha=attempt.head_sha):
        full = provider.get_run(repo, run.id)
        for number in range(1, full.run_attempt + 1):
            snapshot = (
                full if number == full.run_attempt else provider.get_run(repo, run.id, number)
            )
            passed |= {j.name for j in snapshot.jobs if j.conclusion is Conclusion.SUCCESS}
    return passed


def _configured_secrets(attempt: Attempt) -> set[str] | None:
    """The names of the secrets the local CI sets (None for a remote CI: not known)."""
    if attempt.state.provider != "local":
        return None
    names = set(attempt.config.local_ci_secrets)
    provided = getattr(attempt.provider, "secrets", None)
    if isinstance(provided, dict):
        names |= {str(k) for k in provided}
    return names


def with_secret_evidence(attempt: Attempt, failure: Failure) -> Failure:
    """``failure`` as a missing secret when the workflow and the job's log say that the
    failing step read a secret that had no value (unchanged otherwise, or when the workflow
    or the log cannot be read)."""
    path = attempt.failed_run.workflow_path
    if not failure.job_id or not path.endswith((".yml", ".yaml")):
        return failure
    if failure.recipe == "escalate-secret" and failure.captures.get("secret"):
        return failure
    try:
        text = git.show_file(attempt.mirror(attempt.head_sha), attempt.head_sha, path)
        with attempt.provider.open_job_log(attempt.repository, failure.job_id) as stream:
            evidence = find_missing_secrets(
                text,
                path,
                failure.job,
                failure.step,
                log_lines(stream),
                _configured_secrets(attempt),
            )
    except UnknownRepositoryError:
        raise
    except (CicdError, OSError, ValueError) as exc:
        log.warning("no secret evidence for job %s: %s", failure.job, exc)
        return failure
    return apply_secret_evidence(failure, evidence)


def classify_failures(attempt: Attempt, learned: dict[str, object] | None = None) -> list[Failure]:
    """Final categories: what the repository learned first, then a secret that the failing
    step read and did not get (only a person can set it: no repair, no rollback), then
    evidence of flakiness (the same job passed on the same commit in another run or
    attempt), then whether the failure came back after a CI re-run of this session."""
    state = attempt.state
    passed = _jobs_passed_on_head(attempt)
    reruns = [
        r for r in state.attempt_history if r.published and r.published.kind is RepairKind.RERUN
    ]
    seen_after_rerun = {sig for r in reruns for sig in r.ci_failure_signatures}
    out: list[Failure] = []
    for failure in state.failures:
        entry = (learned or {}).get(failure.signature)
        if isinstance(entry, dict) and entry.get("category"):
            failure.category = FailureCategory(str(entry["category"]))
            failure.notes.append("category learned from earlier sessions of this repository")
        failure = with_secret_evidence(attempt, failure)
        if failure.job in passed:
            failure = mark_flaky(
                failure,
                f"job {failure.job} passed on the same commit "
                f"{state.head_sha[:12]} in another run or attempt",
            )
        if reruns and (failure.job in seen_after_rerun or failure.signature in seen_after_rerun):
            flaky = failure.category is FailureCategory.FLAKY
            if not flaky or session_reruns(state) >= attempt.config.max_ci_reruns:
                failure.repeated_after_rerun = True
        out.append(failure)
    return out


def map_dependencies(attempt: Attempt) -> DependencyMap:
    """Which failures are root causes and which their symptoms, and the order to repair."""
    return map_jobs(attempt.state.failures, attempt.job_needs())
