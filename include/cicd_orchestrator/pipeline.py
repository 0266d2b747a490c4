"""The stages of an attempt as plain functions: provider, configuration and state in, results out.

Each Airflow task of the attempt DAGs is a thin call to one of these; tests and benchmarks
call them directly. Nothing here imports Airflow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import (
    CombinedState,
    Conclusion,
    FailureCategory,
    Priority,
    RepairKind,
    RunStatus,
)
from cicd_orchestrator.exceptions import (
    CicdError,
    ConfError,
    SafetyError,
    UnknownRepositoryError,
    UnknownRunError,
    WorkspaceError,
)
from cicd_orchestrator.models import (
    Context,
    DependencyMap,
    Failure,
    FixerResult,
    Job,
    Published,
    Repair,
    Run,
    SessionState,
    ValidationResult,
)
from cicd_orchestrator.publish.markers import marker
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.repair.workspace import MirrorCache, Workspace, checkout
from cicd_orchestrator.validation.jobs import JobTarget, all_passed, make_runner, run_jobs

if TYPE_CHECKING:
    from cicd_orchestrator.logs.analyze import LogAnalysis

log = logging.getLogger(__name__)

MAX_LOG_BYTES_FOR_TEXT = 2_000_000
HUGE_LOG_BYTES = 256 * 1024 * 1024  # a log at least this big is said to be huge in the report


# --------------------------------------------------------------------------- session conf
@dataclass(frozen=True)
class SessionRequest:
    """A validated request to open a session (DAG run conf, webhook, sweep)."""

    repository: str
    run_id: int | None
    provider: str = "local"
    head_sha: str | None = None
    priority: str | None = None
    config_overrides: dict[str, object] = field(default_factory=dict)


def _run_id(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfError(f"conf.run_id must be a positive integer, got {value!r}")
    return value


def parse_request(conf: object) -> SessionRequest:
    """Validate a DAG run conf; a clear ConfError names what is wrong."""
    if not isinstance(conf, dict):
        raise ConfError("the DAG run conf must be a JSON object")
    repo = conf.get("repository")
    if not isinstance(repo, str) or repo.count("/") != 1 or not all(repo.split("/")):
        raise ConfError(f"conf.repository must look like 'owner/name', got {repo!r}")
    run_id = _run_id(conf.get("run_id"))
    head_sha = conf.get("head_sha")
    if head_sha is not None and (not isinstance(head_sha, str) or len(head_sha) < 7):
        raise ConfError(f"conf.head_sha must be a commit sha, got {head_sha!r}")
    if run_id is None and head_sha is None:
        raise ConfError("conf needs run_id (the failed run) or head_sha (its commit)")
    provider = conf.get("provider") or "local"
    if not isinstance(provider, str):
        raise ConfError("conf.provider must be a string")
    priority = conf.get("priority")
    if priority is not None and priority not in {p.value for p in Priority}:
        raise ConfError(f"conf.priority must be one of {[p.value for p in Priority]}")
    overrides = conf.get("config")
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, dict):
        raise ConfError("conf.config must be a JSON object")
    return SessionRequest(repo, run_id, provider, head_sha, priority, overrides)


def resolve_failed_run(
    provider: CIProvider, request: SessionRequest, failed: set[Conclusion]
) -> Run:
    """The run a request names: by id, or the newest failed run of its commit."""
    if request.run_id is not None:
        return provider.get_run(request.repository, request.run_id)
    runs = provider.list_runs(request.repository, head_sha=request.head_sha)
    for run in runs:
        if run.status is RunStatus.COMPLETED and run.conclusion in failed:
            return provider.get_run(request.repository, run.id)
    raise UnknownRunError(
        f"no failed run of {request.repository} for commit {str(request.head_sha)[:12]}"
    )


# --------------------------------------------------------------------------- workspaces
def cache_root(config: OrchestratorConfig) -> Path:
    root = os.environ.get("CICD_CACHE_DIR")
    return Path(root) if root else config.local_root().parent / "cicd-cache"


def mirror_for(provider: CIProvider, config: OrchestratorConfig, repo: str, *shas: str) -> Path:
    return MirrorCache(cache_root(config)).mirror(repo, provider.git_remote(repo), shas)


def workspace_factory(
    provider: CIProvider, config: OrchestratorConfig, repo: str, sha: str, date: str | None
) -> contextlib.AbstractContextManager[Workspace]:
    mirror = mirror_for(provider, config, repo, sha)
    return checkout(mirror, sha, date=date)


# --------------------------------------------------------------------------- discovery
def failed_run(provider: CIProvider, state: SessionState) -> Run:
    return provider.get_run(state.repository, state.pipeline_id)


def last_green_run(provider: CIProvider, repo: str, branch: str, before: Run) -> Run | None:
    for run in provider.list_runs(repo, branch=branch):
        if (
            run.id < before.id
            and run.workflow_path == before.workflow_path
            and run.status is RunStatus.COMPLETED
            and run.conclusion is Conclusion.SUCCESS
        ):
            return run
    return None


def _job_by_name(run: Run, name: str) -> Job | None:
    return next((j for j in run.jobs if j.name == name), None)


def describe_error(exc: BaseException) -> str:
    """One line for a person: the orchestrator's own errors say what happened already."""
    if isinstance(exc, CicdError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _job_log(
    provider: CIProvider, repo: str, job: Job | None, problems: list[str] | None = None
) -> Iterator[object]:
    """The job's log, or None when it cannot be opened (why goes to ``problems``); an error
    raised by the caller while reading is not taken for an unreadable log."""
    if job is None:
        yield None
        return
    stack = contextlib.ExitStack()
    stream: object = None
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


def detect_failures(
    provider: CIProvider, state: SessionState, learned: dict[str, object] | None = None
) -> list[Failure]:
    """Analyse the log of every failed job against the same job's last green log."""
    from cicd_orchestrator.analysis.classify import classify
    from cicd_orchestrator.logs.analyze import analyze_log

    run = failed_run(provider, state)
    green = last_green_run(provider, state.repository, state.branch, run)
    if green is not None:
        green = provider.get_run(state.repository, green.id)
    failures: list[Failure] = []
    for job in run.failed_jobs:
        baseline_job = _job_by_name(green, job.name) if green else None
        problems: list[str] = []
        with (
            _job_log(provider, state.repository, job, problems) as stream,
            _job_log(provider, state.repository, baseline_job) as baseline,
        ):
            if stream is None:
                failures.append(_with_ci_reason(_unreadable(job, run, problems), job))
                continue
            analysis = analyze_log(stream, baseline=baseline)  # type: ignore[arg-type]
        failed_step = next(
            (
                s.name
                for s in job.steps
                if s.conclusion in (Conclusion.FAILURE, Conclusion.TIMED_OUT)
            ),
            None,
        )
        failure = classify(job.name, failed_step, analysis, learned=learned)
        failure.job_id = job.id
        failure.run_id = run.id
        failure.notes[:0] = log_notes(analysis)  # first: fixers read the last note as evidence
        _with_ci_reason(failure, job)
        if job.conclusion is Conclusion.TIMED_OUT and failure.category is FailureCategory.UNKNOWN:
            failure.category = FailureCategory.INFRASTRUCTURE
        failures.append(failure)
    return failures


def _with_ci_reason(failure: Failure, job: Job) -> Failure:
    """What the CI system itself says of the failure (GitLab's failure_reason) is evidence."""
    reason = getattr(job, "failure_reason", None)
    if reason:
        from cicd_orchestrator.ci.gitlab.reasons import apply_failure_reason

        apply_failure_reason(failure, str(reason))
    return failure


def _unreadable(job: Job, run: Run, problems: list[str] | None = None) -> Failure:
    why = "; ".join(problems or [])
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


def analyse_context(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState
) -> Context:
    """Commits, changed files and manifests, dependency changes since the last green run."""
    from cicd_orchestrator.analysis.context import build_context

    run = failed_run(provider, state)
    green = last_green_run(provider, state.repository, state.branch, run)
    green_sha = green.head_sha if green else None
    mirror = mirror_for(
        provider, config, state.repository, run.head_sha, *([green_sha] if green_sha else [])
    )
    green_text = _first_job_log_text(provider, state.repository, green) if green else None
    fail_text = _first_job_log_text(provider, state.repository, run, failed_only=True)
    ctx = build_context(mirror, green_sha, run.head_sha, green_text, fail_text)
    if green_sha and len(ctx.commits) == 1 and not ctx.culprit_sha:
        ctx.culprit_sha = ctx.commits[0].sha
        ctx.culprit_reason = "the only commit since the last green run"
    return ctx


def _first_job_log_text(
    provider: CIProvider, repo: str, run: Run, failed_only: bool = False
) -> str | None:
    full = provider.get_run(repo, run.id)
    jobs = full.failed_jobs if failed_only else full.jobs
    parts: list[str] = []
    for job in jobs:
        with _job_log(provider, repo, job) as stream:
            if stream is not None:
                parts.append(
                    stream.read(MAX_LOG_BYTES_FOR_TEXT).decode(  # type: ignore[attr-defined]
                        "utf-8", errors="replace"
                    )
                )
    return "\n".join(parts) if parts else None


def failing_targets(run: Run, jobs: list[str]) -> list[JobTarget]:
    return [JobTarget(run.workflow_path, frozenset(jobs))] if jobs else []


def bisect_culprit(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState, failures: list[Failure]
) -> tuple[str | None, str, list[str]]:
    """(culprit sha, reason, log) by bisecting the root failing jobs with the job runner."""
    from cicd_orchestrator.analysis.bisect import bisect

    run = failed_run(provider, state)
    green = last_green_run(provider, state.repository, state.branch, run)
    if green is None:
        return None, "no green run of this branch to bisect from", []
    roots = [f.job for f in failures if f.root_cause] or [j.name for j in run.failed_jobs]
    mirror = mirror_for(provider, config, state.repository, run.head_sha, green.head_sha)
    result = bisect(
        make_runner(config),
        mirror,
        green.head_sha,
        run.head_sha,
        failing_targets(run, roots),
        state.repository,
    )
    return result.culprit_sha, result.reason, result.log


# --------------------------------------------------------------------------- classification
def job_needs(run: Run) -> dict[str, list[str]]:
    return {job.name: list(job.needs) for job in run.jobs}


def map_dependencies(run: Run, failures: list[Failure]) -> DependencyMap:
    from cicd_orchestrator.analysis.depmap import map_dependencies as _map

    return _map(failures, job_needs(run))


# --------------------------------------------------------------------------- fixing
def run_fixers(
    fixers: list[Fixer],
    provider: CIProvider,
    config: OrchestratorConfig,
    state: SessionState,
    failures: list[Failure] | None = None,
) -> list[FixerResult]:
    run = failed_run(provider, state)
    ctx = RepairContext(
        repository=state.repository,
        workflow_path=run.workflow_path,
        workflow_jobs=job_needs(run),
        head_sha=state.head_sha,
        failures=failures if failures is not None else state.failures,
        context=state.context,
        config=config,
        workspace=lambda: workspace_factory(
            provider, config, state.repository, state.head_sha, state.start_time
        ),
    )
    results = []
    for fixer in fixers:
        try:
            results.append(fixer.propose(ctx))
        except Exception as exc:  # one broken fixer must not cost the others their repairs
            log.exception("fixer %s failed", fixer.name)
            results.append(
                FixerResult(
                    fixer=fixer.name,
                    applicable=True,
                    unrepaired=[f"{fixer.name} failed: {type(exc).__name__}: {exc}"],
                )
            )
    return results


def ordered_repairs(state: SessionState, results: list[FixerResult]) -> list[Repair]:
    """Repairs in the dependency mapping's order (root causes first); the repairs of one
    fixer keep their own order, since each patch may build on the one before it."""
    order = state.dependency_map.repair_order if state.dependency_map else []

    def rank(result: FixerResult) -> int:
        jobs = [j for r in result.repairs for j in r.jobs if j in order]
        return min((order.index(j) for j in jobs), default=len(order))

    ranked = sorted(results, key=rank)
    return [r for res in ranked for r in res.repairs]


def apply_repair_findings(failures: list[Failure], repairs: list[Repair]) -> None:
    """What fixing established about the failures (a test confirmed flaky) goes back to them."""
    for repair in repairs:
        if repair.category is not FailureCategory.FLAKY:
            continue
        for failure in failures:
            if failure.job in repair.jobs and failure.category is not FailureCategory.FLAKY:
                failure.category = FailureCategory.FLAKY
                failure.notes.extend(n for n in repair.evidence[-1:] if n not in failure.notes)


def merge_repairs(
    provider: CIProvider,
    config: OrchestratorConfig,
    state: SessionState,
    results: list[FixerResult],
) -> tuple[list[Repair], list[str]]:
    """Apply every proposed patch in order on one workspace; a patch that does not apply
    over the others is a conflict and is dropped."""
    repairs = ordered_repairs(state, results)
    actions = [r for r in repairs if r.kind is RepairKind.RERUN]
    changes = [r for r in repairs if r.kind in (RepairKind.CHANGE, RepairKind.REVERT)]
    if not changes:
        return actions[:1], []
    kept: list[Repair] = []
    conflicts: list[str] = []
    with workspace_factory(
        provider, config, state.repository, state.head_sha, state.start_time
    ) as ws:
        for repair in changes:
            if ws.apply(repair.patch):
                ws.commit(repair.commit_message or repair.description)
                kept.append(repair)
            else:
                conflicts.append(
                    f"{repair.fixer}: its change conflicts with {', '.join(k.fixer for k in kept)}"
                )
    return kept, conflicts


# --------------------------------------------------------------------------- validation
@contextlib.contextmanager
def fixed_workspace(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState, repairs: list[Repair]
) -> Iterator[Workspace]:
    """A workspace at the failing head with the repairs committed, one commit per repair."""
    with workspace_factory(
        provider, config, state.repository, state.head_sha, state.start_time
    ) as ws:
        for repair in repairs:
            if repair.kind not in (RepairKind.CHANGE, RepairKind.REVERT):
                continue
            if not ws.apply(repair.patch):
                raise WorkspaceError(f"the change of {repair.fixer} no longer applies")
            ws.commit(repair.commit_message or repair.description)
        yield ws


def validate_fixes(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState, repairs: list[Repair]
) -> ValidationResult:
    """Reproduce the failing jobs on the head, then run them with the repairs (must pass)."""
    run = failed_run(provider, state)
    failing = sorted({f.job for f in state.failures} | {j for r in repairs for j in r.jobs})
    targets = failing_targets(run, failing)
    result = ValidationResult()
    if not repairs:
        result.notes.append("nothing to validate: no repair was proposed")
        return result
    runner = make_runner(config)
    mirror = mirror_for(provider, config, state.repository, state.head_sha)
    rerun = [r for r in repairs if r.kind is RepairKind.RERUN]
    before = run_jobs(
        runner,
        mirror,
        state.head_sha,
        targets,
        repository=state.repository,
        run_attempt=run.run_attempt,
    )
    result.failing_before = before
    result.reproduced = not all_passed(before)
    if not result.reproduced:
        result.notes.append(
            "the failure does not reproduce locally: a sign of flakiness or of the CI environment"
        )
    if rerun:
        after = run_jobs(
            runner,
            mirror,
            state.head_sha,
            targets,
            repository=state.repository,
            run_attempt=run.run_attempt + 1,
        )
        result.after = after
        result.passed = True
        result.notes.append(
            "a local run as the re-run would execute it "
            + ("passes" if all_passed(after) else "still fails; CI's environment may differ")
        )
        return result
    with fixed_workspace(provider, config, state, repairs) as ws:
        after = run_jobs(runner, ws.path, ws.head(), targets, repository=state.repository)
    result.after = after
    result.passed = all_passed(after)
    return result


def regression_run(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState, repairs: list[Repair]
) -> ValidationResult:
    """Run the rest of the workflow with the repairs as a regression check."""
    changes = [r for r in repairs if r.kind in (RepairKind.CHANGE, RepairKind.REVERT)]
    result = ValidationResult()
    if not changes:
        result.notes.append("no code change: no regression run needed")
        return result
    run = failed_run(provider, state)
    failing = {f.job for f in state.failures} | {j for r in repairs for j in r.jobs}
    others = [j.name for j in run.jobs if j.name not in failing]
    if not others:
        result.regression_passed = True
        result.notes.append("every job of the workflow was already validated")
        return result
    with fixed_workspace(provider, config, state, changes) as ws:
        regression = run_jobs(
            make_runner(config),
            ws.path,
            ws.head(),
            failing_targets(run, others),
            repository=state.repository,
        )
    result.regression = regression
    result.regression_passed = all_passed(regression)
    return result


# --------------------------------------------------------------------------- publishing
def fix_branch_name(config: OrchestratorConfig, state: SessionState, attempt: int) -> str:
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in state.branch)
    return f"{config.fix_branch_prefix}{base}-run{state.pipeline_id}-attempt{attempt}"


