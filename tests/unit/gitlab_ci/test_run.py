"""Replaying GitLab CI jobs: shells, variables, job log, when/needs/allow_failure, rules."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest

from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.gitlab_ci.engine import script_text, service_names

Run = Callable[..., dict[str, JobExecution]]

PYTHON_PROJECT = """
stages: [lint, test]

variables:
  APP_ENV: ci
  REPORT_DIR: "$CI_PROJECT_DIR/reports"

default:
  image: python:3.12-slim
  before_script:
    - export GREETING="from before_script"

check-version:
  stage: lint
  script:
    - echo "$GREETING"
    - python3 -c "import version; assert version.V < 3, version.V"

unit:
  stage: test
  script:
    - mkdir -p "$REPORT_DIR" && echo ok > "$REPORT_DIR/out.txt"
    - echo "env=$APP_ENV dir=$REPORT_DIR"
  after_script:
    - echo "after saw [$GREETING] status=$CI_JOB_STATUS"
"""


@pytest.mark.usefixtures("no_container_engine")
def test_a_passing_and_a_failing_job(run_gitlab: Run) -> None:
    jobs = run_gitlab(PYTHON_PROJECT, {"version.py": "V = 5\n"})
    check = jobs["check-version"]
    assert check.conclusion is Conclusion.FAILURE
    text = check.read_log()
    assert '$ echo "$GREETING"' in text
    assert "from before_script" in text  # before_script and script share one shell
    assert "AssertionError: 5" in text
    assert text.rstrip().endswith("ERROR: Job failed: exit code 1")
    raw = open(check.log_path, "rb").read()  # noqa: SIM115 - read_log turns \r into \n
    assert re.search(rb"section_start:\d+:step_script\r\x1b\[0K", raw)
    assert re.search(rb"section_end:\d+:step_script\r\x1b\[0K", raw)
    unit = jobs["unit"]
    assert unit.conclusion is Conclusion.SKIPPED  # an earlier stage failed
    assert "Job skipped: an earlier job failed" in unit.read_log()


@pytest.mark.usefixtures("no_container_engine")
def test_script_variables_and_after_script(run_gitlab: Run) -> None:
    jobs = run_gitlab(PYTHON_PROJECT, {"version.py": "V = 1\n"})
    assert jobs["check-version"].conclusion is Conclusion.SUCCESS
    unit = jobs["unit"]
    assert unit.conclusion is Conclusion.SUCCESS
    text = unit.read_log()
    assert re.search(r"env=ci dir=/\S+/builds/widgets/widgets/reports", text)
    assert "after saw [] status=success" in text  # a shell of its own
    assert text.rstrip().endswith("Job succeeded")
    assert unit.needs == ["check-version"]
    assert "WARNING: image python:3.12-slim is not used" in text


def test_a_failing_command_stops_the_script_and_pipefail_holds(run_gitlab: Run) -> None:
    config = """
job:
  script:
    - echo one
    - "false | cat"
    - echo never-printed
"""
    job = run_gitlab(config)["job"]
    assert job.conclusion is Conclusion.FAILURE
    text = job.read_log()
    assert "one" in text and "never-printed" not in text.replace("$ echo never-printed", "")


def test_after_script_failure_does_not_fail_the_job(run_gitlab: Run) -> None:
    config = """
job:
  script: [exit 4]
  after_script:
    - echo "status=$CI_JOB_STATUS"
    - exit 9
"""
    job = run_gitlab(config)["job"]
    text = job.read_log()
    assert "status=failed" in text
    assert "WARNING: after_script failed, but job will continue unaffected: exit code 9" in text
    assert text.rstrip().endswith("ERROR: Job failed: exit code 4")
    ok = run_gitlab("job:\n  script: ['true']\n  after_script: [exit 9]\n")["job"]
    assert ok.conclusion is Conclusion.SUCCESS


def test_predefined_variables(run_gitlab: Run) -> None:
    names = [
        "CI",
        "GITLAB_CI",
        "CI_COMMIT_SHA",
        "CI_COMMIT_REF_NAME",
        "CI_COMMIT_BRANCH",
        "CI_PROJECT_DIR",
        "CI_JOB_NAME",
        "CI_JOB_STAGE",
        "CI_PIPELINE_SOURCE",
        "CI_PROJECT_PATH",
        "CI_DEFAULT_BRANCH",
        "CI_JOB_ID",
    ]
    script = "\n".join(f'    - echo "{n}=${n}"' for n in names)
    job = run_gitlab(f"stages: [check]\nshow vars:\n  stage: check\n  script:\n{script}\n")[
        "show vars"
    ]
    text = job.read_log()
    assert "CI=true" in text and "GITLAB_CI=true" in text
    assert re.search(r"CI_COMMIT_SHA=[0-9a-f]{40}", text)
    assert "CI_COMMIT_REF_NAME=main" in text and "CI_COMMIT_BRANCH=main" in text
    assert "CI_JOB_NAME=show vars" in text and "CI_JOB_STAGE=check" in text
    assert "CI_PIPELINE_SOURCE=push" in text and "CI_PROJECT_PATH=acme/widgets" in text
    assert "CI_DEFAULT_BRANCH=main" in text
    assert f"CI_JOB_ID={job.job_id}" in text
    assert re.search(r"CI_PROJECT_DIR=/\S+/widgets", text)


def test_the_orchestrators_environment_does_not_reach_a_job(
    run_gitlab: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CICD_TEST_LEAK", "leaked-value")
    job = run_gitlab("job:\n  script: ['echo \"leak=[${CICD_TEST_LEAK:-}]\"']\n")["job"]
    assert "leak=[]" in job.read_log()


def test_secrets_are_project_variables_and_masked(run_gitlab: Run) -> None:
    runner = JobRunner(secrets={"DEPLOY_TOKEN": "s3cr3t-value"})
    job = run_gitlab("job:\n  script: ['echo \"token=$DEPLOY_TOKEN\"']\n", runner=runner)["job"]
    text = job.read_log()
    assert "token=***" in text and "s3cr3t-value" not in text


def test_when_always_on_failure_manual_and_allow_failure(run_gitlab: Run) -> None:
    config = """
