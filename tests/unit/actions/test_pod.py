"""Jobs with ``container:`` and ``services:`` replayed in a pod of their own (podman)."""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from cicd_devkit.containers import SERVED

from cicd_orchestrator.actions import containers
from cicd_orchestrator.actions import pod as pod_module
from cicd_orchestrator.actions.containers import ContainerError
from cicd_orchestrator.actions.pod import PodSpec, _health, _seconds, pod_spec
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.constants import Conclusion

RunFn = Callable[..., list[JobExecution]]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ", re.M)


def text(job: JobExecution) -> str:
    return STAMP.sub("", job.read_log())


def pods() -> str:
    return containers.run_engine("podman", "ps", "--all", "--format", "{{.Names}}")


@pytest.fixture
def made_pods(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the pods the test makes (other tests' pods come and go meanwhile)."""
    names: list[str] = []
    make = uuid.uuid4

    def recorded() -> uuid.UUID:
        made = make()
        names.append(f"cicd-job-{made.hex[:12]}")
        return made

    monkeypatch.setattr(pod_module, "uuid", SimpleNamespace(uuid4=recorded))
    return names


def left_behind(names: list[str]) -> list[str]:
    listed = pods()
    return [name for name in names if name in listed]


# --------------------------------------------------------------------------- what a job asks
def test_the_pod_spec_of_a_job() -> None:
    body = {
        "container": {
            "image": "${{ matrix.image }}",
            "env": {"A": "${{ matrix.a }}"},
            "options": "--cpus 1",
            "ports": [80],
        },
        "services": {
            "db": {
                "image": "postgres:16",
                "env": {"POSTGRES_PASSWORD": "pw"},
                "options": "--health-cmd 'pg_isready -q' --health-interval=10s --privileged",
            },
            "skipped": {"image": ""},
        },
    }
    spec = pod_spec(body, {"matrix": {"image": "python:3.12", "a": "1"}})
    assert spec.job is not None and spec.job.image == "python:3.12" and spec.job.env == {"A": "1"}
    assert spec.job.ignored == ("--cpus", "1", "ports:")
    assert list(spec.services) == ["db"]  # a service without an image is not started
    db = spec.services["db"]
    assert db.health == ("--health-cmd=pg_isready -q", "--health-interval=10s")
    assert db.ignored == ("--privileged",)
    assert pod_spec({"container": "node:20"}, {}).job.image == "node:20"  # type: ignore[union-attr]
    assert pod_spec({}, {}) == PodSpec(None, {})


@pytest.mark.parametrize(
    "body",
    [
        {"container": "--privileged"},
        {"container": "a b"},
        {"services": {"bad name": {"image": "redis"}}},
        {"services": {"ok": {"image": "${{ fromJSON('[') }}"}}},
    ],
)
def test_a_bad_container_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ContainerError):
        pod_spec(body, {})


def test_durations_and_health_options() -> None:
    assert _seconds("10s", 0) == 10 and _seconds("500ms", 0) == 0.5 and _seconds("2m", 0) == 120
    assert _seconds("3", 0) == 3 and _seconds("soon", 7) == 7 and _seconds(None, 1) == 1
    assert _health("--health-retries 5 -e X=1") == (("--health-retries=5",), ("-e", "X=1"))
    assert _health("'unclosed") == ((), ("'unclosed",))


# --------------------------------------------------------------------------- replayed in a pod
def test_a_container_job_runs_its_steps_in_the_image(
    run_workflow: RunFn, container_images: tuple[str, str], made_pods: list[str]
) -> None:
    busybox, _ = container_images
    wf = f"""
    on: push
    jobs:
      in-image:
        runs-on: ubuntu-latest
        container:
          image: {busybox}
          env:
            FROM_CONTAINER: yes-it-is
        steps:
          - uses: actions/checkout@v4
          - uses: actions/setup-python@v5
            with:
              python-version: "3.12"
          - id: first
            run: |
              cat README.md
              test ! -e /usr/bin/python3 && echo "no host python here"
              readlink /bin/sh
              echo "container=$FROM_CONTAINER"
              echo "GREETING=hello from the env file" >> "$GITHUB_ENV"
              mkdir -p "$HOME/bin" && printf '#!/bin/sh\\necho tool ran\\n' > "$HOME/bin/mytool"
              chmod +x "$HOME/bin/mytool" && echo "$HOME/bin" >> "$GITHUB_PATH"
              echo "answer=42" >> "$GITHUB_OUTPUT"
          - run: |
              echo "$GREETING / ${{{{ steps.first.outputs.answer }}}}"
              mytool
              echo "$PATH"
              echo "secret=${{{{ secrets.GITHUB_TOKEN }}}}"
          - run: exit 3
    """
    (job,) = run_workflow(wf, files={"README.md": "the project's readme\n"})
    log = text(job)
    assert job.conclusion is Conclusion.FAILURE, log
    assert job.not_replayable is None
    assert [s.name for s in job.steps][:2] == ["Set up job", "Initialize containers"]
    for expected in (
        "the project's readme",
        "no host python here",
        "busybox",
        "container=yes-it-is",
        "hello from the env file / 42",
        "tool ran",
        "secret=***",
        "##[error]Process completed with exit code 3.",
        "actions/setup-python@v5 is not run: the job runs in its container",
        "shell: sh -e {0}",
    ):
        assert expected in log, (expected, log)
    path_line = next(ln for ln in log.splitlines() if ln.endswith("/usr/local/bin:/usr/bin:/bin"))
    assert path_line.split(":")[0].endswith("/home/bin")  # GITHUB_PATH before the image's
    assert made_pods and not left_behind(made_pods)  # the pod is gone


def test_services_are_reached_by_label_and_on_localhost(
    run_workflow: RunFn, container_images: tuple[str, str], made_pods: list[str]
) -> None:
    busybox, httpd = container_images
    services = f"""
        services:
          web:
            image: {httpd}
            options: >-
              --health-cmd "wget -qO- http://127.0.0.1:8080/"
              --health-interval 1s --health-retries 10
            ports: ["8080:8080"]
    """
    wf = f"""
    on: push
    jobs:
      container-and-service:
        container: {busybox}
        {services.strip()}
        steps:
          - run: wget -qO- http://web:8080/ && wget -qO- http://localhost:8080/
      service-only:
        runs-on: ubuntu-latest
        {services.strip()}
        steps:
          - run: |
              python3 -c "import urllib.request as u
              for url in ('http://web:8080/', 'http://127.0.0.1:8080/'):
                  print('got', u.urlopen(url, timeout=5).read().decode().strip())"
    """
    jobs = {j.name: j for j in run_workflow(wf)}
    for name in ("container-and-service", "service-only"):
        log = text(jobs[name])
        assert jobs[name].conclusion is Conclusion.SUCCESS, log
        assert "Service 'web' is healthy" in log
        assert log.count(SERVED) == 2, log
    assert made_pods and not left_behind(made_pods)


def test_a_job_whose_image_cannot_be_had_is_not_replayed(
    run_workflow: RunFn,
    container_images: tuple[str, str],
    made_pods: list[str],
) -> None:
    with socket.socket() as closed:  # a loopback port that refuses: the pull fails at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        wf = f"""
        on: push
        jobs:
          missing:
            container: localhost:{port}/cicd-no-such-image:1
            steps:
              - run: echo never
        """
        (job,) = run_workflow(wf)
    assert job.conclusion is Conclusion.NEUTRAL, text(job)
    assert job.not_replayable and "could not be started" in job.not_replayable
    assert "Cannot replay locally" in text(job) and "never" not in text(job).split("Run")[-1]
    assert made_pods and not left_behind(made_pods)


def test_an_unhealthy_service_makes_the_job_not_replayable(
    run_workflow: RunFn, container_images: tuple[str, str]
) -> None:
    _, httpd = container_images
    wf = f"""
    on: push
    jobs:
      sick:
        services:
          web:
            image: {httpd}
            options: --health-cmd false --health-interval 1s --health-retries 2
        steps:
          - run: echo never
    """
    (job,) = run_workflow(wf, runner=JobRunner())
    assert job.conclusion is Conclusion.NEUTRAL, text(job)
    assert job.not_replayable and "never became healthy" in job.not_replayable


def test_runs_on_stands_for_an_image_when_asked(
    run_workflow: RunFn, container_images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CICD_RUNS_ON_IMAGES, a job without container: runs in the image of its runs-on
    label (the table maps it; here to the test image); without it, on the host's tools."""
    busybox, _ = container_images
    monkeypatch.setitem(containers.RUNS_ON_IMAGES, "ubuntu-latest", busybox)
    wf = """
    on: push
    jobs:
      plain:
        runs-on: ubuntu-latest
        steps:
          - run: readlink /bin/sh; test -e /usr/bin/python3 && echo "host tools" || true
    """
    monkeypatch.setenv("CICD_RUNS_ON_IMAGES", "1")
    (job,) = run_workflow(wf)
    log = text(job)
    assert job.conclusion is Conclusion.SUCCESS, log
    assert "Initialize containers" in [s.name for s in job.steps]
    printed = log.split("##[endgroup]")[-1].splitlines()
    assert f"Starting job container ({busybox})" in log and "host tools" not in printed
    monkeypatch.delenv("CICD_RUNS_ON_IMAGES")
    (host,) = run_workflow(wf)
    assert "Initialize containers" not in [s.name for s in host.steps]
    assert "host tools" in text(host).split("##[endgroup]")[-1].splitlines()


StandIn = Callable[[str], containers.Engine]


@pytest.fixture
def stand_in(tmp_path: Path, engine_lock_file: Path) -> StandIn:
    """Makes a podman that logs each call to ``calls`` and then runs a body (sh); its calls
    hold the test's own engine lock."""

    def make(body: str) -> containers.Engine:
        engine = tmp_path / "podman"
        engine.write_text(
            f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n{body}\n', encoding="utf-8"
        )
        engine.chmod(0o755)
        return containers.Engine("podman", str(engine))

    return make


def test_a_pod_whose_create_ran_out_of_time_is_removed(
    tmp_path: Path, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine hung on ``pod create`` (it may still make the pod): the pod is removed all
    the same, not left behind to hold the engine's names and locks."""
    engine = stand_in('if [ "$1 $2" = "pod create" ]; then sleep 5; fi')
    monkeypatch.setattr(containers, "ENGINE_TIMEOUT", 0.5)
    job = pod_module.JobPod(engine, tmp_path, say=print)
    with pytest.raises(ContainerError, match="took over"):
        job.start(PodSpec(None, {}), writable=[], readable=[])
    job.close()
    said = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert said[0].startswith("pod create --name cicd-job-")
    assert any(line.startswith(f"pod rm --force {job.name}") for line in said), said


# --------------------------------------------------------------------------- the engine's lock
JOB_ONLY = PodSpec(pod_module.ContainerSpec("localhost/any:1"), {})


def test_engine_calls_are_made_one_at_a_time(tmp_path: Path, stand_in: StandIn) -> None:
    """Jobs starting and ending together: no two of their engine calls overlap (podman
    deadlocks on that), their image checks included."""
    busy = tmp_path / "busy"
    engine = stand_in(
        f'mkdir {busy} 2>/dev/null || echo "OVERLAP $*" >> {tmp_path / "calls"}\n'
        f'sleep 0.05; rmdir {busy}\n[ "$1 $3" = "exec env" ] && echo PATH=/bin\nexit 0',
    )

    def one_job() -> None:
        job = pod_module.JobPod(engine, tmp_path, say=lambda _: None)
        try:
            job.start(JOB_ONLY, writable=[], readable=[])
        finally:
            job.close()

    threads = [threading.Thread(target=one_job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    said = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert sum(line.startswith("pod create") for line in said) == 4
    assert sum(line.startswith("image exists") for line in said) == 4
    assert sum(line.startswith("pod rm") for line in said) == 4
    assert not [line for line in said if line.startswith("OVERLAP")], said


def test_a_held_engine_is_waited_for_then_refused(
    tmp_path: Path,
    stand_in: StandIn,
    hold_engine_lock: Callable[[], Callable[[], None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holds the engine past the timeout: the job is refused with a clear
    error and the engine is not called meanwhile."""
    engine = stand_in("exit 0")
    monkeypatch.setattr(containers, "ENGINE_TIMEOUT", 0.3)
    release = hold_engine_lock()
    job = pod_module.JobPod(engine, tmp_path, say=print)
    with pytest.raises(ContainerError, match="busy with another job"):
        job.start(JOB_ONLY, writable=[], readable=[])
    assert not (tmp_path / "calls").exists()
    release()
    job.close()
    assert (tmp_path / "calls").read_text(encoding="utf-8").startswith("pod stop")


def test_an_image_is_pulled_under_the_engine_lock(
    tmp_path: Path, stand_in: StandIn, engine_lock_file: Path
) -> None:
    """A pull writes the engine's store as a run does (podman deadlocked on pulls made beside
    other calls): it holds the lock, and the container is then run from the store."""
    engine = stand_in(
        f'case "$1" in image) exit 1;; pull) flock --nonblock {engine_lock_file} true && '
        f'echo "PULLED WITHOUT LOCK" >> {tmp_path / "calls"};; esac\n'
        '[ "$1 $3" = "exec env" ] && echo PATH=/bin\nexit 0',
    )
    job = pod_module.JobPod(engine, tmp_path, say=print)
    job.start(JOB_ONLY, writable=[], readable=[])
    job.close()
    said = (tmp_path / "calls").read_text(encoding="utf-8").splitlines()
    assert "pull --quiet localhost/any:1" in said and "PULLED WITHOUT LOCK" not in said
    run = next(line for line in said if line.startswith("run "))
    assert "--pull never" in run


@pytest.mark.parametrize("planted", ["symlink", "other owner"])
def test_a_planted_engine_lock_is_refused(
    tmp_path: Path, stand_in: StandIn, engine_lock_file: Path, planted: str
) -> None:
    """A lock file someone else put there (a link to a file of theirs, a file of another
    user) is not used: the job is refused and the file it points to is untouched."""
    engine = stand_in("exit 0")
    target = tmp_path / "victim"
    target.write_text("keep\n", encoding="utf-8")
    if planted == "symlink":
        engine_lock_file.symlink_to(target)
    else:
        if os.getuid() != 0:
            pytest.skip("only root can give a file to another user")
        engine_lock_file.write_text("", encoding="utf-8")
        os.chown(engine_lock_file, 65534, 65534)
    job = pod_module.JobPod(engine, tmp_path, say=print)
    with pytest.raises(ContainerError, match="engine's lock"):
        job.start(JOB_ONLY, writable=[], readable=[])
    assert target.read_text(encoding="utf-8") == "keep\n"
    assert not (tmp_path / "calls").exists()
