"""GitLab's ``failure_reason`` of a failed job, as evidence for the classification.

GitLab says why it failed a job (``script_failure``, ``runner_system_failure``,
``stuck_or_timeout_failure``, ``api_failure``...). A script failure leaves the verdict to the
job's log; the others are facts about the CI system that the log may not even show (a runner
that died before the script started), so they decide the category: infrastructure (re-run)
for runner, system, API, scheduling and timeout failures, configuration for what only a
change of the project's CI settings removes, deployment for refused deployments.

Pure: no python-gitlab, no network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cicd_orchestrator.constants import Conclusion, FailureCategory
from cicd_orchestrator.models import Failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReasonVerdict:
    """What a failure reason says about a failed job."""

    reason: str
    category: FailureCategory | None
    description: str
    recipe: str | None = None
    needs_person: bool = False


_INFRA = FailureCategory.INFRASTRUCTURE
_CONFIG = FailureCategory.CONFIGURATION
_DEPLOY = FailureCategory.DEPLOYMENT

# reason -> (category or None: the log decides, what it means, repair recipe, needs a person)
_REASONS: dict[str, tuple[FailureCategory | None, str, str | None, bool]] = {
    "script_failure": (None, "the job's script exited with an error", None, False),
    "unknown_failure": (None, "GitLab does not know why the job failed", None, False),
    "runner_system_failure": (_INFRA, "the runner or its host failed", "rerun", False),
    "stuck_or_timeout_failure": (
        _INFRA,
        "the job was stuck (no runner picked it up) or timed out",
        "rerun",
        False,
    ),
    "job_execution_timeout": (_INFRA, "the job ran past its timeout", "rerun", False),
    "api_failure": (_INFRA, "the runner could not talk to GitLab's API", "rerun", False),
    "scheduler_failure": (_INFRA, "GitLab could not schedule the job", "rerun", False),
    "data_integrity_failure": (_INFRA, "GitLab lost the job's data", "rerun", False),
    "missing_dependency_failure": (
        _INFRA,
        "the artifacts of a job it depends on expired or were erased",
        "rerun",
        False,
    ),
    "stale_schedule": (_INFRA, "a delayed job could not run in time", "rerun", False),
    "job_router_failure": (_INFRA, "the job router failed", "rerun", False),
    "runner_unsupported": (_INFRA, "the runner is too old for the job", None, True),
    "no_matching_runner": (_INFRA, "no runner matches the job's tags", None, True),
    "ci_quota_exceeded": (_INFRA, "the namespace ran out of CI minutes", None, True),
    "trace_size_exceeded": (_CONFIG, "the job's log exceeded the size limit", None, True),
    "archived_failure": (_CONFIG, "the job is archived and cannot run", None, True),
    "unmet_prerequisites": (
        _CONFIG,
        "the job's prerequisites (an environment, a cluster) are not met",
        None,
        True,
    ),
    "builds_disabled": (_CONFIG, "CI/CD is disabled for the project", None, True),
    "user_blocked": (_CONFIG, "the user who triggered the job is blocked", None, True),
    "project_deleted": (_CONFIG, "the project was deleted", None, True),
    "secrets_provider_not_found": (_CONFIG, "the job's secrets provider is missing", None, True),
    "environment_creation_failure": (
        _CONFIG,
        "the job's environment could not be created",
        None,
        True,
    ),
    "protected_environment_failure": (
        _CONFIG,
        "the user may not deploy to the protected environment",
        None,
        True,
    ),
    "pipeline_loop_detected": (_CONFIG, "a pipeline loop was detected", None, True),
    "insufficient_bridge_permissions": (
        _CONFIG,
        "no permission to trigger the downstream pipeline",
        None,
        True,
    ),
    "downstream_bridge_project_not_found": (
        _CONFIG,
        "the downstream project is missing",
        None,
        True,
    ),
    "upstream_bridge_project_not_found": (_CONFIG, "the upstream project is missing", None, True),
    "invalid_bridge_trigger": (_CONFIG, "the trigger job is invalid", None, True),
    "bridge_pipeline_is_child_pipeline": (
        _CONFIG,
        "a child pipeline cannot trigger this pipeline",
        None,
        True,
    ),
    "downstream_pipeline_creation_failed": (
        _CONFIG,
        "the downstream pipeline could not be created",
        None,
        False,
    ),
    "ip_restriction_failure": (_CONFIG, "an IP restriction refused the job", None, True),
    "deployment_rejected": (_DEPLOY, "the deployment was rejected", None, True),
    "forward_deployment_failure": (
        _DEPLOY,
        "a newer deployment already ran (forward deployment)",
        None,
        False,
    ),
    "failed_outdated_deployment_job": (_DEPLOY, "the deployment job is outdated", None, False),
}

# reasons that mean the job ran out of time (a timed-out conclusion, as on GitHub)
TIMEOUT_REASONS = frozenset({"job_execution_timeout", "stuck_or_timeout_failure"})


def verdict(reason: str | None) -> ReasonVerdict | None:
    """What ``reason`` says, or None for no reason. An unknown reason (a newer GitLab) gives
    a verdict without a category: the log decides."""
    if not reason:
        return None
    category, description, recipe, person = _REASONS.get(
        reason, (None, "a failure reason this version does not know", None, False)
    )
    return ReasonVerdict(reason, category, description, recipe, person)


def category_of(reason: str | None) -> FailureCategory | None:
    """The category a failure reason decides, or None when the log decides."""
    found = verdict(reason)
    return found.category if found else None


def conclusion_of(reason: str | None) -> Conclusion:
    """The conclusion of a failed job with this reason (timed out or failure)."""
    return Conclusion.TIMED_OUT if reason in TIMEOUT_REASONS else Conclusion.FAILURE


def evidence_line(reason: str) -> str:
    """The note that goes into a failure's evidence (no log marker of any CI)."""
    found = verdict(reason)
    description = found.description if found else ""
    return f"GitLab failure_reason: {reason} ({description})"


def apply_failure_reason(failure: Failure, reason: str | None) -> Failure:
    """Put GitLab's ``failure_reason`` into a classified failure (in place; returned too).

    The reason always becomes evidence; a reason with a category decides the category (the
    CI system's own statement beats a guess from the log), with its repair recipe.
    """
    found = verdict(reason)
    if found is None:
        return failure
    line = evidence_line(found.reason)
    if line not in failure.evidence:
        failure.evidence.insert(0, line)
    if found.category is None or failure.category is found.category:
        return failure
    before = failure.category
    failure.category = found.category
    failure.recipe = found.recipe or "none"
    failure.confidence = max(failure.confidence, 0.9)
    failure.message = f"GitLab: {found.description}"
    failure.notes.append(
        f"category {found.category.value} from GitLab's failure_reason {found.reason} "
        f"(the log alone said {before.value})"
    )
    if found.needs_person:
        failure.notes.append("only a person can fix this (GitLab project or runner settings)")
    log.debug("failure_reason %s of %s: %s", found.reason, failure.job, found.category.value)
    return failure
