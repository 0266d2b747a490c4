"""Plain dataclasses shared by every layer: CI runs, failures, repairs, validation, sessions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.constants import (
    CombinedState,
    Conclusion,
    FailureCategory,
    Outcome,
    Priority,
    RepairKind,
    RunStatus,
    SessionStatus,
    Strategy,
)


# --------------------------------------------------------------------------- CI objects
@dataclass
class Step:
    number: int
    name: str
    status: RunStatus = RunStatus.COMPLETED
    conclusion: Conclusion | None = None
    started_at: str | None = None
    completed_at: str | None = None


@dataclass
class Job:
    id: int
    run_id: int
    name: str
    status: RunStatus
    conclusion: Conclusion | None
    run_attempt: int = 1
    steps: list[Step] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    started_at: str | None = None
    completed_at: str | None = None
    html_url: str = ""


@dataclass
class Run:
    id: int
    repository: str
    workflow: str
    workflow_path: str
    head_branch: str
    head_sha: str
    event: str
    status: RunStatus
    conclusion: Conclusion | None
    run_number: int
    run_attempt: int = 1
    created_at: str | None = None
    updated_at: str | None = None
    jobs: list[Job] = field(default_factory=list)
    html_url: str = ""

    @property
    def failed_jobs(self) -> list[Job]:
        bad = {Conclusion.FAILURE, Conclusion.TIMED_OUT, Conclusion.CANCELLED}
        return [j for j in self.jobs if j.conclusion in bad]


@dataclass
class RefStatus:
    """Combined CI state of a commit: every run of every workflow for that sha."""

    sha: str
    state: CombinedState
    runs: list[Run] = field(default_factory=list)


@dataclass
class Commit:
    sha: str
    message: str
    author: str = ""
    files: list[str] = field(default_factory=list)


@dataclass
class PullRequest:
    number: int
    head: str
    base: str
    title: str
    url: str
    state: str = "open"


@dataclass
class Issue:
    number: int
    title: str
    url: str
    state: str = "open"


# --------------------------------------------------------------------------- analysis
@dataclass
class Excerpt:
    """A few consecutive log lines that say why a job failed (1-based inclusive lines)."""

    start: int
    end: int
    text: str
    category: FailureCategory = FailureCategory.UNKNOWN
    pattern: str | None = None
    score: float = 0.0


@dataclass
class Failure:
    """One failed job, classified."""

    job: str
    job_id: int
    run_id: int
    step: str | None
    category: FailureCategory
    confidence: float
    signature: str
    pattern: str | None = None
    message: str = ""
    excerpts: list[Excerpt] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    recipe: str | None = None
    captures: dict[str, str] = field(default_factory=dict)
    root_cause: bool = True
    symptom_of: str | None = None
    tests: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class DependencyChange:
    name: str
    before: str | None
    after: str | None


@dataclass
class Context:
    """What changed between the last green run and the failing one."""

    failing_sha: str
    last_green_sha: str | None = None
    commits: list[Commit] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    changed_manifests: list[str] = field(default_factory=list)
    dependency_changes: list[DependencyChange] = field(default_factory=list)
    culprit_sha: str | None = None
    culprit_reason: str = ""
    bisect_log: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class DependencyMap:
    """Which failures are root causes and which are symptoms, and the order to repair."""

    root_causes: list[str] = field(default_factory=list)
    symptoms: dict[str, str] = field(default_factory=dict)
    repair_order: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- repairs
@dataclass
class Repair:
    """A proposed repair: a patch, a CI action (re-run), a revert or a hand-over."""

    fixer: str
    kind: RepairKind
    category: FailureCategory
    description: str
    jobs: list[str] = field(default_factory=list)
    patch: str = ""
    files: list[str] = field(default_factory=list)
    commit_message: str = ""
    confidence: float = 0.0
    evidence: list[str] = field(default_factory=list)
    revert_shas: list[str] = field(default_factory=list)
    validated: bool | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class FixerResult:
    """What one fixer task returns: the repairs it proposes and what it could not do."""

    fixer: str
    applicable: bool
    repairs: list[Repair] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class JobResult:
    job: str
    conclusion: Conclusion
    log_tail: str = ""
    seconds: float = 0.0


@dataclass
class ValidationResult:
    """Local validation of the merged repair on an isolated worktree."""

    reproduced: bool | None = None
    passed: bool | None = None
    regression_passed: bool | None = None
    failing_before: list[JobResult] = field(default_factory=list)
    after: list[JobResult] = field(default_factory=list)
    regression: list[JobResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.passed) and self.regression_passed is not False


# --------------------------------------------------------------------------- session
@dataclass
class Published:
    """What an attempt published and what the monitor must watch."""

    kind: RepairKind = RepairKind.NONE
    branch: str | None = None
    sha: str | None = None
    pull_request: PullRequest | None = None
    issue: Issue | None = None
    rerun_run_id: int | None = None
    rerun_attempt: int | None = None
    reruns: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class AttemptRecord:
    attempt: int
    strategy: Strategy
    dag_id: str = ""
    dag_run_id: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    status: str = "started"
    categories: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    validation: ValidationResult | None = None
    published: Published | None = None
    ci_conclusion: str | None = None
    ci_failure_signatures: list[str] = field(default_factory=list)
    stage_timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class LearnedPattern:
    signature: str
    category: FailureCategory
    pattern: str | None = None
    repair: str | None = None
    worked: bool | None = None
    seen: int = 1


@dataclass
class Links:
    failed_run: str = ""
    pull_requests: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    dag_runs: list[str] = field(default_factory=list)


@dataclass
class SessionState:
    """The seed's orchestration-state schema, one per (repository, failed run)."""

    session_id: str
    provider: str
    repository: str
    pipeline_id: int
    branch: str
    head_sha: str
    priority: Priority = Priority.MEDIUM
    persistence_mode: str = "continuous"
    status: SessionStatus = SessionStatus.OPEN
    outcome: Outcome = Outcome.PENDING
    current_attempt: int = 0
    max_attempts: int = 5
    total_failures: int = 0
    consecutive_failures: int = 0
    start_time: str | None = None
    end_time: str | None = None
    last_failure_time: str | None = None
    next_retry_time: str | None = None
    current_strategy: Strategy | None = None
    escalation_level: int = 0
    monitoring_active: bool = True
    green_threshold_met: bool = False
    learned_patterns: list[LearnedPattern] = field(default_factory=list)
    attempt_history: list[AttemptRecord] = field(default_factory=list)
    completed_stages: list[str] = field(default_factory=list)
    failed_stages: list[str] = field(default_factory=list)
    stage_timings: dict[str, float] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    context: Context | None = None
    dependency_map: DependencyMap | None = None
    links: Links = field(default_factory=Links)
    errors: list[str] = field(default_factory=list)
    report: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def attempt_record(self, attempt: int) -> AttemptRecord | None:
        for rec in self.attempt_history:
            if rec.attempt == attempt:
                return rec
        return None

    def replace(self, **changes: Any) -> SessionState:
        return dataclasses.replace(self, **changes)
