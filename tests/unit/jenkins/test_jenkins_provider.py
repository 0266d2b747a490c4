"""The Jenkins provider against the Jenkins-compatible server (python-jenkins on loopback):
each method, the stage mapping, rebuilds as attempts, delegation to the git hosting,
credentials."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jk_helpers import REPO, STANDALONE, TOKEN, USER, World

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.jenkins.client import build_client, client_from_connection
from cicd_orchestrator.ci.jenkins.mapping import JOB_ID_FACTOR, split_job_id
from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider
from cicd_orchestrator.constants import CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import (
    ConfigError,
    ProviderError,
    UnknownRepositoryError,
    UnknownRunError,
)


def head_queue_id(world: World) -> int:
    assert world.made.head_run is not None
    build = world.server.build_of(REPO, world.made.head_run.id)
    assert build is not None
    return build.queue_id


def green_queue_id(world: World) -> int:
    first = world.made.runs[world.made.commits[0][0]][0]
    build = world.server.build_of(REPO, first)
    assert build is not None
    return build.queue_id


def test_runs_are_chains_of_builds_keyed_by_queue_id(world: World) -> None:
    jk = world.provider()
    runs = jk.list_runs(REPO)
    assert [r.id for r in runs] == [head_queue_id(world), green_queue_id(world)]
    assert [r.run_number for r in runs] == [2, 1]
    assert [r.conclusion for r in runs] == [Conclusion.FAILURE, Conclusion.SUCCESS]
    assert {r.workflow_path for r in runs} == {".github/workflows/ci.yml"}  # from config.xml
    assert all(r.head_branch == "main" and r.event == "push" and not r.jobs for r in runs)
    assert jk.list_runs(REPO, head_sha=world.made.head_sha)[0].id == head_queue_id(world)
    assert jk.list_runs(REPO, branch="nope") == []
    failed = jk.list_failed_runs(REPO, "main")
    assert [r.id for r in failed] == [head_queue_id(world)]
    assert jk.list_failed_runs(REPO, "main", since_run_id=head_queue_id(world)) == []


def test_stages_are_jobs_and_flow_nodes_are_steps(world: World) -> None:
    jk = world.provider()
    run = jk.get_run(REPO, head_queue_id(world))
    assert run.status is RunStatus.COMPLETED and run.conclusion is Conclusion.FAILURE
    assert [(j.name, j.conclusion) for j in run.jobs] == [
        ("lint", Conclusion.FAILURE),
        ("test", Conclusion.SUCCESS),
    ]  # the successful "Declarative: Checkout SCM" stage is left out
    lint = run.jobs[0]
    queue_id, node = split_job_id(lint.id)
    assert queue_id == run.id and node > 0 and lint.id == run.id * JOB_ID_FACTOR + node
    assert [(s.name, s.conclusion) for s in lint.steps] == [
        ("Run actions/checkout@v4", Conclusion.SUCCESS),
        ("Run actions/setup-python@v5", Conclusion.SUCCESS),
        ("Lint", Conclusion.FAILURE),
    ]
    assert lint.started_at and lint.completed_at and lint.run_attempt == 1
    assert [j.name for j in run.failed_jobs] == ["lint"]


def test_a_stage_log_is_the_stage_of_the_console(world: World) -> None:
    jk = world.provider()
    run = jk.get_run(REPO, head_queue_id(world))
    with jk.open_job_log(REPO, run.jobs[0].id) as fh:
        text = fh.read().decode()
    assert text.startswith("[Pipeline] stage\n[Pipeline] { (lint)\n")
    assert "F401" in text and "ERROR: script returned exit code 1" in text
    assert "{ (test)" not in text and "pytest" not in text
    assert text.rstrip().endswith("Finished: FAILURE")
    with jk.open_job_log(REPO, run.jobs[1].id) as fh:
        assert "2 passed" in fh.read().decode()
    with jk.open_job_log(REPO, run.id * JOB_ID_FACTOR) as fh:  # node 0: the whole build
        whole = fh.read().decode()
    assert whole.startswith("Push event to branch main") and "{ (test)" in whole
    with pytest.raises(UnknownRunError), jk.open_job_log(REPO, run.id * JOB_ID_FACTOR + 7):
        pass
    with pytest.raises(UnknownRunError), jk.open_job_log(REPO, 99 * JOB_ID_FACTOR + 100):
        pass


def test_the_log_engine_reads_the_stage_log(world: World) -> None:
    from cicd_orchestrator.logs.analyze import analyze_log

    jk = world.provider()
    run = jk.get_run(REPO, head_queue_id(world))
    with jk.open_job_log(REPO, run.jobs[0].id) as fh:
        analysis = analyze_log(fh)
    assert analysis.format == "jenkins"
    assert any("F401" in e.text for e in analysis.excerpts)


def test_unknown_repository_and_run(world: World) -> None:
    jk = world.provider()
    with pytest.raises(UnknownRepositoryError):
        jk.list_runs("acme/nope")
    with pytest.raises(UnknownRunError):
        jk.get_run(REPO, 424242)
    with pytest.raises(UnknownRunError):
        jk.get_run(REPO, head_queue_id(world), attempt=9)


def test_rebuilds_are_new_attempts_of_the_run(world: World) -> None:
    jk = world.provider()
    green = green_queue_id(world)
    assert jk.rerun_failed_jobs(REPO, green) == 2
    with pytest.raises(ProviderError, match="still running"):
        jk.rerun_failed_jobs(REPO, green)  # a rebuild of a running build is refused
    world.local.wait_for_run(REPO, world.made.runs[world.made.commits[0][0]][0], timeout=60)
    # without Replay (404), the Rebuilder plugin's endpoint
    world.server.inject(r"/replay/rebuild$", status=404, method="POST")
    assert jk.rerun_failed_jobs(REPO, green) == 3
    world.local.wait_for_run(REPO, world.made.runs[world.made.commits[0][0]][0], timeout=60)
    run = jk.get_run(REPO, green)
    assert run.id == green and run.run_attempt == 3 and run.run_number == 1
    attempts = [jk.get_run(REPO, green, attempt=n) for n in (1, 2, 3)]
    numbers = [int(a.html_url.rstrip("/").rsplit("/", 1)[1]) for a in attempts]
    assert numbers[0] == 1 and numbers[1] < numbers[2]
    assert all(a.conclusion is Conclusion.SUCCESS for a in attempts)
    assert {j.run_attempt for j in attempts[2].jobs} == {3}
    assert len({j.id for a in attempts for j in a.jobs}) == 6  # each build has its own jobs
    build2 = world.server.index.build(REPO, "main", numbers[1])
    build3 = world.server.index.build(REPO, "main", numbers[2])
    assert build2 is not None and build2.cause["shortDescription"] == f"Replayed #{numbers[0]}"
    assert build3 is not None and build3.cause["upstreamBuild"] == numbers[1]
    # the run keeps its id and place: the cursor does not see it again
    assert [r.id for r in jk.list_runs(REPO)][-1] == green


def test_ref_status_combines_the_builds_of_a_commit(world: World) -> None:
    jk = world.provider()
    failing = jk.ref_status(REPO, world.made.head_sha)
    assert failing.state is CombinedState.FAILURE
    assert [j.name for r in failing.runs for j in r.failed_jobs] == ["lint"]
    green_sha = world.made.commits[0][1]
    assert jk.ref_status(REPO, green_sha).state is CombinedState.SUCCESS
    assert jk.ref_status(REPO, "0" * 40).state is CombinedState.NONE


def test_a_triggered_build_is_pending_then_done(world: World) -> None:
    jk = world.provider()
    queue_id = jk.trigger_build(REPO, "main")
    status = jk.ref_status(REPO, world.made.head_sha)
    run = jk.get_run(REPO, queue_id)
    assert run.event == "workflow_dispatch" and run.head_sha == world.made.head_sha
    local_run = world.server.index.by_queue_id(queue_id)
    assert local_run is not None and local_run.cause["userId"] == USER
    if run.status is not RunStatus.COMPLETED:
        assert status.state is CombinedState.PENDING
    world.local.wait_for_run(REPO, local_run.run_id, timeout=60)
    assert jk.get_run(REPO, queue_id).conclusion is Conclusion.FAILURE
    assert jk.ref_status(REPO, world.made.head_sha).state is CombinedState.FAILURE


def test_a_single_pipeline_job(world: World) -> None:
    """A Pipeline job (not multibranch) building one branch: the branch comes from each
    build's revision, the script path from the job's SCM definition."""
    jk = world.provider(jobs={REPO: STANDALONE})
    runs = jk.list_runs(REPO, branch="main")
    assert runs and all(r.head_branch == "main" for r in runs)
    assert head_queue_id(world) in {r.id for r in runs}
    run = jk.get_run(REPO, head_queue_id(world))
    assert run.workflow_path == ".github/workflows/ci.yml"
    assert f"/job/{STANDALONE}/" in run.html_url
    assert [j.name for j in run.failed_jobs] == ["lint"]
    with jk.open_job_log(REPO, run.failed_jobs[0].id) as fh:
        assert b"F401" in fh.read()


class Hosting(CIProvider):
    """Records what the Jenkins provider delegates."""

    name = "spy"

    def __init__(self) -> None:
        self.log: list[tuple[str, tuple[Any, ...]]] = []

    def _note(self, name: str, *args: Any) -> Any:
        self.log.append((name, args))
        return {"default_branch": "trunk", "protected_branches": ["trunk"]}.get(name)

    def default_branch(self, repo: str) -> str:
        return str(self._note("default_branch", repo))

    def protected_branches(self, repo: str) -> list[str]:
        return list(self._note("protected_branches", repo))

    def git_remote(self, repo: str) -> Any:
        return self._note("git_remote", repo)

    def list_runs(self, repo: str, branch: str | None = None, head_sha: str | None = None) -> Any:
        raise AssertionError("CI reads go to Jenkins")

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Any:
        raise AssertionError("CI reads go to Jenkins")

    def open_job_log(self, repo: str, job_id: int) -> Any:
        raise AssertionError("CI reads go to Jenkins")

    def rerun_failed_jobs(self, repo: str, run_id: int) -> int:
        raise AssertionError("rebuilds go to Jenkins")

    def ref_status(self, repo: str, sha: str) -> Any:
        raise AssertionError("CI state comes from Jenkins")

    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        return str(self._note("push_branch", repo, workdir, branch))

    def open_or_update_pull_request(self, *args: Any) -> Any:
        return self._note("open_or_update_pull_request", *args)

    def set_commit_status(self, *args: Any) -> None:
        self._note("set_commit_status", *args)

    def comment(self, *args: Any) -> None:
        self._note("comment", *args)

    def open_issue(self, *args: Any, **kwargs: Any) -> Any:
        return self._note("open_issue", *args)


def test_git_hosting_is_delegated(world: World) -> None:
    hosting = Hosting()
    jk = world.provider(hosting=hosting)
    assert jk.default_branch(REPO) == "trunk"
    assert jk.protected_branches(REPO) == ["trunk"]
    jk.git_remote(REPO)
    jk.push_branch(REPO, "/w", "cicd-fix/x")
    jk.open_or_update_pull_request(REPO, "cicd-fix/x", "main", "t", "b", "<!-- m -->")
    jk.set_commit_status(REPO, "abc", CombinedState.PENDING, "d")
    jk.comment(REPO, 1, "b", "<!-- m -->")
    jk.open_issue(REPO, "t", "b", "<!-- m -->", ["l"])
    assert [name for name, _ in hosting.log] == [
        "default_branch",
        "protected_branches",
        "git_remote",
        "push_branch",
        "open_or_update_pull_request",
        "set_commit_status",
        "comment",
        "open_issue",
    ]
    assert jk.list_runs(REPO)  # while CI comes from Jenkins


def test_the_local_hosting_refuses_protected_pushes(world: World, tmp_path: Path) -> None:
    from cicd_orchestrator.exceptions import SafetyError

    jk = world.provider()
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", jk.git_remote(REPO).url, str(clone)], check=True, capture_output=True
    )
    with pytest.raises(SafetyError):
        jk.push_branch(REPO, str(clone), "main")


def test_credentials_never_leak(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad = world.provider(token="wrong-" + TOKEN[6:])
    with pytest.raises(ProviderError) as info:
        bad.list_runs(REPO)
    assert "401" in str(info.value) and TOKEN[6:] not in str(info.value)
    with pytest.raises(ConfigError):
        build_client(f"http://{USER}:{TOKEN}@127.0.0.1:1/", None, None)
    with pytest.raises(ConfigError):
        build_client(world.server.url, USER, None)
    jk = world.provider()
    jk.get_run(REPO, head_queue_id(world))
    assert TOKEN not in caplog.text and TOKEN[6:] not in caplog.text
    assert all(TOKEN not in r.path + r.query for r in world.server.requests)
    assert all(TOKEN not in json.dumps(r.headers) for r in world.server.requests)
    assert TOKEN not in jk.server


def test_server_errors_are_provider_errors(world: World) -> None:
    jk = world.provider()
    world.server.inject(r"/job/shipping/api/json$", status=503)
    with pytest.raises(ProviderError, match="503"):
        jk.list_runs(REPO)
    assert jk.list_runs(REPO)


def test_the_airflow_connection(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "http", "host": world.server.url, "login": USER, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_JENKINS_TEST", json.dumps(conn))
    client = client_from_connection("jenkins_test", timeout=5)
    assert client.get_whoami()["id"] == USER
    jk = JenkinsProvider("jenkins_test", hosting=world.local)
    assert head_queue_id(world) in [r.id for r in jk.list_failed_runs(REPO, "main")]
    with pytest.raises(ConfigError):
        client_from_connection("jenkins_missing")
