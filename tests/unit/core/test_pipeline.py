"""The stages of an attempt run on the local provider without Airflow."""

from __future__ import annotations

import pytest

from cicd_orchestrator import pipeline, session
from cicd_orchestrator.ci.github.archive import ArchiveError
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import CombinedState, RepairKind, Strategy
from cicd_orchestrator.exceptions import ConfError, SafetyError, UnknownRepositoryError
from cicd_orchestrator.scenarios import materialize
from cicd_orchestrator.tools.airflow_stack import PROJECT_ROOT

NOW = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def lint_session(tmp_path, monkeypatch):
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    provider = LocalProvider(tmp_path / "ci")
    made = materialize(PROJECT_ROOT / "examples" / "lint-failure", provider, "acme/shipping")
    config = load_config({"local_ci_root": str(tmp_path / "ci")})
    state = session.new_session("local", made.head_run, config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)
    return provider, config, state, made


def test_parse_request_validates_the_conf():
    req = pipeline.parse_request({"repository": "acme/shop", "run_id": "12"})
    assert (req.repository, req.run_id, req.provider) == ("acme/shop", 12, "local")
    for bad in (
        [],
        {"repository": "acme"},
        {"repository": "a/b", "run_id": 0},
        {"repository": "a/b", "run_id": True},
        {"repository": "a/b", "run_id": 1, "config": []},
    ):
        with pytest.raises(ConfError):
            pipeline.parse_request(bad)


def test_a_whole_attempt_publishes_a_validated_fix_once(lint_session):
    provider, config, state, made = lint_session
    state.failures = pipeline.detect_failures(provider, state, {})
    assert [f.job for f in state.failures] == ["lint"]
    assert state.failures[0].category.value == "quality"
    state.context = pipeline.analyse_context(provider, config, state)
    assert state.context.culprit_sha == made.head_sha
    state.failures = pipeline.classify_failures(provider, state, {})
    run = pipeline.failed_run(provider, state)
    state.dependency_map = pipeline.map_dependencies(run, state.failures)
    from cicd_orchestrator.repair.registry import fixers_for_group

    results = pipeline.run_fixers(fixers_for_group("quality"), provider, config, state)
    repairs, conflicts = pipeline.merge_repairs(provider, config, state, results)
    assert [r.fixer for r in repairs] == ["ruff-fix"] and not conflicts
    record = state.attempt_record(1)
    record.repairs = repairs
    record.validation = pipeline.validate_fixes(provider, config, state, repairs)
    assert record.validation.reproduced and record.validation.passed
    regression = pipeline.regression_run(provider, config, state, repairs)
    assert regression.regression_passed
    record.validation.regression_passed = True
    first = pipeline.publish_attempt(provider, config, state, 1)
    again = pipeline.publish_attempt(provider, config, state, 1)  # a retried task
    assert first.kind is RepairKind.CHANGE and first.sha == again.sha
    assert first.pull_request.number == again.pull_request.number
    assert len(provider.list_pull_requests(state.repository)) == 1
    assert len(provider.list_comments(state.repository, first.pull_request.number)) == 1
    assert provider.branch_sha(state.repository, "main") == made.head_sha
    status = provider.wait_for_ref(state.repository, first.sha, timeout=120)
    assert status.state is CombinedState.SUCCESS
    ci = pipeline.ci_state(provider, state.repository, state.head_sha, first)
    assert ci.done and ci.green


def test_publishing_refuses_protected_branches(lint_session):
    provider, config, state, _ = lint_session
    for branch in ("main", "release/1.0", "production"):
        with pytest.raises(SafetyError):
            pipeline.check_branch_safe(provider, config, state.repository, branch, "feature")
    with pytest.raises(SafetyError):
        pipeline.check_branch_safe(provider, config, state.repository, "feature", "feature")
    pipeline.check_branch_safe(provider, config, state.repository, "cicd-fix/x", "main")


def test_nothing_to_publish_is_said_plainly(lint_session):
    provider, config, state, _ = lint_session
    published = pipeline.publish_attempt(provider, config, state, 1)
    assert published.kind is RepairKind.NONE and "no repair applies" in published.notes[0]
    ci = pipeline.ci_state(provider, state.repository, state.head_sha, published)
    assert ci.done and not ci.green


class _BrokenLogs(LocalProvider):
    """A provider whose job logs cannot be opened, with a reason."""

    def open_job_log(self, repo, job_id):
        raise ArchiveError(f"log archive of job {job_id}: refusing a zip bomb")


def test_an_unreadable_log_says_why(lint_session, tmp_path):
    provider, _, state, _ = lint_session
    broken = _BrokenLogs(provider.root)
    (failure,) = pipeline.detect_failures(broken, state, {})
    assert failure.job == "lint" and failure.category.value == "unknown"
    assert failure.message == (
        f"the job's log could not be read: log archive of job {failure.job_id}: refusing a zip bomb"
    )


def test_a_huge_log_is_said_so_first(lint_session, monkeypatch):
    provider, _, state, _ = lint_session
    monkeypatch.setattr(pipeline, "HUGE_LOG_BYTES", 1000)
    (failure,) = pipeline.detect_failures(provider, state, {})
    assert failure.pattern == "ruff-check"
    assert failure.notes[0].startswith("the job's log is huge (")
    assert "lines): read once, streaming, in bounded memory" in failure.notes[0]


def test_an_error_while_reading_a_log_is_not_taken_for_an_unreadable_log(lint_session):
    provider, _, state, _ = lint_session
    job = pipeline.failed_run(provider, state).failed_jobs[0]
    problems: list[str] = []
    with (
        pytest.raises(KeyError, match="raised by the reader"),
        pipeline._job_log(provider, state.repository, job, problems) as stream,
    ):
        assert stream is not None
        raise KeyError("raised by the reader")
    assert problems == []


def test_log_notes_name_the_size_and_what_was_cut():
    from cicd_orchestrator.logs.analyze import LogAnalysis

    small = LogAnalysis(format="github", lines=10, bytes=2000, warnings=["1 binary line(s)"])
    assert pipeline.log_notes(small) == ["log: 1 binary line(s)"]
    huge = LogAnalysis(format="github", lines=12, bytes=3 << 30)
    assert pipeline.log_notes(huge) == [
        "the job's log is huge (3.0 GiB, 12 lines): read once, streaming, in bounded memory"
    ]
    assert pipeline._size(300 << 20) == "300.0 MiB" and pipeline._size(12) == "12 bytes"


class _GoneWhileReading(LocalProvider):
    """A provider whose repository vanishes between reading the run and its logs."""

    def open_job_log(self, repo, job_id):
        raise UnknownRepositoryError(f"unknown repository {repo!r}")


def test_a_repository_gone_while_reading_its_logs_stops_the_stage(lint_session):
    provider, _, state, _ = lint_session
    with pytest.raises(UnknownRepositoryError):
        pipeline.detect_failures(_GoneWhileReading(provider.root), state, {})
