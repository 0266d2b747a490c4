from __future__ import annotations

from pathlib import Path

import pytest

from cicd_orchestrator.analysis.secrets import (
    SecretEvidence,
    apply_secret_evidence,
    find_missing_secrets,
    github_refs,
    github_sections,
    gitlab_refs,
)
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.models import Failure

WORKFLOW = """\
name: CI
on: [push]
env:
  REGION: eu-west-1
jobs:
  test:
    runs-on: ubuntu-latest
    env:
      GH: ${{ secrets.GITHUB_TOKEN }}
    steps:
      - uses: actions/checkout@v4
      - name: Unit tests
        run: python -m pytest -q
        env:
          API_KEY: ${{ secrets.API_KEY }}
          PLAIN: hello
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: acme/upload@v2
        with:
          token: ${{ secrets.UPLOAD_TOKEN }}
      - run: |
          curl -fsS -H "Authorization: Bearer ${{ secrets.DEPLOY_TOKEN }}" https://deploy.invalid/hook
"""

TS = "2024-05-01T10:00:00.1234567Z "


def _gh_log(*lines: str) -> list[str]:
    return [TS + line for line in lines]


def _test_log(api_key_shown: str) -> list[str]:
    return _gh_log(
        "##[group]Run actions/checkout@v4",
        "##[endgroup]",
        "##[group]Run python -m pytest -q",
        "python -m pytest -q",
        "shell: /usr/bin/bash -e {0}",
        "env:",
        "  REGION: eu-west-1",
        f"  API_KEY: {api_key_shown}",
        "  GH: ***",
        "  PLAIN: hello",
        "##[endgroup]",
        "E       KeyError: 'API_KEY'",
        "FAILED tests/test_client.py::test_fetch - KeyError: 'API_KEY'",
        "1 failed, 3 passed in 0.21s",
        "##[error]Process completed with exit code 1.",
    )


def _failure(**kw: object) -> Failure:
    base: dict[str, object] = dict(
        job="test",
        job_id=3,
        run_id=7,
        step="Unit tests",
        category=FailureCategory.TEST,
        confidence=0.8,
        signature="sig",
        pattern="pytest-failed",
        recipe="revert-culprit",
        message="pytest: tests/test_client.py::test_fetch failed",
        evidence=["FAILED tests/test_client.py::test_fetch - KeyError: 'API_KEY'"],
    )
    base.update(kw)
    return Failure(**base)  # type: ignore[arg-type]


def test_a_test_failing_on_an_empty_secret_is_configuration_naming_it() -> None:
    found = find_missing_secrets(
        WORKFLOW, ".github/workflows/ci.yml", "test", "Unit tests", _test_log("")
    )
    assert [e.names for e in found] == [("API_KEY",)]
    assert found[0].where == ".github/workflows/ci.yml:15"
    assert found[0].log_line == "API_KEY:"
    failure = apply_secret_evidence(_failure(), found)
    assert failure.category is FailureCategory.CONFIGURATION
    assert failure.recipe == "escalate-secret" and failure.confidence >= 0.9
    assert failure.captures["secret"] == "API_KEY"
    assert failure.captures["secret_line"] == ".github/workflows/ci.yml:15"
    assert "API_KEY" in failure.message
    assert any("test (pattern pytest-failed, recipe revert-culprit)" in n for n in failure.notes)
    assert failure.evidence[0] == "API_KEY:"


def test_a_set_secret_masked_in_the_log_is_no_evidence() -> None:
    found = find_missing_secrets(
        WORKFLOW, ".github/workflows/ci.yml", "test", "Unit tests", _test_log("***")
    )
    assert found == []
    failure = _failure()
    assert apply_secret_evidence(failure, found) is failure


def test_github_token_is_never_missing() -> None:
    refs = github_refs(WORKFLOW, "ci.yml", "test", "Unit tests")
    names = {n for r in refs for n in r.names}
    assert names == {"API_KEY"}
    log = [line.replace("GH: ***", "GH: ") for line in _test_log("***")]
    assert find_missing_secrets(WORKFLOW, "ci.yml", "test", "Unit tests", log) == []


def test_an_empty_secret_in_a_step_that_did_not_fail_is_no_evidence() -> None:
    log = _test_log("")
    # the step succeeded; another step failed afterwards
    log = log[:11] + _gh_log("1 passed", "##[group]Run make docs", "##[endgroup]")
    log += _gh_log("##[error]Process completed with exit code 2.")
    assert find_missing_secrets(WORKFLOW, "ci.yml", "test", None, log) == []


def test_an_action_input_shown_empty_is_evidence() -> None:
    log = _gh_log(
        "##[group]Run acme/upload@v2",
        "with:",
        "  token: ",
        "##[endgroup]",
        "Error: token is empty",
        "##[error]Upload failed",
    )
    found = find_missing_secrets(WORKFLOW, "ci.yml", "deploy", "Run acme/upload@v2", log)
    assert [e.names for e in found] == [("UPLOAD_TOKEN",)]
    assert found[0].where == "ci.yml:22"