def check_branch_safe(
    provider: CIProvider, config: OrchestratorConfig, repo: str, branch: str, failing_branch: str
) -> None:
    if branch == provider.default_branch(repo):
        raise SafetyError(f"refusing to push to the default branch {branch!r}")
    if config.is_protected(branch, provider.protected_branches(repo)):
        raise SafetyError(f"refusing to push to the protected branch {branch!r}")
    if branch == failing_branch and not config.commit_to_pr_branch:
        raise SafetyError("committing to the failing branch needs commit_to_pr_branch")


def publish_change(
    provider: CIProvider,
    config: OrchestratorConfig,
    state: SessionState,
    attempt: int,
    repairs: list[Repair],
    report: str,
) -> Published:
    branch = fix_branch_name(config, state, attempt)
    check_branch_safe(provider, config, state.repository, branch, state.branch)
    kind = (
        RepairKind.REVERT
        if any(r.kind is RepairKind.REVERT for r in repairs)
        else RepairKind.CHANGE
    )
    with fixed_workspace(provider, config, state, repairs) as ws:
        sha = provider.push_branch(state.repository, str(ws.path), branch)
    title_kind = "Revert the culprit" if kind is RepairKind.REVERT else "Fix CI"
    title = f"{title_kind} of {state.branch} run {state.pipeline_id} (attempt {attempt})"
    body_lines = [
        marker(state.session_id, "pull-request", attempt),
        f"The orchestrator repaired the failing CI run {state.pipeline_id} of "
        f"`{state.branch}` ({state.head_sha[:12]}).",
        "",
        *[f"- {r.description} ({r.fixer}, confidence {r.confidence:.2f})" for r in repairs],
    ]
    pr = provider.open_or_update_pull_request(
        state.repository,
        branch,
        state.branch,
        title,
        "\n".join(body_lines),
        marker(state.session_id, "pull-request", attempt),
    )
    provider.set_commit_status(
        state.repository,
        sha,
        CombinedState.PENDING,
        f"attempt {attempt}: waiting for CI on the fix",
    )
    provider.comment(
        state.repository,
        pr.number,
        marker(state.session_id, "report", attempt) + "\n" + report,
        marker(state.session_id, "report", attempt),
    )
    return Published(kind=kind, branch=branch, sha=sha, pull_request=pr)


