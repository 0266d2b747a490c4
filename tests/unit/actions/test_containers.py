"""Jobs that need a container engine or another system: refused clearly when not replayable."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cicd_orchestrator.actions import containers
from cicd_orchestrator.actions.containers import Engine, replay_obstacle
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.constants import Conclusion

RunFn = Callable[..., list[JobExecution]]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")


def by_name(executions: list[JobExecution]) -> dict[str, JobExecution]:
    return {e.name: e for e in executions}


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    containers.forget_engine()
    yield
    containers.forget_engine()


def test_a_container_job_without_an_engine_is_not_replayed(
    run_workflow: RunFn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(containers, "detect_engine", lambda: None)
    marker = tmp_path / "ran"
    wf = f"""
    on: push
    jobs:
      in-container:
        runs-on: ubuntu-latest
        container:
          image: node:20
        steps:
          - run: touch {marker}
      with-services:
        runs-on: ubuntu-latest
        services:
          postgres:
            image: postgres:16
          redis:
            image: redis:7
        steps:
          - run: touch {marker}
      plain:
        runs-on: ubuntu-latest
        steps:
          - run: echo plain ran
      after:
        needs: [in-container]
        steps:
          - run: echo after ran
    """
    jobs = by_name(run_workflow(wf))
    for name, what in (
        ("in-container", "in the container 'node:20'"),
        ("with-services", "with the services postgres, redis"),
    ):
        job = jobs[name]
        assert job.conclusion is Conclusion.NEUTRAL, job.read_log()
        assert job.not_replayable and what in job.not_replayable
        assert "no container engine" in job.not_replayable
        lines = [STAMP.sub("", ln) for ln in job.read_log().splitlines()]
        assert f"##[error]Cannot replay locally: {job.not_replayable}" in lines
        assert [s.name for s in job.steps] == ["Set up job", "Complete job"]
        assert job.steps[0].conclusion is Conclusion.NEUTRAL
    assert not marker.exists()  # no step of theirs ran
    assert jobs["plain"].conclusion is Conclusion.SUCCESS
    assert jobs["plain"].not_replayable is None
    assert "plain ran" in jobs["plain"].read_log()
    # a job that needs one not replayed still runs, as one whose needs were not executed
    assert jobs["after"].conclusion is Conclusion.SUCCESS


def test_windows_and_macos_jobs_are_never_replayed(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      test:
        strategy:
          matrix:
            os: [ubuntu-22.04, windows-latest, macos-14]
        runs-on: ${{ matrix.os }}
        steps:
          - run: echo ran on ${{ matrix.os }}
      labels:
        runs-on: [self-hosted, Windows, x64]
        steps:
          - run: echo never
    """
    jobs = by_name(run_workflow(wf))
    linux = jobs["test (ubuntu-22.04)"]
    assert linux.conclusion is Conclusion.SUCCESS and linux.not_replayable is None
    for name, label in (
        ("test (windows-latest)", "windows-latest"),
        ("test (macos-14)", "macos-14"),
        ("labels", "Windows"),
    ):
        job = jobs[name]
        assert job.conclusion is Conclusion.NEUTRAL, name
        assert job.not_replayable == (
            f"the job runs on '{label}', and only Linux jobs can be replayed on this machine"
        )
        assert "Cannot replay locally" in job.read_log()


def test_the_engine_is_asked_only_for_jobs_that_need_one() -> None:
    def never() -> Engine | None:
        raise AssertionError("the engine was asked for a plain job")

    assert replay_obstacle({}, "ubuntu-latest", {}, never) is None
    assert replay_obstacle({"container": None}, ["self-hosted", "linux"], {}, never) is None
    docker = Engine("docker", "/usr/bin/docker")
    reason = replay_obstacle({"container": "python:3.12"}, "ubuntu-latest", {}, lambda: docker)
    assert reason is not None and "podman only" in reason and "'python:3.12'" in reason
    podman = Engine("podman", "/usr/bin/podman")
    assert (
        replay_obstacle({"container": "python:3.12"}, "ubuntu-latest", {}, lambda: podman) is None
    )
    ctx = {"matrix": {"image": "node:22"}}
    body = {"container": {"image": "${{ matrix.image }}"}}
    reason = replay_obstacle(body, "ubuntu-latest", ctx, lambda: None)
    assert reason is not None and "'node:22'" in reason
    bad = replay_obstacle({}, "${{ fromJSON('[') }}", {}, lambda: None)
    assert bad is not None and "cannot be read" in bad


def fake_engine(folder: Path, name: str, exit_code: int, first: str = "") -> None:
    """An engine client answering ``info`` with ``exit_code``, running ``first`` (sh) before."""
    path = folder / name
    path.write_text(f'#!/bin/sh\n{first}\ntest "$1" = info || exit 64\nexit {exit_code}\n')
    path.chmod(0o755)


def test_engine_detection_runs_info(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, engine_lock_file: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert containers.detect_engine() is None  # none on PATH
    fake_engine(tmp_path, "docker", 1)  # a client whose daemon does not answer
    containers.forget_engine()
    assert containers.detect_engine() is None
    fake_engine(tmp_path, "podman", 0)
    containers.forget_engine()
    assert containers.detect_engine() == Engine("podman", str(tmp_path / "podman"))
    fake_engine(tmp_path, "docker", 0)
    containers.forget_engine()
    engine = containers.detect_engine()
    assert engine is not None and engine.name == "podman"  # podman first
    (tmp_path / "podman").unlink()
    containers.forget_engine()
    engine = containers.detect_engine()
    assert engine is not None and engine.name == "docker"


def test_a_busy_engine_is_not_an_absent_one(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    hold_engine_lock: Callable[[], Callable[[], None]],
) -> None:
    """``info`` holds the engine's lock too: while another job holds it past the timeout, the
    engine is neither called nor taken for missing, and a container job says why."""
    release = hold_engine_lock()
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_engine(tmp_path, "podman", 0, first=f"touch {tmp_path / 'asked'}")
    monkeypatch.setattr(containers, "ENGINE_TIMEOUT", 0.3)
    with pytest.raises(containers.EngineBusy, match="busy with another job"):
        containers.detect_engine()
    reason = replay_obstacle({"container": "python:3.12"}, "ubuntu-latest", {})
    assert reason is not None and "engine cannot be asked" in reason, reason
    assert "busy with another job" in reason and not (tmp_path / "asked").exists()
    release()
    assert containers.detect_engine() == Engine("podman", str(tmp_path / "podman"))


def test_runs_on_labels_and_images() -> None:
    ctx = {"matrix": {"os": "ubuntu-24.04"}}
    assert containers.runs_on_labels("${{ matrix.os }}", ctx) == ["ubuntu-24.04"]
    assert containers.runs_on_labels({"group": "g", "labels": ["linux", "x64"]}, {}) == [
        "linux",
        "x64",
    ]
    assert containers.runs_on_labels(None, {}) == []
    assert containers.image_for(["ubuntu-24.04"]) == "catthehacker/ubuntu:act-24.04"
    assert containers.image_for(["ubuntu-latest"]) == "catthehacker/ubuntu:act-latest"
    assert containers.image_for(["my-own-label"]) is None
