"""GitLab's failure_reason: the mapping into the classification, and a runner failure reported
by the server seen through the provider, the trace and the detect step's analysis."""

from __future__ import annotations

import pytest
from cicd_devkit.worlds import REPO, GitLabWorld

from cicd_orchestrator.analysis.classify import classify
from cicd_orchestrator.ci.gitlab.mapping import GitLabJob, job_state
from cicd_orchestrator.ci.gitlab.reasons import (
    apply_failure_reason,
    category_of,
    conclusion_of,
    evidence_line,
    verdict,
)
from cicd_orchestrator.constants import Conclusion, FailureCategory, RunStatus
from cicd_orchestrator.logs.analyze import analyze_log, analyze_text
from cicd_orchestrator.models import Failure

INFRA = FailureCategory.INFRASTRUCTURE


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("script_failure", None),
        ("unknown_failure", None),
        ("a_reason_from_a_newer_gitlab", None),
        ("runner_system_failure", INFRA),
        ("stuck_or_timeout_failure", INFRA),
        ("api_failure", INFRA),
        ("job_execution_timeout", INFRA),
        ("scheduler_failure", INFRA),
        ("missing_dependency_failure", INFRA),
        ("unmet_prerequisites", FailureCategory.CONFIGURATION),
        ("deployment_rejected", FailureCategory.DEPLOYMENT),
    ],
)
def test_failure_reasons_map_to_categories(reason: str, category: FailureCategory | None) -> None:
    assert category_of(reason) is category
    assert verdict(reason) is not None and category_of(None) is None


def test_timeouts_are_timed_out_and_allowed_failures_neutral() -> None:
    assert conclusion_of("job_execution_timeout") is Conclusion.TIMED_OUT
    assert conclusion_of("stuck_or_timeout_failure") is Conclusion.TIMED_OUT
    assert conclusion_of("script_failure") is Conclusion.FAILURE
    assert job_state("failed", "runner_system_failure") == (
        RunStatus.COMPLETED,
        Conclusion.FAILURE,
    )
    assert job_state("failed", "script_failure", allow_failure=True)[1] is Conclusion.NEUTRAL
    assert job_state("manual") == (RunStatus.COMPLETED, Conclusion.SKIPPED)
    assert job_state("waiting_for_resource") == (RunStatus.QUEUED, None)
    assert job_state("canceling") == (RunStatus.IN_PROGRESS, None)


def _failure(category: FailureCategory) -> Failure:
    return Failure("lint", 1, 1, "stage-1", category, 0.8, "sig", recipe="ruff-fix")


def test_apply_failure_reason() -> None:
    script = apply_failure_reason(_failure(FailureCategory.QUALITY), "script_failure")
    assert script.category is FailureCategory.QUALITY and script.recipe == "ruff-fix"
    assert script.evidence == [evidence_line("script_failure")]
    runner = apply_failure_reason(_failure(FailureCategory.QUALITY), "runner_system_failure")
    assert runner.category is INFRA and runner.recipe == "rerun" and runner.confidence >= 0.9
    assert runner.evidence[0].startswith("GitLab failure_reason: runner_system_failure")
    assert not any("##[" in line for line in runner.evidence)
    again = apply_failure_reason(runner, "runner_system_failure")
    assert again.evidence.count(runner.evidence[0]) == 1
    quota = apply_failure_reason(_failure(FailureCategory.UNKNOWN), "ci_quota_exceeded")
    assert quota.category is INFRA and quota.recipe == "none"
    assert any("only a person" in n for n in quota.notes)
    unchanged = apply_failure_reason(_failure(FailureCategory.TEST), None)
    assert unchanged.category is FailureCategory.TEST and unchanged.evidence == []


def test_a_runner_failure_through_the_server_is_infrastructure(gitlab_world: GitLabWorld) -> None:
    gl = gitlab_world.provider()
    run = gl.get_run(REPO, gitlab_world.head_run_id)
    lint = run.failed_jobs[0]
    gitlab_world.gitlab.set_failure_reason(REPO, lint.id, "runner_system_failure")
    job = next(j for j in gl.get_run(REPO, run.id).jobs if j.id == lint.id)
    assert isinstance(job, GitLabJob) and job.failure_reason == "runner_system_failure"
    with gl.open_job_log(REPO, job.id) as fh:
        analysis = analyze_log(fh)
        fh.seek(0)
        text = fh.read().decode()
    assert "ERROR: Job failed (system failure)" in text and "F401" not in text
    assert analysis.format == "gitlab"
    # the detect step: classify the trace, then the job's failure_reason (see the report)
    failure = classify(job.name, None, analysis)
    assert failure.category is not INFRA
    apply_failure_reason(failure, job.failure_reason)
    assert failure.category is INFRA and failure.recipe == "rerun"
    # a timeout reported by GitLab is a timed-out job
    gitlab_world.gitlab.set_failure_reason(REPO, lint.id, "job_execution_timeout")
    job = next(j for j in gl.get_run(REPO, run.id).jobs if j.id == lint.id)
    assert job.conclusion is Conclusion.TIMED_OUT


def test_the_log_engine_reads_the_server_traces() -> None:
    from cicd_devkit.servers.gitlab.trace import render_trace

    log = "\n".join(
        [
            "2026-01-01T00:00:00.0000000Z ##[group]Set up job",
            "2026-01-01T00:00:00.0000000Z Runner name: 'x'",
            "2026-01-01T00:00:00.0000000Z ##[endgroup]",
            "2026-01-01T00:00:01.0000000Z ##[group]Run python -m pytest -q",
            "2026-01-01T00:00:01.0000000Z python -m pytest -q",
            "2026-01-01T00:00:01.0000000Z ##[endgroup]",
            "2026-01-01T00:00:02.0000000Z FAILED tests/test_a.py::test_one - assert 1 == 2",
            "2026-01-01T00:00:02.0000000Z 1 failed in 0.01s",
            "2026-01-01T00:00:03.0000000Z ##[error]Process completed with exit code 1.",
        ]
    )
    trace = render_trace(log, ["Set up job", "Unit tests"], Conclusion.FAILURE)
    assert "section_start:1767225601:unit_tests[collapsed=true]\r\x1b[0K" in trace
    assert "ERROR: Job failed: exit code 1" in trace and "##[" not in trace
    analysis = analyze_text(trace)
    assert analysis.format == "gitlab"
    assert analysis.failed_step is not None and analysis.failed_step.name == "unit_tests"
    assert analysis.category is FailureCategory.TEST
