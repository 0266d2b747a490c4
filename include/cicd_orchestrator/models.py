"""Plain dataclasses shared by every layer: CI runs, failures, repairs, validation, sessions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.constants import (
    FAILED_CONCLUSIONS,
    AttemptStatus,
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
    pull_request_number: int | None = None  # the pull request of a pull_request run

    @property
    def failed_jobs(self) -> list[Job]:
        return [j for j in self.jobs if j.conclusion in FAILED_CONCLUSIONS]


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
    draft: bool = False


@dataclass(frozen=True)
class PullHead:
    """Where a pull request's changes come from: its head branch and commit, and whether
    that branch is in the base repository itself (False: a fork's)."""

    number: int
    branch: str
    sha: str
    same_repository: bool


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
    #: the job failed again after a CI re-run of this session (no re-run will help)
    repeated_after_rerun: bool = False
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
class Culprit:
    """The commit that broke the branch, as a bisection (or the context) names it."""

    sha: str | None
    reason: str
    log: list[str] = field(default_factory=list)


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
    #: the pull request of this repair is opened as a draft (a person reviews it first)
    draft: bool = False


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
    #: why the job could not be replayed locally (its fix is verified by the real CI)
    not_replayable: str | None = None


@dataclass
class RepairRound:
    """One round of repairs of an attempt: the failures it found (the first round: those
    discovery found; a later one: a new failure the previous round's repairs revealed in
    the same job) and the repairs it made on top of the previous rounds'."""

    number: int
    failures: list[Failure] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ValidationResult:
    """Local validation of the merged repair on an isolated worktree.

    ``ok`` is strict: every replayed job passed here. ``ci_verified``: the repair cannot be
    (or, by policy, is not) verified here, and the real CI decides on it: a job that still
    fails is one this machine cannot replay (``not_replayable`` says which and why) and no
    job that could be replayed failed. ``rounds``: the repair rounds, when validation found
    a new failure behind a repaired one and repaired it too (the first round included)."""

    reproduced: bool | None = None
    passed: bool | None = None
    regression_passed: bool | None = None
    failing_before: list[JobResult] = field(default_factory=list)
    after: list[JobResult] = field(default_factory=list)
    regression: list[JobResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ci_verified: bool = False
    #: the jobs this machine could not replay, each "job: why"
    not_replayable: list[str] = field(default_factory=list)
    rounds: list[RepairRound] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.passed) and self.regression_passed is not False

    @property
    def publishable(self) -> bool:
        """Validated here, or left to the real CI to verify (published as a draft)."""
        return self.ok or self.ci_verified

    @property
    def round_repairs(self) -> list[Repair]:
        """The repairs of the rounds after the first (made during validation)."""
        return [r for rnd in self.rounds[1:] for r in rnd.repairs]


# --------------------------------------------------------------------------- session
@dataclass
class CIState:
    """CI's state of what an attempt published (the monitor's watch)."""

    done: bool
    green: bool
    detail: str
    signatures: list[str] = field(default_factory=list)
    gone: bool = False  # the repository or run is not found any more
    timed_out: bool = False
    polls: int = 0
    #: no CI run appeared for the published fix (its branch gets no CI at all)
    no_ci: bool = False
    #: the watch ended because the session's failure is superseded (``detail`` says why)
    superseded: bool = False


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
    #: the fix is a draft pull request the real CI verifies (local validation could not)
    ci_verified: bool = False
    #: by when (ISO, UTC) CI should have started a run on the fix: without one by then the
    #: fix's branch gets no CI at all (``ci_no_run_grace`` after publishing)
    ci_expected_by: str | None = None


@dataclass
class AttemptRecord:
    attempt: int
    strategy: Strategy
    dag_id: str = ""
    dag_run_id: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    status: AttemptStatus = AttemptStatus.STARTED
    categories: list[str] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    validation: ValidationResult | None = None
    #: the repair rounds (when validation repaired a failure the first repairs revealed)
    rounds: list[RepairRound] = field(default_factory=list)
    published: Published | None = None
    ci_conclusion: Conclusion | None = None
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
    #: every failed run of the push (same repository, branch and head commit): the first
    #: one (``pipeline_id``) and those of the other workflows that joined the session
    failed_runs: list[int] = field(default_factory=list)
    #: the failed run's workflow, the event that started it and its pull request (if any)
    workflow: str = ""
    event: str = ""
    pull_request_number: int | None = None
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
    #: how many times the state was saved: a save of an older version is refused, so two
    #: writers never overwrite each other's changes
    version: int = 0

    def attempt_record(self, attempt: int) -> AttemptRecord | None:
        for rec in self.attempt_history:
            if rec.attempt == attempt:
                return rec
        return None

    def replace(self, **changes: Any) -> SessionState:
        return dataclasses.replace(self, **changes)
