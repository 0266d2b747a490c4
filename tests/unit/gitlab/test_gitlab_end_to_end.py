"""A whole attempt through the GitLab provider and the GitLab-compatible server, with faults:
failure, analysis, repair, push, merge request, status, CI green; and a retry through the API."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gl_helpers import REPO, TOKEN, World, start_world

from cicd_orchestrator import pipeline, session
from cicd_orchestrator.ci.gitlab.provider import GitLabProvider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import RepairKind, Strategy
from cicd_orchestrator.models import Published
from cicd_orchestrator.serde import to_json_obj

NOW = "2026-01-01T00:00:00+00:00"


@pytest.fixture
def e2e(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    world, server = start_world(tmp_path)
    try:
        yield world
    finally:
        server.stop()


def wait_ci(gl: GitLabProvider, sha: str, published: Published) -> pipeline.CIState:
    deadline = time.monotonic() + 120
    while True:
        ci = pipeline.ci_state(gl, REPO, sha, published)
        if ci.done:
            return ci
        assert time.monotonic() < deadline, ci.detail
        time.sleep(0.3)


def test_a_whole_attempt_through_gitlab_with_faults(
    e2e: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world, server = e2e, e2e.server
    gl = world.provider()
    config = load_config({"local_ci_root": str(world.tmp / "ci")})
    # faults all along the session: each is met once and backed off
    faults = [
        server.inject("error", path=r"/pipelines/\d+$", status=502),
        server.inject("ratelimit", path=r"/pipelines/\d+/jobs", retry_after=1),
        server.inject("truncate", path=r"/jobs/\d+/trace$"),
        server.inject("timeout", path=r"/protected_branches", delay=1.5),
        server.inject("error", path=r"/merge_requests$", method="POST", status=503),
        server.inject("truncate", path=r"/notes$", method="POST"),
        server.inject("ratelimit", path=r"/statuses/", method="POST", retry_after=1),
        server.inject("error", path=r"\.git/git-receive-pack$", status=500),
    ]

    # the sweep finds the failure
    failed = gl.list_failed_runs(REPO, "main")
    assert [r.id for r in failed] == [world.made.head_run.id]
    state = session.new_session("gitlab", gl.get_run(REPO, failed[0].id), config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)

    # discovery and classification (from the GitLab trace, sections and ANSI included)
    state.failures = pipeline.detect_failures(gl, state, {})
    assert [f.job for f in state.failures] == ["lint"]
    assert state.failures[0].category.value == "quality"
    assert state.failures[0].recipe == "ruff-fix"
    state.context = pipeline.analyse_context(gl, config, state)
    assert state.context.culprit_sha == world.made.head_sha
    state.failures = pipeline.classify_failures(gl, state, {})
    run = pipeline.failed_run(gl, state)
    state.dependency_map = pipeline.map_dependencies(run, state.failures)

    # fixing and validation
    from cicd_orchestrator.repair.registry import fixers_for_group

    results = pipeline.run_fixers(fixers_for_group("quality"), gl, config, state)
    repairs, conflicts = pipeline.merge_repairs(gl, config, state, results)
    assert [r.fixer for r in repairs] == ["ruff-fix"] and not conflicts
    record = state.attempt_record(1)
    assert record is not None
    record.repairs = repairs
    record.validation = pipeline.validate_fixes(gl, config, state, repairs)
    assert record.validation.reproduced and record.validation.passed
    assert pipeline.regression_run(gl, config, state, repairs).regression_passed
    record.validation.regression_passed = True

    # publishing, twice (a retried task): one branch, one merge request, one note, and the
    # second "pending" status that GitLab refuses (same state) is no error
    first = pipeline.publish_attempt(gl, config, state, 1)
    again = pipeline.publish_attempt(gl, config, state, 1)
    assert first.kind is RepairKind.CHANGE and first.sha == again.sha
    assert first.pull_request and again.pull_request
    assert first.pull_request.number == again.pull_request.number
    assert first.pull_request.url.startswith(f"{server.url}/{REPO}/-/merge_requests/")
    assert len(world.local.list_pull_requests(REPO)) == 1
    assert len(world.local.list_comments(REPO, first.pull_request.number)) == 1
    assert world.local.branch_sha(REPO, "main") == world.made.head_sha
    assert world.local.branch_sha(REPO, first.branch or "") == first.sha
    statuses = world.local.commit_statuses(REPO, first.sha or "")
    assert [(s.context, s.state.value) for s in statuses] == [("cicd-orchestrator", "pending")]

    # the push started CI on the fix; the monitor sees it go green (our pending status
    # does not hold it)
    ci = wait_ci(gl, state.head_sha, first)
    assert ci.green, ci.detail

    # a retry of the failed job through the API (it fails again: the head is still broken)
    rerun = pipeline.publish_rerun(gl, state)
    assert rerun.rerun_attempt == 2
    rerun_ci = wait_ci(gl, state.head_sha, rerun)
    assert not rerun_ci.green and rerun_ci.signatures == ["lint"]
    retried = gl.get_run(REPO, state.pipeline_id)
    assert retried.run_attempt == 2
    assert gl.get_run(REPO, state.pipeline_id, attempt=1).jobs[0].id != retried.jobs[0].id

    assert [f.fired for f in faults] == [1] * len(faults)
    assert TOKEN not in caplog.text
    assert TOKEN not in json.dumps(to_json_obj(state))
    assert TOKEN not in world.local.get_pull_request(REPO, first.pull_request.number).body
    assert all(TOKEN not in r.path for r in server.requests)
