"""The local job runner: real git checkouts and real processes."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import runner_tools, sandbox
from cicd_orchestrator.actions.results import JobExecution, run_conclusion
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.actions.step_process import parse_env_file
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import ConfigError, WorkflowError
from cicd_orchestrator.git import git
from cicd_orchestrator.process import scrubbed_env

RunFn = Callable[..., list[JobExecution]]
WORKFLOW = ".github/workflows/ci.yml"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")


def by_name(executions: list[JobExecution]) -> dict[str, JobExecution]:
    return {e.name: e for e in executions}


def log_of(execution: JobExecution) -> str:
    return execution.read_log()


def lines_of(execution: JobExecution) -> list[str]:
    return [STAMP.sub("", line) for line in log_of(execution).splitlines()]


def test_scrubbed_env_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_parent")
    env = scrubbed_env({"FOO": "bar"}, tool_path=["/opt/tools"], home="/h", tmpdir="/t")
    assert env["PATH"].split(":") == ["/opt/tools", "/usr/local/bin", "/usr/bin", "/bin"]
    assert env["HOME"] == "/h" and env["TMPDIR"] == "/t" and env["FOO"] == "bar"
    assert env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert "GITHUB_TOKEN" not in env
    default = scrubbed_env()
    # the runner tool folder first; the orchestrator's own interpreter never
    assert default["PATH"].split(":")[0] == runner_tools.bin_dirs()[0]
    assert os.path.dirname(sys.executable) not in default["PATH"].split(":")
    assert set(default) <= {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONUNBUFFERED"}


def test_steps_see_no_credential_of_the_caller(
    run_workflow: RunFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_leak_me")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://u:pw@db/airflow")
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    wf = """
    on: push
    jobs:
      env:
        steps:
          - run: |
              env | sort
              test -z "${GITHUB_TOKEN:-}"
              test -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}"
              test -z "${DB_PASSWORD:-}"
              python -c "import os, sys; sys.exit(any('leak' in v for v in os.environ.values()))"
    """
    (job,) = run_workflow(wf)
    text = log_of(job)
    assert job.conclusion is Conclusion.SUCCESS, text
    output = text.split("##[endgroup]")[-1]  # what the step printed (its env dump)
    assert "PATH=" in output and "GITHUB_SHA=" in output
    assert "ghp_leak_me" not in output and "hunter2" not in output and "AIRFLOW__" not in output
    assert "GITHUB_TOKEN" not in output and "DB_PASSWORD" not in output


def test_github_variables_and_tools(run_workflow: RunFn, git_repo: Any) -> None:
    wf = """
    on: push
    jobs:
      vars:
        steps:
          - run: |
              echo "sha=$GITHUB_SHA ref=$GITHUB_REF name=$GITHUB_REF_NAME"
              echo "run=$GITHUB_RUN_ID num=$GITHUB_RUN_NUMBER attempt=$GITHUB_RUN_ATTEMPT"
              echo "repo=$GITHUB_REPOSITORY job=$GITHUB_JOB event=$GITHUB_EVENT_NAME"
              echo "ci=$CI actions=$GITHUB_ACTIONS os=$RUNNER_OS"
              test "$PWD" = "$GITHUB_WORKSPACE"
              test -f README.md
              test -d "$RUNNER_TEMP" && test ! -e "$RUNNER_TEMP/marker"
              touch "$RUNNER_TEMP/marker"
              test -w "$HOME"
              test "$(command -v python)" = "TOOLS/python"
              python -m pytest --version
              ruff --version
              echo "expr=${{ github.sha }} ${{ github.run_attempt }} ${{ runner.os }}"
      fresh-temp:
        needs: vars
        steps:
          - run: test ! -e "$RUNNER_TEMP/marker" && test "$RUNNER_TEMP" = "${{ runner.temp }}"
    """.replace("TOOLS", runner_tools.bin_dirs()[0])
    job, fresh = run_workflow(wf, {"README.md": "hi\n"}, run_attempt=2)
    assert fresh.conclusion is Conclusion.SUCCESS, log_of(fresh)
    text = "\n".join(lines_of(job))
    assert job.conclusion is Conclusion.SUCCESS, text
    sha = git_repo.head()
    assert f"sha={sha} ref=refs/heads/main name=main" in text
    assert "run=7 num=3 attempt=2" in text
    assert "repo=acme/widgets job=vars event=push" in text
    assert "ci=true actions=true os=Linux" in text
    assert f"expr={sha} 2 Linux" in text


def test_raw_log_format(run_workflow: RunFn) -> None:
    wf = """
    name: CI
    on: push
    env:
      LEVEL: ${{ github.ref_name }}
    jobs:
      build:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version: "3.11"
          - name: Compile
            run: |
              echo compiling
              echo oops >&2
              exit 3
    """
    (job,) = run_workflow(wf)
    raw = log_of(job).splitlines()
    assert raw and all(STAMP.match(line) for line in raw)
    lines = lines_of(job)
    assert lines[0] == "##[group]Set up job"
    i = lines.index("##[group]Run echo compiling")
    assert lines[i + 1 : i + 4] == ["echo compiling", "echo oops >&2", "exit 3"]
    assert lines[i + 4].startswith("shell: ") and lines[i + 4].endswith(
        "bash --noprofile --norc -eo pipefail {0}"
    )
    # the variables setup-python exported come after the workflow's, as on GitHub
    end = lines.index("##[endgroup]", i)
    assert lines[i + 5 : i + 7] == ["env:", "  LEVEL: main"]
    assert "  pythonLocation: " in "\n".join(lines[i + 7 : end])
    assert lines[end + 1 : end + 4] == [
        "compiling",
        "oops",
        "##[error]Process completed with exit code 3.",
    ]
    assert lines[-2:] == ["Post job cleanup.", "Cleaning up orphan processes"]
    assert "##[group]Run actions/setup-python@v5" in lines
    assert any(line.startswith("Successfully set up CPython (3.11.") for line in lines)
    assert job.conclusion is Conclusion.FAILURE
    names = [(s.name, s.conclusion) for s in job.steps]
    assert names == [
        ("Set up job", Conclusion.SUCCESS),
        ("Run actions/setup-python@v5", Conclusion.SUCCESS),
        ("Compile", Conclusion.FAILURE),
        ("Complete job", Conclusion.SUCCESS),
    ]
    assert job.log_path.endswith(f"{job.job_id}.log") and job.started_at and job.completed_at


def test_env_files_outputs_and_needs(run_workflow: RunFn) -> None:
    wf = """
    on: push
    env:
      WF: w
    jobs:
      produce:
        env:
          JOB: j
        outputs:
          answer: ${{ steps.calc.outputs.answer }}
        steps:
          - id: calc
            run: |
              echo "answer=42" >> "$GITHUB_OUTPUT"
              { echo "MULTI<<EOF"; echo "line one"; echo "line two"; echo "EOF"; } >> "$GITHUB_ENV"
              echo "FROM_ENV=yes" >> "$GITHUB_ENV"
              mkdir -p "$RUNNER_TEMP/bin"
              printf '#!/bin/sh\\necho mytool\\n' > "$RUNNER_TEMP/bin/mytool"
              chmod +x "$RUNNER_TEMP/bin/mytool" && echo "$RUNNER_TEMP/bin" >> "$GITHUB_PATH"
              echo "# summary" >> "$GITHUB_STEP_SUMMARY"
          - env:
              STEP: s
            run: |
              test "$WF$JOB$STEP" = "wjs"
              test "$FROM_ENV" = yes
              test "$MULTI" = "$(printf 'line one\\nline two')"
              test "$(mytool)" = mytool
              test "${{ steps.calc.outputs.answer }}" = 42
              test "${{ env.FROM_ENV }}" = yes
      consume:
        needs: produce
        steps:
          - run: |
              test "${{ needs.produce.outputs.answer }}" = 42
              test "${{ needs.produce.result }}" = success
    """
    jobs = by_name(run_workflow(wf))
    for job in jobs.values():
        assert job.conclusion is Conclusion.SUCCESS, log_of(job)
    assert jobs["produce"].outputs == {"answer": "42"}


def test_parse_env_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("A=1\nB<<X\nx\ny\nX\nC=a=b\n")
    assert parse_env_file(path) == {"A": "1", "B": "x\ny", "C": "a=b"}
    assert parse_env_file(tmp_path / "missing") == {}


def test_needs_if_and_continue_on_error(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      broken:
        steps:
          - run: exit 1
      flaky-allowed:
        continue-on-error: true
        steps:
          - run: exit 1
      dependent:
        needs: broken
        steps:
          - run: echo never
      transitive:
        needs: dependent
        steps:
          - run: echo never
      report:
        needs: [transitive]
        if: failure()
        steps:
          - run: echo reporting
      cleanup:
        needs: broken
        if: ${{ always() }}
        steps:
          - run: echo "result=${{ needs.broken.result }}"
      steps:
        steps:
          - id: soft
            run: exit 4
            continue-on-error: true
          - run: |
              test "${{ steps.soft.outcome }}" = failure
              test "${{ steps.soft.conclusion }}" = success
          - run: exit 2
          - run: echo skipped-after-failure
          - if: failure()
            run: echo on-failure
          - if: always()
            run: echo always
          - if: github.ref == 'refs/heads/main'
            run: echo implicit-success-is-false
    """
    executions = run_workflow(wf)
    jobs = by_name(executions)
    got = {name: job.conclusion for name, job in jobs.items()}
    assert got == {
        "broken": Conclusion.FAILURE,
        "flaky-allowed": Conclusion.FAILURE,
        "dependent": Conclusion.SKIPPED,
        "transitive": Conclusion.SKIPPED,
        "report": Conclusion.SUCCESS,
        "cleanup": Conclusion.SUCCESS,
        "steps": Conclusion.FAILURE,
    }
    assert jobs["flaky-allowed"].continue_on_error and jobs["flaky-allowed"].ok
    assert "result=failure" in log_of(jobs["cleanup"])
    steps = [(s.name, s.conclusion) for s in jobs["steps"].steps][1:-1]
    assert [c for _, c in steps] == [
        Conclusion.SUCCESS,  # continue-on-error
        Conclusion.SUCCESS,
        Conclusion.FAILURE,
        Conclusion.SKIPPED,
        Conclusion.SUCCESS,
        Conclusion.SUCCESS,
        Conclusion.SKIPPED,
    ]
    assert run_conclusion(executions) is Conclusion.FAILURE
    assert run_conclusion([jobs["flaky-allowed"], jobs["cleanup"]]) is Conclusion.SUCCESS