def publish_rerun(provider: CIProvider, state: SessionState) -> Published:
    """Re-run the failed jobs; idempotent: a retried task does not re-run twice."""
    run = provider.get_run(state.repository, state.pipeline_id)
    if run.status is not RunStatus.COMPLETED:
        return Published(
            kind=RepairKind.RERUN,
            rerun_run_id=run.id,
            rerun_attempt=run.run_attempt,
            notes=["a re-run is already in progress"],
        )
    new_attempt = provider.rerun_failed_jobs(state.repository, state.pipeline_id)
    return Published(
        kind=RepairKind.RERUN, rerun_run_id=run.id, rerun_attempt=new_attempt, reruns=1
    )


def rerun_again(provider: CIProvider, state: SessionState, published: Published) -> Published:
    """Another CI re-run of the failed jobs in the same attempt (a flaky test); idempotent:
    nothing happens while the last re-run is still the newest attempt of the run and running,
    or once a newer attempt than the one watched exists."""
    run = provider.get_run(state.repository, state.pipeline_id)
    if run.run_attempt != published.rerun_attempt or run.status is not RunStatus.COMPLETED:
        return dataclasses.replace(published, rerun_attempt=run.run_attempt)
    new_attempt = provider.rerun_failed_jobs(state.repository, state.pipeline_id)
    return dataclasses.replace(
        published,
        rerun_attempt=new_attempt,
        reruns=published.reruns + 1,
        notes=[*published.notes, f"re-run again: attempt {new_attempt} of run {run.id}"],
    )


