"""The stages of an attempt run on the local provider without Airflow."""

from __future__ import annotations

import pytest

from cicd_orchestrator import pipeline, session
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import CombinedState, RepairKind, Strategy
from cicd_orchestrator.exceptions import ConfError, SafetyError
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
