"""Closed vocabularies of the orchestrator."""

from __future__ import annotations

import enum


class FailureCategory(enum.StrEnum):
    """What kind of failure a failed job shows."""

    BUILD = "build"
    TEST = "test"
    QUALITY = "quality"
    DEPLOYMENT = "deployment"
    CONFIGURATION = "configuration"
    INFRASTRUCTURE = "infrastructure"
    FLAKY = "flaky"
    UNKNOWN = "unknown"


class Outcome(enum.StrEnum):
    """How a session ended (or that it has not ended yet)."""

    PENDING = "pending"
    FIXED = "fixed"
    RERUN_GREEN = "rerun_green"
    ESCALATED = "escalated"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    ALREADY_GREEN = "already_green"
    #: the repair was published and CI was not watched (``monitor_until_green`` is false)
    PUBLISHED = "published"
    #: a newer commit on the branch, or the branch going green by itself, made it moot
    SUPERSEDED = "superseded"


FINAL_OUTCOMES = frozenset(o for o in Outcome if o is not Outcome.PENDING)


class Strategy(enum.StrEnum):
    """The five escalation strategies, in the seed's order."""

    STANDARD_PARALLEL_FIXING = "standard-parallel-fixing"
    EXTENDED_ANALYSIS = "extended-analysis-with-context"
    SEQUENTIAL_FIXING = "sequential-fixing-with-validation"
    MANUAL_INTERVENTION = "manual-intervention-preparation"
    EMERGENCY_ROLLBACK = "emergency-rollback-preparation"


class PersistenceMode(enum.StrEnum):
    """How long a session keeps trying (the seed's ``persistence_mode``)."""

    ONESHOT = "oneshot"  # one attempt, one CI verdict, no escalation
    CONTINUOUS = "continuous"  # escalate through the attempts until green or max_attempts
    ADAPTIVE = "adaptive"  # escalate while the attempts make progress, else to a person


class SessionStatus(enum.StrEnum):
    """Where a session is in its life."""

    OPEN = "open"
    RUNNING_ATTEMPT = "running_attempt"
    WAITING_FOR_CI = "waiting_for_ci"
    WAITING_TO_ESCALATE = "waiting_to_escalate"
    CLOSED = "closed"


class Conclusion(enum.StrEnum):
    """Conclusion of a CI run, job or step (GitHub's vocabulary)."""

    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    TIMED_OUT = "timed_out"
    NEUTRAL = "neutral"


#: conclusions of a job (or step) that failed: it did not succeed and was not skipped
FAILED_CONCLUSIONS = frozenset({Conclusion.FAILURE, Conclusion.TIMED_OUT, Conclusion.CANCELLED})
#: conclusions that mean the work itself failed (a cancelled job was stopped, not broken)
BROKEN_CONCLUSIONS = frozenset({Conclusion.FAILURE, Conclusion.TIMED_OUT})


def failed_run_conclusions(cancelled_is_failure: bool) -> frozenset[Conclusion]:
    """The conclusions of a run that open a session (``cancelled_is_failure`` in the
    configuration decides whether a cancelled run counts)."""
    return FAILED_CONCLUSIONS if cancelled_is_failure else BROKEN_CONCLUSIONS


class RunStatus(enum.StrEnum):
    """Status of a CI run or job (GitHub's vocabulary)."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class CombinedState(enum.StrEnum):
    """Combined CI state of a ref."""

    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"
    NONE = "none"


class AttemptStatus(enum.StrEnum):
    """Where one attempt is: running, what it published, what CI said of it."""

    STARTED = "started"
    RUNNING = "running"
    PUBLISHED = "published"
    NOTHING_PUBLISHED = "nothing_published"
    CI_FAILED = "ci_failed"
    CI_GREEN = "ci_green"


class DecisionAction(enum.StrEnum):
    """What the monitor does once CI has spoken on an attempt."""

    CLOSE = "close"
    ESCALATE = "escalate"  # the next attempt, after the escalation delay
    REWATCH = "rewatch"  # re-run CI again within the same attempt (a flaky test)


class RollbackPolicy(enum.StrEnum):
    """Whether a rollback is published as a pull request or prepared as a plan only."""

    EXECUTE = "execute"
    PLAN = "plan"


class SandboxMode(enum.StrEnum):
    """Whether repository commands run in the command sandbox."""

    AUTO = "auto"  # where the machine allows it, else plainly (with a warning)
    REQUIRED = "required"  # refuse to run a repository command without it
    OFF = "off"


class FixingShape(enum.StrEnum):
    """The shape of an attempt's fixing TaskGroup."""

    PARALLEL = "parallel"  # one task per fixer group, changes merged
    SEQUENTIAL = "sequential"  # the same fixers, one validated fix per commit
    ISSUE = "issue"  # hand over to a person
    ROLLBACK = "rollback"  # revert the culprit


class RepairKind(enum.StrEnum):
    """What a repair does to make CI green."""

    CHANGE = "change"  # a patch on a fix branch
    RERUN = "rerun"  # re-run the failed jobs, no code change
    REVERT = "revert"  # revert the culprit commit(s) on a fix branch
    ISSUE = "issue"  # hand over to a person
    NONE = "none"


class Priority(enum.StrEnum):
    """Order of sessions, from the failing branch."""

    URGENT = "urgent"
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


PRIORITY_WEIGHT = {
    Priority.URGENT: 5,
    Priority.CRITICAL: 4,
    Priority.HIGH: 3,
    Priority.MEDIUM: 2,
    Priority.LOW: 1,
}

FIX_BRANCH_PREFIX = "cicd-fix/"
STATUS_CONTEXT = "cicd-orchestrator"
#: the context of the status on the failing commit that says what the session is doing
SESSION_STATUS_CONTEXT = "cicd-orchestrator/session"
#: the orchestrator's own status contexts: they never count in a commit's combined CI state
OWN_STATUS_CONTEXTS = frozenset({STATUS_CONTEXT, SESSION_STATUS_CONTEXT})
MARKER_PREFIX = "<!-- cicd-orchestrator:"
#: what a signed marker carries before its signature (an HMAC of what precedes it)
MARKER_SIGNATURE = ":sig="