def publish_issue(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState
) -> Published:
    from cicd_orchestrator.publish.issue import issue_body, issue_title

    diff = ""
    if state.context and state.context.culprit_sha:
        mirror = mirror_for(provider, config, state.repository, state.context.culprit_sha)
        from cicd_orchestrator.repair.workspace import git

        with contextlib.suppress(WorkspaceError):
            diff = git(["show", "--stat", "--patch", state.context.culprit_sha], cwd=mirror)
    run = failed_run(provider, state)
    mark = marker(state.session_id, "issue")
    body = mark + "\n" + issue_body(state, diff, [run.workflow_path])
    issue = provider.open_issue(
        state.repository, issue_title(state), body, mark, labels=["ci-failure", "automated"]
    )
    return Published(kind=RepairKind.ISSUE, issue=issue)


# --------------------------------------------------------------------------- monitoring
@dataclass
class CIState:
    done: bool
    green: bool
    detail: str
    signatures: list[str] = field(default_factory=list)


def ci_state(provider: CIProvider, repo: str, head_sha: str, published: Published) -> CIState:
    """The CI state of what an attempt published (for the deferrable sensor)."""
    if published.kind is RepairKind.RERUN and published.rerun_run_id:
        run = provider.get_run(repo, published.rerun_run_id, attempt=published.rerun_attempt)
        if run.status is not RunStatus.COMPLETED:
            return CIState(False, False, f"re-run attempt {run.run_attempt} is {run.status.value}")
        green = run.conclusion is Conclusion.SUCCESS
        return CIState(
            True,
            green,
            f"re-run attempt {run.run_attempt}: {run.conclusion}",
            [j.name for j in run.failed_jobs],
        )
    sha = published.sha if published.kind in (RepairKind.CHANGE, RepairKind.REVERT) else None
    if sha is None:
        status = provider.ref_status(repo, head_sha)
        green = status.state is CombinedState.SUCCESS
        return CIState(
            True, green, f"nothing was published to watch; the failing head is {status.state.value}"
        )
    status = provider.ref_status(repo, sha)
    if status.state in (CombinedState.PENDING, CombinedState.NONE):
        return CIState(False, False, f"CI on {sha[:12]} is {status.state.value}")
    failed = [j.name for r in status.runs for j in r.failed_jobs]
    return CIState(
        True,
        status.state is CombinedState.SUCCESS,
        f"CI on {sha[:12]}: {status.state.value}",
        failed,
    )