def test_step_timeout_kills_the_process_group(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      slow:
        steps:
          - timeout-minutes: 0.02
            run: |
              sleep 30 &
              echo started
              sleep 30
          - if: always()
            run: echo next-step-runs
    """
    start = time.monotonic()
    (job,) = run_workflow(wf)
    assert time.monotonic() - start < 15
    lines = lines_of(job)
    assert job.conclusion is Conclusion.FAILURE
    assert "##[error]The action has timed out." in lines and "next-step-runs" in lines
    assert job.steps[1].conclusion is Conclusion.FAILURE


def test_job_timeout_gives_timed_out(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      slow:
        timeout-minutes: 0.02
        steps:
          - run: sleep 30
          - run: echo never
    """
    start = time.monotonic()
    (job,) = run_workflow(wf)
    assert time.monotonic() - start < 15
    assert job.conclusion is Conclusion.TIMED_OUT
    text = log_of(job)
    assert "has exceeded the maximum execution time of 0.02 minutes" in text
    assert "never" not in text.split("##[endgroup]")[-1]
    assert job.steps[2].conclusion is Conclusion.SKIPPED


def test_output_cap_stops_the_step(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      noisy:
        steps:
          - run: while true; do echo 0123456789012345678901234567890123456789; done
    """
    (job,) = run_workflow(wf, runner=JobRunner(output_cap_bytes=50_000))
    assert job.conclusion is Conclusion.FAILURE
    assert os.path.getsize(job.log_path) < 400_000
    assert any(
        line.startswith("##[error]The step wrote more than 50000 bytes") for line in lines_of(job)
    )


def test_a_step_printing_short_lines_without_end_is_stopped_at_the_cap(
    run_workflow: RunFn,
) -> None:
    """``yes`` writes two bytes a line: the cap counts the log as written (each line carries
    a timestamp), so the log stays near the cap and the step ends at once."""
    wf = """
    on: push
    jobs:
      noisy:
        steps:
          - run: yes
    """
    started = time.monotonic()
    (job,) = run_workflow(wf, runner=JobRunner(output_cap_bytes=1_000_000))
    assert time.monotonic() - started < 30
    assert job.conclusion is Conclusion.FAILURE
    assert os.path.getsize(job.log_path) < 1_000_000 + 2_500_000
    assert any(line.startswith("##[error]The step wrote more than") for line in lines_of(job))


def test_matrix_jobs_and_fail_fast(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      test:
        strategy:
          matrix:
            n: [1, 2]
            kind: [a]
            include:
              - n: 2
                extra: x
        steps:
          - run: echo "n=${{ matrix.n }} kind=${{ matrix.kind }} extra=${{ matrix.extra }}"
      after:
        needs: test
        steps:
          - run: echo done
    """
    jobs = by_name(run_workflow(wf))
    assert list(jobs) == ["test (1, a)", "test (2, a)", "after"]
    assert "n=2 kind=a extra=x" in log_of(jobs["test (2, a)"])
    assert jobs["test (1, a)"].matrix == {"n": 1, "kind": "a"}
    assert all(j.conclusion is Conclusion.SUCCESS for j in jobs.values())
    failing = """
    on: push
    jobs:
      test:
        strategy:
          max-parallel: 1
          matrix:
            n: [1, 2, 3]
        steps:
          - run: test ${{ matrix.n }} -ne 1 && sleep 0.5
    """
    runner = JobRunner(max_parallel_jobs=1)
    results = [j.conclusion for j in run_workflow(failing, runner=runner, run_id=8)]
    assert results == [Conclusion.FAILURE, Conclusion.CANCELLED, Conclusion.CANCELLED]


def test_jobs_run_in_parallel(
    run_workflow: RunFn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the two jobs meet through a file of the host, which no sandboxed job sees: this test of
    # the scheduler runs them plainly
    monkeypatch.setenv(sandbox.ENV_VAR, "off")
    flag = tmp_path / "flag"
    wf = f"""
    on: push
    jobs:
      waiter:
        steps:
          - run: for i in $(seq 200); do test -f {flag} && exit 0; sleep 0.05; done; exit 1
      signaller:
        steps:
          - run: touch {flag}
    """
    jobs = by_name(run_workflow(wf))
    assert jobs["waiter"].conclusion is Conclusion.SUCCESS


def test_subset_previous_and_ids(run_workflow: RunFn, git_repo: Any, tmp_path: Path) -> None:
    wf = """
    on: push
    jobs:
      build:
        steps:
          - run: exit 1
      test:
        needs: build
        steps:
          - run: echo "build was ${{ needs.build.result }}"
      lint:
        steps:
          - run: echo lint
    """
    ids = iter(range(100, 200))
    first = run_workflow(wf, allocate_job_id=lambda: next(ids))
    assert [j.job_id for j in first] == [100, 101, 102]
    # validation-style: only `test`; its need outside the set counts as succeeded
    (only,) = JobRunner().run_workflow(
        git_repo.path,
        git_repo.head(),
        WORKFLOW,
        ref="refs/heads/main",
        repository="acme/widgets",
        run_id=9,
        run_number=1,
        run_attempt=1,
        jobs={"test"},
        log_dir=tmp_path / "logs2",
    )
    assert only.name == "test" and only.conclusion is Conclusion.SUCCESS
    assert "build was success" in log_of(only)
    # re-run style: execute build and test, carry lint over from the previous attempt
    previous = {j.name: j for j in first}
    again = JobRunner().run_workflow(
        git_repo.path,
        git_repo.head(),
        WORKFLOW,
        ref="refs/heads/main",
        repository="acme/widgets",
        run_id=7,
        run_number=3,
        run_attempt=2,
        jobs={"build", "test"},
        previous=previous,
        log_dir=tmp_path / "logs",
        allocate_job_id=lambda: next(ids),
    )
    got = {j.name: (j.job_id, j.conclusion, j.executed) for j in again}
    assert got == {
        "build": (103, Conclusion.FAILURE, True),
        "test": (104, Conclusion.SKIPPED, True),
        "lint": (102, Conclusion.SUCCESS, False),
    }


def test_bare_repository_and_local_only_commit(make_git_repo: Any, tmp_path: Path) -> None:
    wf = "on: push\njobs:\n  a:\n    steps:\n      - run: cat marker.txt\n"
    work = make_git_repo("work")
    work.commit({WORKFLOW: wf, "marker.txt": "one\n"}, "initial")
    repo = work.path
    work.git("checkout", "-q", "--detach")
    detached = work.commit({"marker.txt": "detached-only\n"}, "not on any branch")
    work.git("checkout", "-q", "main")
    runner = JobRunner()
    common = {"ref": "refs/heads/main", "repository": "o/r", "run_id": 1, "run_number": 1}
    (job,) = runner.run_workflow(
        repo, detached, WORKFLOW, run_attempt=1, log_dir=tmp_path / "l1", **common
    )
    assert job.conclusion is Conclusion.SUCCESS and "detached-only" in log_of(job)
    bare = tmp_path / "bare.git"
    git(["clone", "-q", "--bare", str(repo), str(bare)], tmp_path)
    sha = git(["rev-parse", "main"], bare).strip()
    (job,) = runner.run_workflow(
        bare, sha, WORKFLOW, run_attempt=1, log_dir=tmp_path / "l2", **common
    )
    assert job.conclusion is Conclusion.SUCCESS and "one" in lines_of(job)


def test_secrets_masked_and_unknown_secret_empty(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      deploy:
        steps:
          - env:
              TOKEN: ${{ secrets.DEPLOY_TOKEN }}
              OTHER: ${{ secrets.NOT_CONFIGURED }}
            run: |
              echo "token is $TOKEN"
              test -z "$OTHER"
              echo "::add-mask::runtime-value"
              echo "runtime-value appears"
              echo "::error title=Boom::something broke"
    """
    (job,) = run_workflow(wf, runner=JobRunner(secrets={"DEPLOY_TOKEN": "tok-123456"}))
    text = log_of(job)
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "tok-123456" not in text and "token is ***" in text
    output = text.split("##[endgroup]")[-1]
    assert "runtime-value" not in output and "*** appears" in output
    assert "##[error]something broke" in text


def test_working_directory_and_shells(run_workflow: RunFn) -> None:
    wf = """
    on: push
    defaults:
      run:
        working-directory: app
    jobs:
      a:
        steps:
          - run: test "$(basename "$PWD")" = app
          - working-directory: app/sub
            run: test "$(basename "$PWD")" = sub
          - shell: python
            run: |
              import os
              print("python says", os.getcwd().endswith("app"))
          - shell: sh
            run: echo from-sh
          - working-directory: missing
            run: echo never
    """
    (job,) = run_workflow(wf, {"app/sub/x.txt": "x"})
    lines = lines_of(job)
    assert "python says True" in lines and "from-sh" in lines
    assert [s.conclusion for s in job.steps][1:-1] == [Conclusion.SUCCESS] * 4 + [
        Conclusion.FAILURE
    ]
    assert any("working directory" in line and "does not exist" in line for line in lines)


def test_invalid_workflow_raises(run_workflow: RunFn) -> None:
    with pytest.raises(WorkflowError, match=r"ci.yml#L4: while parsing"):
        run_workflow("on: push\njobs:\n  a: [\n")


# --------------------------------------------------------------------------- deployment settings
def test_job_env_and_read_only_folders_reach_every_step(
    run_workflow: RunFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "index.txt").write_text("mirror content\n")
    monkeypatch.setenv(
        "CICD_JOB_ENV", '{"PIP_INDEX_URL": "file:///mirror/simple", "npm_config_registry": "x"}'
    )
    monkeypatch.setenv("CICD_JOB_READ_ONLY", str(mirror))
    wf = f"""
    on: push
    env:
      npm_config_registry: from-workflow
    jobs:
      see:
        steps:
          - run: |
              test "$PIP_INDEX_URL" = file:///mirror/simple
              test "$npm_config_registry" = from-workflow
              grep -q "mirror content" {mirror}/index.txt
              ! touch {mirror}/written
    """
    (job,) = run_workflow(wf)
    assert job.conclusion is Conclusion.SUCCESS, log_of(job)
    assert not (mirror / "written").exists()
    monkeypatch.delenv("CICD_JOB_READ_ONLY")
    (without,) = run_workflow(wf)  # without the setting the folder is not there
    assert without.conclusion is Conclusion.FAILURE


@pytest.mark.parametrize(
    "value",
    [
        '{"PATH": "/evil"}',
        '{"HOME": "/root"}',
        '{"LD_PRELOAD": "/x.so"}',
        '{"PYTHONPATH": "/x"}',
        '{"BASH_ENV": "/x"}',
        '{"ENV": "/x"}',
        '{"GIT_SSH_COMMAND": "sh"}',
        '{"https_proxy": "http://evil:3128"}',
        '{"HTTP_PROXY": "http://evil:3128"}',
        '{"GITHUB_TOKEN": "x"}',
        '{"bad name": "x"}',
        '{"OK": ["not", "a", "string"]}',
        '["PIP_INDEX_URL"]',
        "{not json",
    ],
)
def test_refused_job_env(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CICD_JOB_ENV", value)
    with pytest.raises(ConfigError, match="CICD_JOB_ENV"):
        JobRunner()


def test_refused_read_only_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    airflow_home = tmp_path / "deploy" / "airflow"
    airflow_home.mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW_HOME", str(airflow_home))
    refused = ["/", "relative/path", str(tmp_path / "missing"), str(airflow_home)]
    refused += [str(tmp_path / "deploy"), str(airflow_home.parent.parent)]
    own = runner_tools.orchestrator_environment() or sys.prefix
    refused += [own, os.path.dirname(own), os.path.join(own, "lib")]
    for folder in refused:
        monkeypatch.setenv("CICD_JOB_READ_ONLY", folder)
        with pytest.raises(ConfigError, match="CICD_JOB_READ_ONLY"):
            JobRunner()
        with pytest.raises(ConfigError, match="CICD_JOB_READ_ONLY"):
            JobRunner(job_read_only=[folder])
    fine = tmp_path / "wheels"
    fine.mkdir()
    monkeypatch.setenv("CICD_JOB_READ_ONLY", os.pathsep.join([str(fine), str(fine)]))
    assert JobRunner().job_read_only == [str(fine), str(fine)]


def _mirror_package() -> str | None:
    """A small pure-python package the machine's mirror folders hold."""
    for name in ("six", "iniconfig", "idna", "packaging"):
        if Path("/opt/pypi/simple", name).is_dir():
            return name
    return None


def test_setup_python_then_pip_install_from_the_deployments_mirror(
    run_workflow: RunFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _mirror_package()
    if package is None or not Path("/opt/wheels").is_dir():
        pytest.skip("no package mirror in /opt/pypi/simple and /opt/wheels on this machine")
    monkeypatch.setenv(
        "CICD_JOB_ENV",
        '{"PIP_INDEX_URL": "file:///opt/pypi/simple", "PIP_FIND_LINKS": "/opt/wheels"}',
    )
    monkeypatch.setenv("CICD_JOB_READ_ONLY", os.pathsep.join(["/opt/pypi", "/opt/wheels"]))
    wf = f"""
    on: push
    jobs:
      install:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version: "3.x"
          - run: |
              pip install {package}
              python -c "import {package}, sys; print({package}.__file__)"
              python -c "import {package}; assert {package}.__file__.startswith('$pythonLocation')"
    """
    (job,) = run_workflow(wf)
    assert job.conclusion is Conclusion.SUCCESS, log_of(job)
    assert f"Successfully installed {package}" in log_of(job)
