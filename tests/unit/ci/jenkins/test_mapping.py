"""Builds as runs and attempts, stages as jobs, a stage cut out of a console (pure)."""

from __future__ import annotations

from typing import Any

from cicd_orchestrator.ci.jenkins.mapping import (
    BuildRef,
    build_origin,
    build_refs,
    build_revision,
    chains,
    stage_jobs,
    stage_lines,
    stage_names,
    to_run,
)
from cicd_orchestrator.constants import Conclusion, RunStatus


def build(number: int, queue_id: int, result: str | None = "FAILURE", **extra: Any) -> BuildRef:
    fields: dict[str, Any] = {
        "job": "acme/shipping/main",
        "branch": "main",
        "number": number,
        "queue_id": queue_id,
        "url": f"http://j/job/acme/job/shipping/job/main/{number}/",
        "result": result,
        "building": False,
        "timestamp": 1_700_000_000_000 + number,
        "duration": 1000,
        "sha": "a" * 40,
        "origin": None,
    }
    fields.update(extra)
    return BuildRef(**fields)


def test_rebuilds_join_the_run_of_the_build_they_rebuild() -> None:
    builds = [
        build(1, 10, "SUCCESS"),
        build(2, 12),
        build(3, 15, origin=2),  # replay of 2: attempt 2 of run 12
        build(4, 16, "SUCCESS"),  # a fresh build
        build(5, 18, "SUCCESS", origin=3),  # rebuild of 3: attempt 3 of run 12
        build(6, 20, origin=99),  # a rebuild of a build that is gone: its own run
    ]
    got = chains(builds)
    assert [(c.run_id, [b.number for b in c.builds]) for c in got] == [
        (20, [6]),
        (16, [4]),
        (12, [2, 3, 5]),
        (10, [1]),
    ]
    run = to_run("acme/shipping", got[2], None, "acme/shipping", "Jenkinsfile")
    assert (run.id, run.run_number, run.run_attempt) == (12, 2, 3)
    assert run.conclusion is Conclusion.SUCCESS and run.html_url.endswith("/5/")
    first = to_run("acme/shipping", got[2], 1, "acme/shipping", "Jenkinsfile")
    assert first.run_attempt == 1 and first.conclusion is Conclusion.FAILURE


def test_the_origin_of_a_build_from_its_causes() -> None:
    def with_cause(**cause: Any) -> dict[str, Any]:
        return {"actions": [{"_class": "hudson.model.CauseAction", "causes": [cause]}]}

    assert build_origin(with_cause(shortDescription="Replayed #7")) == 7
    assert build_origin(with_cause(shortDescription="Rebuilds #8")) == 8
    assert build_origin(with_cause(originalNumber=9, shortDescription="x")) == 9
    rebuild = with_cause(
        _class="com.sonyericsson.rebuild.RebuildCause", upstreamBuild=4, upstreamProject="x/y"
    )
    assert build_origin(rebuild) == 4
    upstream = with_cause(
        _class="hudson.model.Cause$UpstreamCause", upstreamBuild=4, upstreamProject="other"
    )
    assert build_origin(upstream, job_name="acme/shipping/main") is None  # another job's trigger
    assert build_origin(with_cause(shortDescription="Started by user admin")) is None


def test_revision_and_branch_of_a_build() -> None:
    data = {
        "number": 3,
        "queueId": 30,
        "actions": [
            {},
            {
                "lastBuiltRevision": {
                    "SHA1": "b" * 40,
                    "branch": [{"name": "refs/remotes/origin/dev"}],
                }
            },
        ],
    }
    assert build_revision(data) == ("b" * 40, "dev")
    (ref,) = build_refs("single", None, [data])
    assert ref.branch == "dev" and ref.queue_id == 30 and ref.result is None and not ref.done


def test_stages_as_jobs() -> None:
    chain = chains([build(2, 12)])[0]
    run = to_run("acme/shipping", chain, None, "acme/shipping", "Jenkinsfile")
    describe = {
        "stages": [
            {"id": "6", "name": "Declarative: Checkout SCM", "status": "SUCCESS"},
            {
                "id": "20",
                "name": "build",
                "status": "SUCCESS",
                "startTimeMillis": 1,
                "durationMillis": 5,
            },
            {"id": "40", "name": "deploy", "status": "NOT_EXECUTED"},
            {"id": "60", "name": "Declarative: Post Actions", "status": "FAILED"},
        ]
    }
    nodes = {"20": {"stageFlowNodes": [{"id": "21", "name": "Shell Script", "status": "SUCCESS"}]}}
    jobs = stage_jobs(run, chain.builds[0], describe, nodes)
    assert [(j.id, j.name, j.conclusion) for j in jobs] == [
        (12_000_020, "build", Conclusion.SUCCESS),
        (12_000_040, "deploy", Conclusion.SKIPPED),
        (12_000_060, "Declarative: Post Actions", Conclusion.FAILURE),
    ]
    assert [s.name for s in jobs[0].steps] == ["Shell Script"]
    # a failed build without a failed stage: one job for the whole build (node 0)
    (whole,) = stage_jobs(run, chain.builds[0], {"stages": []})
    assert whole.id == 12_000_000 and whole.conclusion is Conclusion.FAILURE
    running = build(3, 13, None, building=True)
    (queued,) = stage_jobs(
        run, running, {"stages": [{"id": "7", "name": "x", "status": "NOT_EXECUTED"}]}
    )
    assert queued.status is RunStatus.QUEUED and queued.conclusion is None


CONSOLE = b"""Started by user admin
[Pipeline] Start of Pipeline
[Pipeline] node
[Pipeline] {
[Pipeline] stage
[Pipeline] { (build)
[Pipeline] sh
+ make
ok
[Pipeline] }
[Pipeline] // stage
[Pipeline] stage
[Pipeline] { (test)
[Pipeline] withEnv
[Pipeline] {
[Pipeline] sh
+ pytest
E   assert 1 == 2
[Pipeline] }
[Pipeline] // withEnv
[Pipeline] }
[Pipeline] // stage
[Pipeline] stage
[Pipeline] { (test)
again
[Pipeline] }
[Pipeline] // stage
[Pipeline] }
[Pipeline] // node
[Pipeline] End of Pipeline
ERROR: script returned exit code 1
Finished: FAILURE
"""


def test_a_stage_cut_out_of_the_console() -> None:
    lines = CONSOLE.splitlines(keepends=True)
    test = b"".join(stage_lines(lines, "test")).decode()
    assert test.splitlines() == [
        "[Pipeline] stage",
        "[Pipeline] { (test)",
        "[Pipeline] withEnv",
        "[Pipeline] {",
        "[Pipeline] sh",
        "+ pytest",
        "E   assert 1 == 2",
        "[Pipeline] }",
        "[Pipeline] // withEnv",
        "[Pipeline] }",
        "[Pipeline] // stage",
        "ERROR: script returned exit code 1",
        "Finished: FAILURE",
    ]
    second = b"".join(stage_lines(lines, "test", occurrence=2)).decode()
    assert "again" in second and "pytest" not in second
    assert b"".join(stage_lines(lines, "missing")) == b""
    assert stage_names(CONSOLE.decode().splitlines()) == ["build", "test", "test"]