# --------------------------------------------------------------------------- more stages
def classify_failures(
    provider: CIProvider,
    state: SessionState,
    learned: dict[str, object] | None = None,
    max_ci_reruns: int = 4,
) -> list[Failure]:
    """Final categories: what the repository learned first, then evidence of flakiness
    (the same job passed on the same commit in another run or attempt)."""
    from cicd_orchestrator.analysis.classify import mark_flaky

    passed_jobs: set[str] = set()
    for run in provider.list_runs(state.repository, head_sha=state.head_sha):
        full = provider.get_run(state.repository, run.id)
        for attempt in range(1, full.run_attempt + 1):
            snapshot = (
                full
                if attempt == full.run_attempt
                else provider.get_run(state.repository, run.id, attempt=attempt)
            )
            passed_jobs |= {j.name for j in snapshot.jobs if j.conclusion is Conclusion.SUCCESS}
    reruns = [
        r
        for r in state.attempt_history
        if r.published is not None and r.published.kind is RepairKind.RERUN
    ]
    seen_after_rerun = {sig for r in reruns for sig in r.ci_failure_signatures}
    out: list[Failure] = []
    for failure in state.failures:
        entry = (learned or {}).get(failure.signature)
        if isinstance(entry, dict) and entry.get("category"):
            failure.category = FailureCategory(str(entry["category"]))
            failure.notes.append("category learned from earlier sessions of this repository")
        if failure.job in passed_jobs:
            failure = mark_flaky(
                failure,
                f"job {failure.job} passed on the same commit "
                f"{state.head_sha[:12]} in another run or attempt",
            )
        if reruns and (failure.job in seen_after_rerun or failure.signature in seen_after_rerun):
            flaky = failure.category is FailureCategory.FLAKY
            if not flaky or session_reruns(state) >= max_ci_reruns:
                failure.notes.append("repeated-after-rerun")
        out.append(failure)
    return out