stages: [build, test, report]
flaky:
  stage: build
  script: [exit 2]
  allow_failure: true
broken:
  stage: test
  script: [exit 3]
after-broken:
  stage: report
  script: [echo on-success]
cleanup:
  stage: report
  when: always
  script: [echo always]
notify:
  stage: report
  when: on_failure
  script: [echo notify]
release:
  stage: report
  when: manual
  script: [echo manual]
"""
    jobs = run_gitlab(config)
    assert jobs["flaky"].conclusion is Conclusion.FAILURE and jobs["flaky"].continue_on_error
    assert jobs["broken"].conclusion is Conclusion.FAILURE
    assert jobs["after-broken"].conclusion is Conclusion.SKIPPED
    assert jobs["cleanup"].conclusion is Conclusion.SUCCESS
    assert jobs["notify"].conclusion is Conclusion.SUCCESS
    assert jobs["release"].conclusion is Conclusion.SKIPPED
    assert "a manual job is not started" in jobs["release"].read_log()


def test_allow_failure_exit_codes(run_gitlab: Run) -> None:
    config = """
a:
  script: [exit 3]
  allow_failure: {exit_codes: [3]}
b:
  script: [exit 4]
  allow_failure: {exit_codes: [3]}
"""
    jobs = run_gitlab(config)
    assert jobs["a"].continue_on_error and jobs["a"].ok
    assert not jobs["b"].continue_on_error and not jobs["b"].ok


def test_needs_runs_out_of_stage_order(run_gitlab: Run) -> None:
    config = """
stages: [build, test]
slow-build:
  stage: build
  script: [exit 1]
lint:
  stage: test
  needs: []
  script: [echo lint]
unit:
  stage: test
  needs: [slow-build]
  script: [echo unit]
"""
    jobs = run_gitlab(config)
    assert list(jobs) == ["slow-build", "lint", "unit"]
    assert jobs["lint"].conclusion is Conclusion.SUCCESS
    assert jobs["unit"].conclusion is Conclusion.SKIPPED


def test_rules_decide_the_pipeline_and_selected_jobs_run_anyway(run_gitlab: Run) -> None:
    config = """
deploy:
  rules:
    - if: $CI_COMMIT_BRANCH == "production"
  script: [echo deploying]
test:
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      when: never
    - if: $CI_COMMIT_BRANCH
      variables: {LEVEL: full}
  script: ['echo "level=$LEVEL"']
"""
    jobs = run_gitlab(config)
    assert list(jobs) == ["test"]
    assert "level=full" in jobs["test"].read_log()
    chosen = run_gitlab(config, jobs={"deploy"})
    assert chosen["deploy"].conclusion is Conclusion.SUCCESS
    assert (
        "NOTE: its rules leave it out on main; it is replayed because it was asked for by name"
        in chosen["deploy"].read_log()
    )
    with pytest.raises(WorkflowError, match="no job named ghost"):
        run_gitlab(config, jobs={"ghost"})


def test_selection_runs_only_the_named_jobs(run_gitlab: Run) -> None:
    config = """
stages: [build, test]
b:
  stage: build
  script: [exit 1]
t:
  stage: test
  script: [echo t]
"""
    jobs = run_gitlab(config, jobs={"t"})
    assert list(jobs) == ["t"]
    assert jobs["t"].conclusion is Conclusion.SUCCESS  # a need outside the set counts as passed


def test_parallel_instances_get_their_index(run_gitlab: Run) -> None:
    config = """
