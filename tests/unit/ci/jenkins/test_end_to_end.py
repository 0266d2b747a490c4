"""A whole attempt through the Jenkins provider and the Jenkins-compatible server, with the
local provider as the git hosting: failure, analysis, repair, pull request through the
hosting, the push built on Jenkins, CI green on the fix; and a rebuild of the failed build."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from cicd_devkit.attempts import check_lint_fix_published, wait_ci, whole_attempt
from cicd_devkit.worlds import JENKINS_TOKEN as TOKEN
from cicd_devkit.worlds import MARKER_KEY, REPO, JenkinsWorld, World

from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.publish.rerun import publish_rerun
from cicd_orchestrator.serde import to_json_obj

#: whole attempts, real tool installs: the slow tier (`make test-slow`)
pytestmark = pytest.mark.slow

NOW = "2026-01-01T00:00:00+00:00"


def test_a_whole_attempt_through_jenkins(
    fresh_world: Callable[[str], World], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world = fresh_world("jenkins")
    assert isinstance(world, JenkinsWorld)
    server = world.jenkins
    jk = world.provider()
    config = load_config({"local_ci_root": str(world.tmp / "ci"), "marker_key": MARKER_KEY})
    assert world.made.head_run is not None
    head_build = server.build_of(REPO, world.made.head_run.id)
    assert head_build is not None and head_build.number == 2

    # the sweep finds the failed build; its run id is the build's queue id
    failed = jk.list_failed_runs(REPO, "main")
    assert [r.id for r in failed] == [head_build.queue_id]
    assert jk.list_failed_runs(REPO, "main", since_run_id=head_build.queue_id) == []
    run = jk.get_run(REPO, failed[0].id)
    assert run.head_sha == world.made.head_sha and run.run_number == 2
    state = session.new_session("jenkins", run, config, NOW)
    session.start_attempt(state, 1, Strategy.STANDARD_PARALLEL_FIXING, NOW)

    attempt = Attempt(state, 1, config, jk, cache_dir=world.tmp / "cache")
    done = whole_attempt(attempt)

    check_lint_fix_published(state, done, world.local, REPO, world.made.head_sha)
    first = done.first
    statuses = world.local.commit_statuses(REPO, first.sha or "")
    assert [s.context for s in statuses] == ["cicd-orchestrator"]

    # the push is built on Jenkins (the fix branch's job); the monitor sees it go green
    ci = wait_ci(attempt, first)
    assert ci.green, ci.detail
    fix_runs = jk.list_runs(REPO, branch=first.branch)
    assert len(fix_runs) == 1 and fix_runs[0].head_sha == first.sha
    assert "/job/cicd-fix%252F" in fix_runs[0].html_url

    # a rebuild of the failed build: attempt 2 of the run (it fails again: the head is broken)
    rerun = publish_rerun(jk, state)
    assert rerun.rerun_run_id == head_build.queue_id and rerun.rerun_attempt == 2
    rerun_ci = wait_ci(attempt, rerun)
    assert not rerun_ci.green and rerun_ci.signatures == ["lint"]
    rebuilt = jk.get_run(REPO, head_build.queue_id)
    assert rebuilt.run_attempt == 2 and rebuilt.run_number == 2
    assert rebuilt.html_url.endswith("/job/main/3/")  # the branch job's next build
    rebuild = server.build_of(REPO, world.made.head_run.id, attempt=2)
    assert rebuild is not None and rebuild.cause["shortDescription"] == "Replayed #2"
    assert jk.get_run(REPO, head_build.queue_id, attempt=1).html_url.endswith("/job/main/2/")

    # the credentials never left the Authorization header
    assert TOKEN not in caplog.text
    assert TOKEN not in json.dumps(to_json_obj(state))
    assert TOKEN not in world.local.get_pull_request(REPO, first.pull_request.number).body
    assert all(TOKEN not in r.path + r.query for r in server.requests)
    assert all(TOKEN not in json.dumps(r.headers) for r in server.requests)