def session_reruns(state: SessionState) -> int:
    """CI re-runs the session has made so far (every attempt, every re-watch)."""
    return sum(r.published.reruns for r in state.attempt_history if r.published)


def compare_environment(provider: CIProvider, state: SessionState) -> list[str]:
    """Differences of the runner environment lines between the last green and failing logs."""
    run = failed_run(provider, state)
    green = last_green_run(provider, state.repository, state.branch, run)
    if green is None:
        return ["environment comparison: no green run to compare with"]
    green_text = _first_job_log_text(provider, state.repository, green) or ""
    fail_text = _first_job_log_text(provider, state.repository, run) or ""

    def env_lines(text: str) -> set[str]:
        keys = ("version", "Runner", "Image", "Operating System", "python", "node")
        out = set()
        for line in text.splitlines()[:400]:
            clean = line.split("Z ", 1)[-1].strip()
            if any(k.lower() in clean.lower() for k in keys) and len(clean) < 200:
                out.add(clean)
        return out

    added = sorted(env_lines(fail_text) - env_lines(green_text))[:20]
    if not added:
        return ["environment comparison: no difference in the runner environment"]
    return [f"environment differs from the last green run: {line}" for line in added]


def sequential_repairs(
    provider: CIProvider,
    config: OrchestratorConfig,
    state: SessionState,
    results: list[FixerResult],
) -> tuple[list[Repair], list[str]]:
    """One fix per commit in dependency order, each validated alone on top of the previous."""
    repairs = ordered_repairs(state, results)
    actions = [r for r in repairs if r.kind is RepairKind.RERUN]
    kept: list[Repair] = []
    notes: list[str] = []
    run = failed_run(provider, state)
    runner = make_runner(config)
    for repair in (r for r in repairs if r.kind in (RepairKind.CHANGE, RepairKind.REVERT)):
        try:
            with fixed_workspace(provider, config, state, [*kept, repair]) as ws:
                results_after = run_jobs(
                    runner,
                    ws.path,
                    ws.head(),
                    failing_targets(run, repair.jobs),
                    repository=state.repository,
                )
        except WorkspaceError as exc:
            notes.append(f"{repair.fixer}: does not apply on top of the previous fixes: {exc}")
            continue
        repair.validated = all_passed(results_after)
        if repair.validated:
            kept.append(repair)
        else:
            notes.append(
                f"{repair.fixer}: {', '.join(repair.jobs)} still fail with this fix "
                "alone; not committed"
            )
    if not kept and actions:
        return actions[:1], notes
    return kept, notes


