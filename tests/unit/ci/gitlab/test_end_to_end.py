"""A whole attempt through the GitLab provider and the GitLab-compatible server, with faults:
failure, analysis, repair, push, merge request, status, CI green; and a retry through the API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from cicd_devkit.attempts import check_lint_fix_published, wait_ci, whole_attempt
from cicd_devkit.worlds import GITLAB_TOKEN as TOKEN
from cicd_devkit.worlds import MARKER_KEY, REPO, GitLabWorld, World

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.publish.rerun import publish_rerun
from cicd_orchestrator.serde import to_json_obj

#: whole attempts, real tool installs: the slow tier (`make test-slow`)
pytestmark = pytest.mark.slow

NOW = "2026-01-01T00:00:00+00:00"


def test_a_whole_attempt_through_gitlab_with_faults(
    fresh_world: Callable[[str], World], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world = fresh_world("gitlab")
    assert isinstance(world, GitLabWorld)
    server = world.gitlab
    gl = world.provider()
    config = load_config({"local_ci_root": str(world.tmp / "ci"), "marker_key": MARKER_KEY})
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
    assert [r.id for r in failed] == [world.head_run_id]
    state = session.new_session("gitlab", gl.get_run(REPO, failed[0].id), config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)

    attempt = Attempt(state, 1, config, gl, cache_dir=world.tmp / "cache")
    done = whole_attempt(attempt)

    check_lint_fix_published(state, done, world.local, REPO, world.head_sha)
    first = done.first
    assert first.pull_request is not None
    assert first.pull_request.url.startswith(f"{server.url}/{REPO}/-/merge_requests/")
    statuses = world.local.commit_statuses(REPO, first.sha or "")
    assert [(s.context, s.state.value) for s in statuses] == [("cicd-orchestrator", "pending")]

    # the push started CI on the fix; the monitor sees it go green (our pending status
    # does not hold it)
    ci = wait_ci(attempt, first)
    assert ci.green, ci.detail

    # a retry of the failed job through the API (it fails again: the head is still broken)
    rerun = publish_rerun(gl, state)
    assert rerun.rerun_attempt == 2
    rerun_ci = wait_ci(attempt, rerun)
    assert not rerun_ci.green and rerun_ci.signatures == ["lint"]
    retried = gl.get_run(REPO, state.pipeline_id)
    assert retried.run_attempt == 2
    assert gl.get_run(REPO, state.pipeline_id, attempt=1).jobs[0].id != retried.jobs[0].id

    assert [f.fired for f in faults] == [1] * len(faults)
    assert TOKEN not in caplog.text
    assert TOKEN not in json.dumps(to_json_obj(state))
    assert TOKEN not in world.local.get_pull_request(REPO, first.pull_request.number).body
    assert all(TOKEN not in r.path + r.query for r in server.requests)
