"""Discovery: what failed and why (the logs), what changed since the last green run, which
commit broke it, and what differs in the runner's environment."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import BinaryIO

from cicd_orchestrator.analysis import llm_classify
from cicd_orchestrator.analysis.classify import classify
from cicd_orchestrator.analysis.context import build_context
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.gitlab.reasons import apply_failure_reason
from cicd_orchestrator.constants import BROKEN_CONCLUSIONS, Conclusion, FailureCategory
from cicd_orchestrator.exceptions import CicdError, UnknownRepositoryError
from cicd_orchestrator.logs.analyze import LogAnalysis, analyze_log
from cicd_orchestrator.models import Context, Culprit, Failure, Job, Run
from cicd_orchestrator.validation.bisect import bisect
from cicd_orchestrator.validation.jobs import failing_targets, make_runner

log = logging.getLogger(__name__)

MAX_LOG_BYTES_FOR_TEXT = 2_000_000
HUGE_LOG_BYTES = 256 * 1024 * 1024  # a log at least this big is said to be huge in the report
_ENV_KEYS = ("version", "Runner", "Image", "Operating System", "python", "node")


def describe_error(exc: BaseException) -> str:
    """One line for a person: the orchestrator's own errors say what happened already."""
    if isinstance(exc, CicdError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def job_log(
    provider: CIProvider, repo: str, job: Job | None, problems: list[str] | None = None
) -> Iterator[BinaryIO | None]:
    """The job's log, or None when it cannot be opened (why goes to ``problems``); an error
    raised by the caller while reading is not taken for an unreadable log."""
    if job is None:
        yield None
        return
    stack = contextlib.ExitStack()
    stream: BinaryIO | None = None
    try:
        stream = stack.enter_context(provider.open_job_log(repo, job.id))
    except UnknownRepositoryError:
        raise  # not a matter of one log: the stage cannot go on
    except Exception as exc:  # a missing baseline log is not an error
        log.warning("no log for job %s: %s", job.id, exc)
        if problems is not None:
            problems.append(describe_error(exc))
    with stack:
        yield stream


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def log_notes(analysis: LogAnalysis) -> list[str]:
    """What the report says of the log itself: its size when it is huge, what was cut."""
    notes = []
    if analysis.bytes >= HUGE_LOG_BYTES:
        notes.append(
            f"the job's log is huge ({_size(analysis.bytes)}, {analysis.lines} lines): "
            "read once, streaming, in bounded memory"
        )
    notes.extend(f"log: {w}" for w in analysis.warnings)
    return notes


# --------------------------------------------------------------------------- failures
def detect_failures(attempt: Attempt, learned: dict[str, object] | None = None) -> list[Failure]:
    """Analyse the log of every failed job against the same job's last green log (of every
    failed workflow of the session's push)."""
    found: list[Failure] = []
    for run in attempt.failed_runs:
        green = attempt.last_green_of(run)
        found.extend(_detect(attempt, run, job, green, learned) for job in run.failed_jobs)
    return found


def _detect(
    attempt: Attempt, run: Run, job: Job, green: Run | None, learned: dict[str, object] | None
) -> Failure:
    baseline_job = next((j for j in green.jobs if j.name == job.name), None) if green else None
    problems: list[str] = []
    with (
        job_log(attempt.provider, attempt.repository, job, problems) as stream,
        job_log(attempt.provider, attempt.repository, baseline_job) as baseline,
    ):
        if stream is None:
            return _with_ci_reason(_unreadable(job, run, problems), job)
        failed_step = next((s.name for s in job.steps if s.conclusion in BROKEN_CONCLUSIONS), None)
        names = [n for n in (failed_step, job.name) if n]
        analysis = analyze_log(stream, baseline=baseline, names=names)
    failure = classify(job.name, failed_step, analysis, learned=learned)
    config = attempt.config
    factory = attempt.agent_factory
    if config.llm_conn_id and factory and llm_classify.wanted(failure, config.llm_classify_below):
        llm_classify.second_opinion(failure, factory, config.llm_conn_id)
    failure.job_id = job.id
    failure.run_id = run.id
    failure.notes[:0] = log_notes(analysis)  # first: fixers read the last note as evidence
    _with_ci_reason(failure, job)
    if job.conclusion is Conclusion.TIMED_OUT and failure.category is FailureCategory.UNKNOWN:
        failure.category = FailureCategory.INFRASTRUCTURE
    return failure


def _with_ci_reason(failure: Failure, job: Job) -> Failure:
    """What the CI system itself says of the failure (GitLab's failure_reason) is evidence."""
    reason = getattr(job, "failure_reason", None)
    if reason:
        apply_failure_reason(failure, str(reason))
    return failure


def _unreadable(job: Job, run: Run, problems: list[str]) -> Failure:
    why = "; ".join(problems)
    message = "the job's log could not be read" + (f": {why}" if why else "")
    return Failure(
        job=job.name,
        job_id=job.id,
        run_id=run.id,
        step=None,
        category=FailureCategory.UNKNOWN,
        confidence=0.0,
        signature=f"unreadable-{job.name}",
        message=message,
    )


# --------------------------------------------------------------------------- context
def analyse_context(attempt: Attempt) -> Context:
    """Commits, changed files and manifests, dependency changes since the last green run."""
    run = attempt.failed_run
    green = attempt.last_green_run
    green_sha = green.head_sha if green else None
    mirror = attempt.mirror(run.head_sha, *([green_sha] if green_sha else []))
    green_text = _log_text(attempt, green.jobs) if green else None
    fail_text = _log_text(attempt, run.failed_jobs)
    ctx = build_context(mirror, green_sha, run.head_sha, green_text, fail_text)
    if green_sha and len(ctx.commits) == 1 and not ctx.culprit_sha:
        ctx.culprit_sha = ctx.commits[0].sha
        ctx.culprit_reason = "the only commit since the last green run"
    return ctx


def _log_text(attempt: Attempt, jobs: list[Job]) -> str | None:
    """The beginning of each job's log, joined (None when no log could be read)."""
    parts: list[str] = []
    for job in jobs:
        with job_log(attempt.provider, attempt.repository, job) as stream:
            if stream is not None:
                parts.append(stream.read(MAX_LOG_BYTES_FOR_TEXT).decode("utf-8", errors="replace"))
    return "\n".join(parts) if parts else None


def bisect_culprit(attempt: Attempt) -> Culprit:
    """The culprit commit, by bisecting the root failing jobs with the job runner (the one
    the context already names, when it does)."""
    known = attempt.state.context
    if known and known.culprit_sha:
        return Culprit(known.culprit_sha, known.culprit_reason)
    run = attempt.failed_run
    green = attempt.last_green_run
    if green is None:
        return Culprit(None, "no green run of this branch to bisect from")
    failures = attempt.state.failures
    roots = [f.job for f in failures if f.root_cause] or [j.name for j in run.failed_jobs]
    result = bisect(
        make_runner(attempt.config),
        attempt.mirror(run.head_sha, green.head_sha),
        green.head_sha,
        run.head_sha,
        failing_targets(run.workflow_path, roots),
        attempt.repository,
    )
    return Culprit(result.culprit_sha, result.reason, result.log)


# --------------------------------------------------------------------------- environment
def _env_lines(text: str) -> set[str]:
    out = set()
    for line in text.splitlines()[:400]:
        clean = line.split("Z ", 1)[-1].strip()
        if any(k.lower() in clean.lower() for k in _ENV_KEYS) and len(clean) < 200:
            out.add(clean)
    return out


def compare_environment(attempt: Attempt) -> list[str]:
    """Differences of the runner environment lines between the last green and failing logs."""
    green = attempt.last_green_run
    if green is None:
        return ["environment comparison: no green run to compare with"]
    green_text = _log_text(attempt, green.jobs) or ""
    fail_text = _log_text(attempt, attempt.failed_run.jobs) or ""
    added = sorted(_env_lines(fail_text) - _env_lines(green_text))[:20]
    if not added:
        return ["environment comparison: no difference in the runner environment"]
    return [f"environment differs from the last green run: {line}" for line in added]
