"""What only the Jenkins provider does, against the Jenkins-compatible server (python-jenkins
on loopback): runs as chains of builds, stages as jobs, stage logs, rebuilds of any build,
triggered builds, single Pipeline jobs, delegation to the git hosting, credentials. What every
provider does is in ``test_provider_contract.py``."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from cicd_devkit.worlds import JENKINS_TOKEN as TOKEN
from cicd_devkit.worlds import JENKINS_USER as USER
from cicd_devkit.worlds import REPO, STANDALONE, JenkinsWorld

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.jenkins.client import build_client
from cicd_orchestrator.ci.jenkins.mapping import JOB_ID_FACTOR, split_job_id
from cicd_orchestrator.constants import CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import ConfigError, ProviderError, UnknownRunError


def test_runs_are_numbered_by_their_first_build(jenkins_world: JenkinsWorld) -> None:
    jk = jenkins_world.provider()
    runs = jk.list_runs(REPO)
    assert [r.id for r in runs] == [jenkins_world.head_run_id, jenkins_world.green_run_id]
    assert [r.run_number for r in runs] == [2, 1]
    assert {r.workflow_path for r in runs} == {".github/workflows/ci.yml"}  # from config.xml


def test_stages_are_jobs_and_flow_nodes_are_steps(jenkins_world: JenkinsWorld) -> None:
    jk = jenkins_world.provider()
    run = jk.get_run(REPO, jenkins_world.head_run_id)
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


def test_a_stage_log_is_the_stage_of_the_console(jenkins_world: JenkinsWorld) -> None:
    jk = jenkins_world.provider()
    run = jk.get_run(REPO, jenkins_world.head_run_id)
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


def test_the_log_engine_reads_the_stage_log(jenkins_world: JenkinsWorld) -> None:
    from cicd_orchestrator.logs.analyze import analyze_log

    jk = jenkins_world.provider()
    run = jk.get_run(REPO, jenkins_world.head_run_id)
    with jk.open_job_log(REPO, run.jobs[0].id) as fh:
        analysis = analyze_log(fh)
    assert analysis.format == "jenkins"
    assert any("F401" in e.text for e in analysis.excerpts)


def test_rebuilds_are_new_attempts_of_the_run(jenkins_world: JenkinsWorld) -> None:
    jk = jenkins_world.provider()
    green = jenkins_world.green_run_id
    assert jk.rerun_failed_jobs(REPO, green) == 2
    with pytest.raises(ProviderError, match="still running"):
        jk.rerun_failed_jobs(REPO, green)  # a rebuild of a running build is refused
    jenkins_world.local.wait_for_run(
        REPO, jenkins_world.made.runs[jenkins_world.made.commits[0][0]][0], timeout=60
    )
    # without Replay (404), the Rebuilder plugin's endpoint
    jenkins_world.jenkins.inject(r"/replay/rebuild$", status=404, method="POST")
    assert jk.rerun_failed_jobs(REPO, green) == 3
    jenkins_world.local.wait_for_run(
        REPO, jenkins_world.made.runs[jenkins_world.made.commits[0][0]][0], timeout=60
    )
    run = jk.get_run(REPO, green)
    assert run.id == green and run.run_attempt == 3 and run.run_number == 1
    attempts = [jk.get_run(REPO, green, attempt=n) for n in (1, 2, 3)]
    numbers = [int(a.html_url.rstrip("/").rsplit("/", 1)[1]) for a in attempts]
    assert numbers[0] == 1 and numbers[1] < numbers[2]
    assert all(a.conclusion is Conclusion.SUCCESS for a in attempts)
    assert {j.run_attempt for j in attempts[2].jobs} == {3}
    assert len({j.id for a in attempts for j in a.jobs}) == 6  # each build has its own jobs
    build2 = jenkins_world.jenkins.index.build(REPO, "main", numbers[1])
    build3 = jenkins_world.jenkins.index.build(REPO, "main", numbers[2])
    assert build2 is not None and build2.cause["shortDescription"] == f"Replayed #{numbers[0]}"
    assert build3 is not None and build3.cause["upstreamBuild"] == numbers[1]
    # the run keeps its id and place: the cursor does not see it again
    assert [r.id for r in jk.list_runs(REPO)][-1] == green


def test_a_triggered_build_is_pending_then_done(jenkins_world: JenkinsWorld) -> None:
    jk = jenkins_world.provider()
    queue_id = jk.trigger_build(REPO, "main")
    status = jk.ref_status(REPO, jenkins_world.head_sha)
    run = jk.get_run(REPO, queue_id)
    assert run.event == "workflow_dispatch" and run.head_sha == jenkins_world.head_sha
    local_run = jenkins_world.jenkins.index.by_queue_id(queue_id)
    assert local_run is not None and local_run.cause["userId"] == USER
    if run.status is not RunStatus.COMPLETED:
        assert status.state is CombinedState.PENDING
    jenkins_world.local.wait_for_run(REPO, local_run.run_id, timeout=60)
    assert jk.get_run(REPO, queue_id).conclusion is Conclusion.FAILURE
    assert jk.ref_status(REPO, jenkins_world.head_sha).state is CombinedState.FAILURE


def test_a_single_pipeline_job(jenkins_world: JenkinsWorld) -> None:
    """A Pipeline job (not multibranch) building one branch: the branch comes from each
    build's revision, the script path from the job's SCM definition."""
    jk = jenkins_world.provider(jobs={REPO: STANDALONE})
    runs = jk.list_runs(REPO, branch="main")
    assert runs and all(r.head_branch == "main" for r in runs)
    assert jenkins_world.head_run_id in {r.id for r in runs}
    run = jk.get_run(REPO, jenkins_world.head_run_id)
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

    def identity(self) -> str:
        return "spy-bot"

    def commit_author(self, repo: str, sha: str) -> str:
        return str(self._note("commit_author", repo, sha))

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

    def close_pull_request(self, *args: Any) -> None:
        self._note("close_pull_request", *args)

    def set_owners(self, *args: Any) -> None:
        self._note("set_owners", *args)

    def comment(self, *args: Any) -> None:
        self._note("comment", *args)

    def mark_ready_for_review(self, *args: Any) -> Any:
        return self._note("mark_ready_for_review", *args)

    def open_issue(self, *args: Any, **kwargs: Any) -> Any:
        return self._note("open_issue", *args)


def test_git_hosting_is_delegated(jenkins_world: JenkinsWorld) -> None:
    hosting = Hosting()
    jk = jenkins_world.provider(hosting=hosting)
    assert jk.default_branch(REPO) == "trunk"
    assert jk.protected_branches(REPO) == ["trunk"]
    jk.git_remote(REPO)
    jk.push_branch(REPO, "/w", "cicd-fix/x")
    jk.open_or_update_pull_request(REPO, "cicd-fix/x", "main", "t", "b", "<!-- m -->")
    jk.set_commit_status(REPO, "abc", CombinedState.PENDING, "d")
    jk.set_commit_status(REPO, "abc", CombinedState.PENDING, "d", context="cicd-orchestrator/x")
    jk.set_owners(REPO, 1, ["alice"], ["alice"], ["acme/ops"])
    jk.comment(REPO, 1, "b", "<!-- m -->")
    jk.mark_ready_for_review(REPO, 1)
    jk.open_issue(REPO, "t", "b", "<!-- m -->", ["l"])
    assert jk.workflows_for(REPO, "abc", "push", "cicd-fix/x") is None  # Jenkins builds it
    assert [name for name, _ in hosting.log] == [
        "default_branch",
        "protected_branches",
        "git_remote",
        "push_branch",
        "open_or_update_pull_request",
        "set_commit_status",
        "set_commit_status",
        "set_owners",
        "comment",
        "mark_ready_for_review",
        "open_issue",
    ]
    assert hosting.log[6][1][-1] == "cicd-orchestrator/x"  # the status context goes along
    assert jk.list_runs(REPO)  # while CI comes from Jenkins


def test_credentials_never_leak(
    jenkins_world: JenkinsWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = jenkins_world.provider(token="wrong-" + TOKEN[6:])
    with pytest.raises(ProviderError) as info:
        bad.list_runs(REPO)
    assert "401" in str(info.value) and TOKEN[6:] not in str(info.value)
    with pytest.raises(ConfigError):
        build_client(f"http://{USER}:{TOKEN}@127.0.0.1:1/", None, None)
    with pytest.raises(ConfigError):
        build_client(jenkins_world.jenkins.url, USER, None)
    jk = jenkins_world.provider()
    jk.get_run(REPO, jenkins_world.head_run_id)
    assert TOKEN not in caplog.text and TOKEN[6:] not in caplog.text
    assert all(TOKEN not in r.path + r.query for r in jenkins_world.jenkins.requests)
    assert all(TOKEN not in json.dumps(r.headers) for r in jenkins_world.jenkins.requests)
    assert TOKEN not in jk.server


def test_server_errors_are_provider_errors(jenkins_world: JenkinsWorld) -> None:
    jk = jenkins_world.provider()
    jenkins_world.jenkins.inject(r"/job/shipping/api/json$", status=503)
    with pytest.raises(ProviderError, match="503"):
        jk.list_runs(REPO)
    assert jk.list_runs(REPO)
