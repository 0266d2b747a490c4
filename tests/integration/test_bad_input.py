"""Bad input at every door, as whole sessions through the real Airflow, all at once: a workflow
file that does not parse, a repository deleted while its attempt runs and another while the
monitor waits on CI, a job log of several GB, a zip bomb in place of a run's log archive (through
the GitHub provider), a step that never ends and one that prints without end. Each session ends
closed with a clear reason in its report, and a healthy session opened at the same time is
fixed."""

from __future__ import annotations

import datetime
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import EXAMPLES
from cicd_devkit.scenarios import MaterializedScenario, materialize

from cicd_orchestrator.ci.local import store
from cicd_orchestrator.constants import Conclusion, Outcome, RepairKind, RunStatus, SessionStatus
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.session import session_id_for

pytestmark = pytest.mark.integration

HUGE_LOG_BYTES = 3 << 30  # what the analysis is handed for the huge log (a sparse file)
BOMB_BYTES = 2 << 30  # what the zip bomb's one member inflates to
OUTPUT_CAP = 2_000_000  # the local CI's cap on a step's output during this module
FOLLOW_TIMEOUT = 600
# per-session configuration (DAG run conf) of the sessions that nothing can repair: they end
# after one attempt (the escalation through the five strategies has its own tests); the
# sessions of the deleted repositories keep five attempts: they must end because the
# repository is gone, not for want of attempts
ONE_ATTEMPT = {"max_attempts": 1, "output_cap_bytes": OUTPUT_CAP}

WORKFLOW_GREEN = """\
name: CI
on: [push]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - name: Check
        run: echo fine
"""
WORKFLOW_UNPARSEABLE = """\
name: CI
on: [push]
jobs:
  check:
    runs-on: ubuntu-latest
    steps: [{name: Check, run: echo fine}
"""
# fails on the first run attempt like a mirror outage; a CI re-run of it takes its time (not a
# local validation run, whose ref is not main), long enough to delete the repository meanwhile
WORKFLOW_SLOW_RERUN = """\
name: CI
on: [push]
jobs:
  fetch:
    runs-on: ubuntu-latest
    steps:
      - name: Fetch price list
        run: |
          if [ "$GITHUB_RUN_ATTEMPT" = "1" ]; then
            echo "Downloading https://mirror.example.net/prices.csv"
            echo "curl: (56) Recv failure: Connection reset by peer" >&2
            exit 56
          fi
          if [ "$GITHUB_REF" = "refs/heads/main" ]; then sleep 45; fi
          echo "Downloaded prices.csv"
"""
WORKFLOW_ENDLESS = """\
name: CI
on: [push]
jobs:
  wait:
    runs-on: ubuntu-latest
    timeout-minutes: 0.05
    steps:
      - name: Wait for the service
        run: {command}
"""
WORKFLOW_NOISY = """\
name: CI
on: [push]
jobs:
  noisy:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - name: Print the report
        run: {command}
"""


@dataclass
class Door:
    name: str
    repo: str
    made: MaterializedScenario
    run_id: int
    provider: str = "local"
    config: dict[str, Any] = field(default_factory=dict)
    state: SessionState | None = None
    deleted_at: float | None = None  # wall clock (time.time) of the repository's deletion
    faults_fired: int = 0

    @property
    def session_id(self) -> str:
        # the head run's push: the head commit on main
        return session_id_for(self.provider, self.repo, self.made.head_sha, "main")


def write_scenario(root: Path, name: str, green: str, broken: str, category: str, job: str) -> Path:
    """A scenario folder: a green commit, then a commit that changes the workflow."""
    folder = root / name
    for commit, text in (("01-initial", green), ("02-change", broken)):
        workflows = folder / "commits" / commit / ".github" / "workflows"
        workflows.mkdir(parents=True)
        (workflows / "ci.yml").write_text(text, encoding="utf-8")
        (folder / "commits" / commit / ".scenario-message").write_text(f"{name}: {commit}")
    (folder / "scenario.yaml").write_text(
        f"name: {name}\nsummary: bad input\ncategory: {category}\n"
        f"failing_jobs: [{job!r}]\nexpect: {{outcome: failed}}\n",
        encoding="utf-8",
    )
    return folder


