"""Discovery on the local provider: failures from the logs, the context, unreadable and huge
logs said plainly."""

from __future__ import annotations

import pytest

from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.github.archive import ArchiveError
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.exceptions import UnknownRepositoryError
from cicd_orchestrator.logs.analyze import LogAnalysis
from cicd_orchestrator.models import Culprit
from cicd_orchestrator.stages import discovery


def test_failures_and_context_of_a_lint_failure(lint_attempt):
    attempt, made = lint_attempt.attempt, lint_attempt.made
    failures = discovery.detect_failures(attempt, {})
    assert [f.job for f in failures] == ["lint"]
    assert failures[0].category.value == "quality"
    context = discovery.analyse_context(attempt)
    assert context.culprit_sha == made.head_sha


def test_the_culprit_is_the_only_commit_since_the_last_green_run(lint_attempt):
    attempt, made = lint_attempt.attempt, lint_attempt.made
    culprit = discovery.bisect_culprit(attempt)
    assert isinstance(culprit, Culprit)
    assert culprit.sha == made.head_sha
    assert culprit.reason == "the only commit since the last green run"


def test_the_runs_are_fetched_once_per_attempt(lint_attempt, monkeypatch):
    attempt, provider = lint_attempt.attempt, lint_attempt.provider
    asked: list[str] = []
    for name in ("get_run", "list_runs"):
        real = getattr(provider, name)
        monkeypatch.setattr(
            provider,
            name,
            lambda *a, _real=real, _name=name, **k: asked.append(_name) or _real(*a, **k),
        )
    discovery.detect_failures(attempt, {})
    discovery.analyse_context(attempt)
    discovery.compare_environment(attempt)
    discovery.bisect_culprit(attempt)
    # the failed run, the runs of the branch, the last green run: once each
    assert sorted(asked) == ["get_run", "get_run", "list_runs"]


class _BrokenLogs(LocalProvider):
    """A provider whose job logs cannot be opened, with a reason."""

    def open_job_log(self, repo, job_id):
        raise ArchiveError(f"log archive of job {job_id}: refusing a zip bomb")


def test_an_unreadable_log_says_why(lint_attempt):
    broken = lint_attempt.on(_BrokenLogs(lint_attempt.provider.root))
    (failure,) = discovery.detect_failures(broken, {})
    assert failure.job == "lint" and failure.category.value == "unknown"
    assert failure.message == (
        f"the job's log could not be read: log archive of job {failure.job_id}: refusing a zip bomb"
    )


def test_a_huge_log_is_said_so_first(lint_attempt, monkeypatch):
    monkeypatch.setattr(discovery, "HUGE_LOG_BYTES", 1000)
    (failure,) = discovery.detect_failures(lint_attempt.attempt, {})
    assert failure.pattern == "ruff-check"
    assert failure.notes[0].startswith("the job's log is huge (")
    assert "lines): read once, streaming, in bounded memory" in failure.notes[0]


def test_an_error_while_reading_a_log_is_not_taken_for_an_unreadable_log(lint_attempt):
    attempt = lint_attempt.attempt
    job = attempt.failed_run.failed_jobs[0]
    problems: list[str] = []
    with (
        pytest.raises(KeyError, match="raised by the reader"),
        discovery.job_log(attempt.provider, attempt.repository, job, problems) as stream,
    ):
        assert stream is not None
        raise KeyError("raised by the reader")
    assert problems == []


def test_log_notes_name_the_size_and_what_was_cut():
    small = LogAnalysis(format="github", lines=10, bytes=2000, warnings=["1 binary line(s)"])
    assert discovery.log_notes(small) == ["log: 1 binary line(s)"]
    huge = LogAnalysis(format="github", lines=12, bytes=3 << 30)
    assert discovery.log_notes(huge) == [
        "the job's log is huge (3.0 GiB, 12 lines): read once, streaming, in bounded memory"
    ]
    assert discovery._size(300 << 20) == "300.0 MiB" and discovery._size(12) == "12 bytes"


class _GoneWhileReading(LocalProvider):
    """A provider whose repository vanishes between reading the run and its logs."""

    def open_job_log(self, repo, job_id):
        raise UnknownRepositoryError(f"unknown repository {repo!r}")


def test_a_repository_gone_while_reading_its_logs_stops_the_stage(lint_attempt):
    gone = lint_attempt.on(_GoneWhileReading(lint_attempt.provider.root))
    with pytest.raises(UnknownRepositoryError):
        discovery.detect_failures(gone, {})


def test_an_unsure_category_is_read_again_by_the_model_when_the_deployment_asks(lint_attempt):
    """``llm_classify_below`` above the rules' confidence: the model of ``llm_conn_id`` is
    asked and its verdict taken; below it, or without a connection, the model is never asked."""
    pydantic_ai = pytest.importorskip("pydantic_ai")
    from pydantic_ai.models.test import TestModel

    asked: list[str] = []

    def factory(conn_id, instructions):
        asked.append(conn_id)
        answer = '{"category": "configuration", "excerpt": 1, "reason": "set-up"}'
        return pydantic_ai.Agent(TestModel(custom_output_text=answer), instructions=instructions)

    base = lint_attempt.attempt
    (plain,) = discovery.detect_failures(base, {})

    def attempt_with(**config):
        made = Attempt(base.state, 1, base.config.with_overrides(config), base.provider)
        made.agent_factory = factory
        return made

    (untouched,) = discovery.detect_failures(attempt_with(llm_classify_below=0.5), {})
    assert asked == [] and untouched.category.value == "quality"  # no connection
    unsure_of_all = attempt_with(llm_conn_id="llm_test", llm_classify_below=1.0)
    (failure,) = discovery.detect_failures(unsure_of_all, {})
    assert asked == ["llm_test"] and plain.confidence < 1.0
    assert failure.category.value == "configuration"
    assert any(n.startswith("LLM category: configuration") for n in failure.notes)
    sure = attempt_with(llm_conn_id="llm_test", llm_classify_below=plain.confidence)
    discovery.detect_failures(sure, {})
    assert asked == ["llm_test"]