test:
  parallel:
    matrix:
      - PY: ["3.11", "3.12"]
  script: ['echo "py=$PY node=$CI_NODE_INDEX/$CI_NODE_TOTAL"', 'test "$PY" = 3.12']
"""
    jobs = run_gitlab(config)
    assert jobs["test: [3.11]"].conclusion is Conclusion.FAILURE
    assert "py=3.11 node=1/2" in jobs["test: [3.11]"].read_log()
    assert jobs["test: [3.12]"].conclusion is Conclusion.SUCCESS


def test_a_trigger_job_is_not_replayable(run_gitlab: Run) -> None:
    job = run_gitlab("child:\n  trigger: {include: child.yml}\n")["child"]
    assert job.conclusion is Conclusion.NEUTRAL
    assert job.not_replayable == "a trigger job starts another pipeline"
    assert "cannot replay locally: a trigger job starts another pipeline" in job.read_log()


def test_a_job_timeout_fails_the_job(run_gitlab: Run) -> None:
    job = run_gitlab("slow:\n  timeout: 1s\n  script: [sleep 20]\n")["slow"]
    assert job.conclusion is Conclusion.TIMED_OUT
    assert "ERROR: Job failed: execution took longer than 1 seconds" in job.read_log()


def test_workflow_rules_can_leave_the_pipeline_out(run_gitlab: Run) -> None:
    config = "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\njob:\n  script: [echo x]\n"
    assert run_gitlab(config) == {}
    assert run_gitlab(config, jobs={"job"})["job"].conclusion is Conclusion.SUCCESS


def test_local_include_from_the_commit(run_gitlab: Run) -> None:
    files = {"ci/test.yml": "unit:\n  script: [cat marker.txt]\n", "marker.txt": "marked\n"}
    jobs = run_gitlab("include:\n  - local: /ci/test.yml\n", files)
    assert "marked" in jobs["unit"].read_log()


def test_script_text_echoes_each_command() -> None:
    text = script_text(["echo a", "if true; then\n  echo b\nfi"], bash=True)
    assert text.startswith("set -eo pipefail\n")
    assert "printf '%s\\n' '$ echo a'" in text
    assert "# collapsed multi-line command" in text
    assert script_text(["x"], bash=False).startswith("set -e\n")


def test_no_tool_of_the_orchestrator_is_on_the_path(run_gitlab: Run) -> None:
    import sys

    job = run_gitlab("job:\n  script: ['echo \"path=$PATH\"']\n")["job"]
    path = re.search(r"path=(\S+)", job.read_log())
    assert path is not None
    assert os.path.dirname(sys.executable) not in path.group(1).split(":")


def test_a_job_runs_in_the_sandbox(run_gitlab: Run) -> None:
    import sys

    script = f"job:\n  script: ['test -e {sys.prefix} && echo visible || echo hidden']\n"
    assert "hidden" in run_gitlab(script)["job"].read_log().replace("echo hidden", "")


def test_service_names_as_gitlab_derives_them() -> None:
    assert service_names("postgres:16") == ["postgres"]
    assert service_names("tutum/wordpress:latest") == ["tutum__wordpress", "tutum-wordpress"]
    assert service_names("registry.example.com:5000/db") == [
        "registry.example.com:5000__db",
        "registry.example.com:5000-db",
    ]


def test_a_job_with_an_image_and_services_runs_in_its_pod(
    run_gitlab: Run, container_images: tuple[str, str]
) -> None:
    busybox, httpd = container_images
    config = f"""
in-image:
  image: {busybox}
  services:
    - name: {httpd}
      alias: web
  variables:
    GREETING: hi
  before_script:
    - test ! -e /usr/bin/python3 && echo "no host python"
  script:
    - echo "$GREETING from $CI_JOB_IMAGE"
    - cat README.md
    - wget -qO- http://web:8080/
    - touch made-in-container && exit 4
  after_script:
    - echo "after in the image" && readlink /bin/sh

missing-service:
  image: {busybox}
  services: [localhost/cicd-no-such-service:1]
  script: [echo never]
"""
    jobs = run_gitlab(config, {"README.md": "the readme\n"})
    job = jobs["in-image"]
    text = job.read_log()
    assert job.conclusion is Conclusion.FAILURE, text
    assert 'Preparing the "docker" executor' in text and f"Using docker image {busybox}" in text
    for expected in (
        "no host python",
        f"hi from {busybox}",
        "the readme",
        "served by the service container",
        "after in the image",
        "busybox",
        "ERROR: Job failed: exit code 4",
    ):
        assert expected in text, (expected, text)
    missing = jobs["missing-service"]
    assert missing.conclusion is Conclusion.NEUTRAL, missing.read_log()
    assert missing.not_replayable and "could not be started" in missing.not_replayable
    assert "never" not in missing.read_log().split("cannot replay locally")[0].split("script")[-1]