def zip_bomb(member: str, size: int) -> bytes:
    """A zip whose one member really inflates to ``size`` bytes of zeros: the same
    independent deflate block repeated (a thousandth of the size), built in a second."""
    block = 1 << 24
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = comp.compress(bytes(block)) + comp.flush(zlib.Z_FULL_FLUSH)
    data = piece * (size // block) + comp.flush()
    crc, zeros = 0, bytes(block)
    for _ in range(size // block):
        crc = zlib.crc32(zeros, crc)
    name = member.encode()
    sizes = (crc, len(data), size, len(name))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, *sizes, 0) + name
    central = (
        struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0, 0, 0)
        + name
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    return local + data + central + end


def _failed_head_run(env, made: MaterializedScenario, timeout: float = 300) -> int:
    """Wait for every CI run of the repository (the green history too); the head's run id."""
    for folder, _ in made.commits:
        for run_id in made.runs[folder]:
            run = env.provider.wait_for_run(made.repo, run_id, timeout=timeout)
    assert made.runs[made.commits[-1][0]], f"no CI run for the head of {made.repo}"
    assert run.conclusion in (Conclusion.FAILURE, Conclusion.TIMED_OUT), (made.repo, run)
    return run.id


def _log_path(env, repo: str, run_id: int) -> Path:
    """The raw log file of the failed job of a run in the local provider's store."""
    run = env.provider.get_run(repo, run_id)
    job = run.failed_jobs[0]
    return env.provider.root / "data" / repo / "logs" / f"{job.id}.log"


def _inflate(path: Path, size: int) -> None:
    """Make the log ``size`` bytes longer in front (a sparse hole: nothing is written)."""
    original = path.read_bytes()
    with open(path, "r+b") as fh:
        fh.seek(size)
        fh.write(original)


@pytest.fixture(scope="module")
def output_cap(airflow_env) -> Iterator[None]:
    """The local CI's cap on a step's output, lowered for this module (the provider's setting;
    what the cap does is the same at any size), then restored."""
    before = airflow_env.provider.config.get("output_cap_bytes")

    def put(value: int | None):
        def change(cfg: dict[str, Any]) -> None:
            if value is None:
                cfg.pop("output_cap_bytes", None)
            else:
                cfg["output_cap_bytes"] = value

        store.update_json(airflow_env.provider.config_path, change, default={}, mode=0o600)

    put(OUTPUT_CAP)
    try:
        yield
    finally:
        put(before)


def _prepare(airflow_env, github, tmp: Path) -> dict[str, Door]:
    env = airflow_env
    server, _ = github
    scenarios = {
        "workflow": write_scenario(
            tmp,
            "workflow",
            WORKFLOW_GREEN,
            WORKFLOW_UNPARSEABLE,
            "configuration",
            ".github/workflows/ci.yml",
        ),
        "vanish-ci": write_scenario(
            tmp, "vanish-ci", WORKFLOW_GREEN, WORKFLOW_SLOW_RERUN, "infrastructure", "fetch"
        ),
        "endless": write_scenario(
            tmp,
            "endless",
            WORKFLOW_ENDLESS.format(command="echo ready"),
            WORKFLOW_ENDLESS.format(command="sleep 100000"),
            "infrastructure",
            "wait",
        ),
        "noisy": write_scenario(
            tmp,
            "noisy",
            WORKFLOW_NOISY.format(command="echo done"),
            WORKFLOW_NOISY.format(command="yes"),
            "build",
            "noisy",
        ),
    }
    sources: dict[str, tuple[Path, str]] = {
        name: (folder, f"badinput/{name}") for name, folder in scenarios.items()
    }
    lint = EXAMPLES / "lint-failure"
    sources.update(
        {
            "vanish-attempt": (lint, "badinput/vanish-attempt"),
            "huge-log": (lint, "badinput/huge-log"),
            "zip-bomb": (lint, "octo/zip-bomb"),
            "healthy": (lint, "badinput/healthy"),
        }
    )
    # every commit is pushed at once: the CI runs of all repositories run concurrently
    made = {
        name: materialize(src, env.provider, repo, wait=False)
        for name, (src, repo) in sources.items()
    }
    doors = {name: Door(name, m.repo, m, _failed_head_run(env, m)) for name, m in made.items()}
    for name in ("workflow", "endless", "noisy", "zip-bomb"):
        doors[name].config = dict(ONE_ATTEMPT)
    doors["zip-bomb"].provider = "github"

    _inflate(_log_path(env, doors["huge-log"].repo, doors["huge-log"].run_id), HUGE_LOG_BYTES)
    bomb = doors["zip-bomb"]
    server.replace_run_logs(bomb.repo, bomb.run_id, zip_bomb("0_lint.txt", BOMB_BYTES))
    return doors


@pytest.fixture(scope="module")
def doors(airflow_env, github, output_cap, tmp_path_factory) -> Iterator[dict[str, Door]]:
    """Every door's session opened at once, followed until all are closed."""
    server, _ = github
    started = time.monotonic()
    doors = _prepare(airflow_env, github, tmp_path_factory.mktemp("bad-input"))
    # GitHub has no log for the job itself: the provider falls back to the run's archive
    missing_job_logs = server.inject(
        "error", count=200, path=r"/repos/octo/zip-bomb/actions/jobs/\d+/logs$", status=404
    )
    try:
        for door in doors.values():
            conf = {"repository": door.repo, "run_id": door.run_id, "provider": door.provider}
            if door.config:
                conf["config"] = door.config
            resp = airflow_env.client.trigger(sessions.FIRST_DAG, conf)
            assert resp.status_code in (200, 201), (door.name, resp.text)
        by_session = {d.session_id: d for d in doors.values()}

        def vanish(state: SessionState) -> None:
            door = by_session[state.session_id]
            if door.deleted_at is not None:
                return
            record = state.attempt_record(1)
            waiting_on_rerun = (
                state.status is SessionStatus.WAITING_FOR_CI
                and record is not None
                and record.published is not None
                and record.published.kind is RepairKind.RERUN
            )
            if door.name == "vanish-attempt" or (door.name == "vanish-ci" and waiting_on_rerun):
                airflow_env.provider.delete_repository(door.repo)
                door.deleted_at = time.time()

        final = sessions.follow(
            airflow_env.client, list(by_session), FOLLOW_TIMEOUT, on_change=vanish, poll=2
        )
        for sid, state in final.items():
            by_session[sid].state = state
        doors["zip-bomb"].faults_fired = missing_job_logs.fired
        print(f"bad-input sessions: {time.monotonic() - started:.0f}s")
        yield doors
    finally:
        missing_job_logs.count = 0
        server.state.run_archives.clear()


def _closed(door: Door, outcome: Outcome) -> SessionState:
    state = door.state
    assert state is not None, f"the {door.name} session was never created"
    assert state.status is SessionStatus.CLOSED, (door.name, sessions.describe(state), state.report)
    assert state.outcome is outcome, (door.name, state.report)
    assert state.end_time, door.name
    assert "Traceback" not in state.report, state.report
    return state


def test_a_workflow_file_that_does_not_parse(doors):
    state = _closed(doors["workflow"], Outcome.FAILED)
    failure = state.failures[0]
    assert failure.job == ".github/workflows/ci.yml"
    assert failure.pattern == "gha-invalid-workflow"
    assert "Invalid workflow file .github/workflows/ci.yml" in state.report
    assert "while parsing a flow sequence" in state.report  # the parser's own words
    assert "invalid workflow .github/workflows/ci.yml:7" in state.report  # file and line
    assert "fix the workflow file by hand" in state.report


def test_a_repository_deleted_while_its_attempt_runs(doors):
    door = doors["vanish-attempt"]
    assert door.deleted_at is not None
    state = _closed(door, Outcome.FAILED)
    assert state.current_attempt == 1  # not escalated: nothing is left to try
    assert any(
        e.startswith(f"{door.repo} is not found at the CI provider any more") for e in state.errors
    ), state.errors
    # the stage that met the missing repository said so, and was not retried
    assert any(
        e.startswith("attempt 1, task ") and "unknown repository" in e and "not retried" in e
        for e in state.errors
    ), state.errors
    assert "nothing is left to repair or to watch" in state.report
    assert "Nothing to do here: the repository or run is gone" in state.report


def test_a_repository_deleted_while_the_monitor_waits_on_ci(doors, airflow_env):
    door = doors["vanish-ci"]
    assert door.deleted_at is not None, "the session never waited on the CI re-run"
    state = _closed(door, Outcome.FAILED)
    assert state.current_attempt == 1
    record = state.attempt_record(1)
    assert record.published.kind is RepairKind.RERUN
    assert f"{door.repo} is not found at the CI provider any more" in state.report
    assert door.repo not in airflow_env.provider.repositories()
    # closed a few polls after the deletion, not when the CI watch would time out (an hour)
    ended = datetime.datetime.fromisoformat(state.end_time).timestamp()
    assert ended - door.deleted_at < 120, ended - door.deleted_at


def test_a_job_log_of_several_gigabytes(doors, airflow_env):
    door = doors["huge-log"]
    log_file = _log_path(airflow_env, door.repo, door.run_id)
    assert log_file.stat().st_size > HUGE_LOG_BYTES
    state = _closed(door, Outcome.FIXED)  # the error at the end of the log was found
    failure = state.failures[0]
    assert failure.pattern == "ruff-check"
    assert "the job's log is huge (3.0 GiB" in state.report
    assert "read once, streaming, in bounded memory" in state.report
    assert "log: 1 binary line(s) blanked" in state.report  # the hole is one line


def test_a_zip_bomb_in_place_of_the_log_archive(doors):
    door = doors["zip-bomb"]
    assert door.faults_fired >= 1  # the job's own log was missing: the archive was asked for
    state = _closed(door, Outcome.FAILED)
    failure = state.failures[0]
    assert failure.job == "lint"
    assert failure.message.startswith("the job's log could not be read: log of job")
    assert f"the log archive of run {door.run_id} was refused" in failure.message
    assert "inflates 1028x" in failure.message and "refusing a zip bomb" in failure.message
    assert "refusing a zip bomb" in state.report


def test_a_step_that_never_ends(doors, airflow_env):
    door = doors["endless"]
    run = airflow_env.provider.get_run(door.repo, door.run_id, attempt=1)
    assert run.jobs[0].conclusion is Conclusion.TIMED_OUT
    state = _closed(door, Outcome.FAILED)
    failure = state.failures[0]
    assert failure.pattern == "job-timeout"
    assert "The job timed out" in state.report
    assert "exceeded the maximum execution time of 0.05 minutes" in state.report
    rerun = state.attempt_record(1).published
    assert rerun.kind is RepairKind.RERUN  # re-run once in CI, timed out again: closed
    again = airflow_env.provider.get_run(door.repo, door.run_id, attempt=rerun.rerun_attempt)
    assert again.status is RunStatus.COMPLETED
    assert [j.conclusion for j in again.jobs] == [Conclusion.TIMED_OUT]


def test_a_step_that_prints_without_end(doors, airflow_env):
    door = doors["noisy"]
    log_file = _log_path(airflow_env, door.repo, door.run_id)
    assert log_file.stat().st_size < 40 * OUTPUT_CAP  # capped, timestamps included
    state = _closed(door, Outcome.FAILED)
    message = state.failures[0].message
    assert message.startswith(f"The step wrote more than {OUTPUT_CAP} bytes of output")
    assert "the rest was not recorded and the step was stopped" in state.report


def test_the_healthy_session_opened_alongside_is_fixed(doors, airflow_env):
    door = doors["healthy"]
    state = _closed(door, Outcome.FIXED)
    assert state.current_attempt == 1
    assert len(airflow_env.provider.list_pull_requests(door.repo)) == 1
    assert not state.errors