def context_package(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState
) -> dict[str, object]:
    """What a person needs besides the failures: the culprit and how to reproduce."""
    notes = []
    ctx = state.context
    if ctx and ctx.culprit_sha:
        notes.append(f"culprit {ctx.culprit_sha[:12]}: {ctx.culprit_reason}")
    else:
        notes.append("no culprit commit is known")
    run = failed_run(provider, state)
    notes.append(
        f"reproduce: check out {state.head_sha[:12]} and run the jobs of "
        f"{run.workflow_path}: {', '.join(j.name for j in run.failed_jobs)}"
    )
    return {"notes": notes}


def rollback_plan(provider: CIProvider, state: SessionState) -> dict[str, object]:
    """The state to come back to: the branch head and the culprit to revert."""
    ctx = state.context
    return {
        "branch": state.branch,
        "head_sha": state.head_sha,
        "revert": [ctx.culprit_sha] if ctx and ctx.culprit_sha else [],
        "last_green_sha": ctx.last_green_sha if ctx else None,
        "default_branch": provider.default_branch(state.repository),
    }


def publish_attempt(
    provider: CIProvider, config: OrchestratorConfig, state: SessionState, attempt: int
) -> Published:
    """Publish the attempt's validated repairs (change, revert, re-run or issue)."""
    from cicd_orchestrator.report import render_report

    record = state.attempt_record(attempt)
    repairs = list(record.repairs) if record else []
    validation = record.validation if record else None
    issue = [r for r in repairs if r.kind is RepairKind.ISSUE]
    if issue:
        return publish_issue(provider, config, state)
    changes = [r for r in repairs if r.kind in (RepairKind.CHANGE, RepairKind.REVERT)]
    reruns = [r for r in repairs if r.kind is RepairKind.RERUN]
    if changes:
        if not (validation and validation.ok):
            return Published(notes=["the repair failed validation and was not published"])
        if any(r.kind is RepairKind.REVERT for r in changes) and config.rollback_policy == "plan":
            return Published(notes=["rollback prepared as a plan only (rollback_policy=plan)"])
        return publish_change(provider, config, state, attempt, changes, render_report(state))
    if reruns:
        return publish_rerun(provider, state)
    return Published(notes=["no repair applies: escalating"])