def test_a_secret_in_the_script_is_read_from_the_printed_command() -> None:
    empty = _gh_log(
        '##[group]Run curl -fsS -H "Authorization: Bearer " https://deploy.invalid/hook',
        'curl -fsS -H "Authorization: Bearer " https://deploy.invalid/hook',
        "##[endgroup]",
        "curl: (22) The requested URL returned error: 401",
        "##[error]Process completed with exit code 22.",
    )
    found = find_missing_secrets(WORKFLOW, "ci.yml", "deploy", None, empty)
    assert [e.names for e in found] == [("DEPLOY_TOKEN",)]
    assert found[0].where == "ci.yml:24"
    masked = [line.replace("Bearer ", "Bearer ***") for line in empty]
    assert find_missing_secrets(WORKFLOW, "ci.yml", "deploy", None, masked) == []


def test_the_local_ci_without_the_secret_configured_is_evidence() -> None:
    no_section = _gh_log("E KeyError: 'API_KEY'", "##[error]Process completed with exit code 1.")
    found = find_missing_secrets(
        WORKFLOW, "ci.yml", "test", "Unit tests", no_section, configured={"OTHER"}
    )
    assert [e.names for e in found] == [("API_KEY",)]
    assert "not configured" in found[0].reason
    assert (
        find_missing_secrets(
            WORKFLOW, "ci.yml", "test", "Unit tests", no_section, configured={"api_key"}
        )
        == []
    )
    # a step the workflow does not have: nothing to say
    assert find_missing_secrets(WORKFLOW, "ci.yml", "test", "Lint", no_section, set()) == []


GITLAB = """\
variables:
  IMAGE: registry.invalid/app
deploy:
  stage: deploy
  variables:
    TARGET: prod
  script:
    - echo "DEPLOY_TOKEN=${DEPLOY_TOKEN:+[set]}"
    - ./deploy.sh "$IMAGE" "$TARGET" "$DEPLOY_TOKEN" "$CI_COMMIT_SHA"
"""


def test_gitlab_reads_variables_from_the_settings_only() -> None:
    refs = gitlab_refs(GITLAB, ".gitlab-ci.yml", "deploy")
    assert {n for r in refs for n in r.names} == {"DEPLOY_TOKEN"}
    assert refs[0].where == ".gitlab-ci.yml:8"


@pytest.mark.parametrize(
    ("shown", "missing"),
    [("DEPLOY_TOKEN=", True), ("DEPLOY_TOKEN=[MASKED]", False), ("DEPLOY_TOKEN: [MASKED]", False)],
)
def test_gitlab_masked_is_set_and_empty_is_missing(shown: str, missing: bool) -> None:
    log = [
        "section_start:1714557600:step_script\r\x1b[0K\x1b[32;1m$ ./deploy.sh\x1b[0;m",
        '$ echo "DEPLOY_TOKEN=$DEPLOY_TOKEN"',
        shown,
        "Error: token is empty",
        "ERROR: Job failed: exit code 1",
    ]
    found = find_missing_secrets(GITLAB, ".gitlab-ci.yml", "deploy", None, log)
    assert bool(found) is missing
    if missing:
        assert found[0].names == ("DEPLOY_TOKEN",)


def test_bad_input_gives_no_evidence_and_no_crash() -> None:
    for text in ("", "jobs: [\n", "- a list", "jobs: 3", "jobs:\n  test: 5\n"):
        assert find_missing_secrets(text, "ci.yml", "test", "Unit tests", _test_log("")) == []
    assert github_sections(["\x00\xff binary", "##[group]", "##[endgroup]"])[0].header == ""


def test_an_escalated_failure_keeps_its_recipe_and_gains_the_name() -> None:
    evidence = [SecretEvidence(("API_KEY",), "ci.yml:15", "API_KEY:", "is empty")]
    failure = _failure(category=FailureCategory.CONFIGURATION, recipe="escalate-permission")
    out = apply_secret_evidence(failure, evidence)
    assert out.recipe == "escalate-permission" and out.captures["secret"] == "API_KEY"


TWO = """\
on: [push]
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - name: Deploy
        run: ./deploy.sh
        env:
          DEPLOY_USER: ${{ secrets.DEPLOY_USER }}
          DEPLOY_KEY: ${{ secrets.DEPLOY_KEY }}
          SENTRY_DSN: ${{ secrets.SENTRY_DSN }}
"""


def test_every_secret_shown_empty_is_named_in_the_escalation(tmp_path: Path) -> None:
    from cicd_orchestrator.repair.missing_access import secret_report
    from cicd_orchestrator.repair.workflows import job_blocks

    ci = ".github/workflows/ci.yml"
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ci).write_text(TWO)
    log = _gh_log(
        "##[group]Run ./deploy.sh",
        "./deploy.sh",
        "env:",
        "  DEPLOY_USER: ",
        "  DEPLOY_KEY: ",
        "  SENTRY_DSN: ***",
        "##[endgroup]",
        "Permission denied (publickey).",
        "##[error]Process completed with exit code 255.",
    )
    found = find_missing_secrets(TWO, ci, "deploy", "Deploy", log)
    assert [e.names for e in found] == [("DEPLOY_USER",), ("DEPLOY_KEY",)]
    failure = apply_secret_evidence(_failure(job="deploy", step="Deploy"), found)
    assert failure.captures["secrets"] == "DEPLOY_USER,DEPLOY_KEY"
    report = secret_report(failure, job_blocks(tmp_path, ci, "deploy"))
    assert report[0].startswith("secret DEPLOY_USER is missing or empty")
    assert f"{ci}:9" in report[0]
    assert report[1].startswith("secret DEPLOY_KEY is missing or empty")
    assert f"{ci}:10" in report[1]
    assert "SENTRY_DSN" in report[2] and "also reads" in report[2]
