"""Reading ``.gitlab-ci.yml``: jobs, stages, defaults, extends, includes, parallel, rules."""

from __future__ import annotations

import pytest

from cicd_orchestrator.actions.workflow import InvalidWorkflowError
from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.gitlab_ci import plan
from cicd_orchestrator.gitlab_ci.config import duration_seconds, parse_pipeline
from cicd_orchestrator.gitlab_ci.rules import (
    any_exists,
    evaluate_if,
    evaluate_only_except,
    evaluate_rules,
)

PIPELINE = """
stages: [lint, build, test, deploy]

variables:
  PIP_CACHE_DIR: "$CI_PROJECT_DIR/.cache/pip"
  PYTHON: "3.12"

default:
  image: python:3.12-slim
  before_script:
    - python -m venv .venv
  retry: 2

.python-job:
  variables:
    EXTRA: "from-template"
    PYTHON: "3.11"
  tags: [docker]

ruff:
  stage: lint
  extends: .python-job
  script: ruff check .

unit:
  stage: test
  extends: [.python-job]
  variables:
    PYTHON: "3.13"
  script:
    - pytest -q
  artifacts:
    reports:
      junit: report.xml

compile:
  stage: build
  inherit:
    default: false
  script:
    - make
"""


def test_jobs_stages_defaults_and_extends() -> None:
    p = parse_pipeline(PIPELINE, ".gitlab-ci.yml")
    assert p.stages == [".pre", "lint", "build", "test", "deploy", ".post"]
    assert [j.name for j in p.jobs] == ["ruff", "unit", "compile"]
    ruff, unit, compile_ = p.jobs
    assert ruff.script == ["ruff check ."]
    assert ruff.image == "python:3.12-slim"
    assert ruff.before_script == ["python -m venv .venv"]
    assert unit.variables == {"EXTRA": "from-template", "PYTHON": "3.13"}  # the job wins
    assert compile_.image is None and compile_.before_script == []  # inherit: default: false
    assert p.variables["PYTHON"] == "3.12"
    assert any("artifacts" in n for n in unit.notes)
    assert any("tags" in n for n in ruff.notes)


def test_default_stages_and_hidden_jobs() -> None:
    p = parse_pipeline(".hidden:\n  script: x\nbuild-it:\n  script: [make]\n", "ci.yml")
    assert p.stages == [".pre", "build", "test", "deploy", ".post"]
    assert [(j.name, j.stage) for j in p.jobs] == [("build-it", "test")]


def test_extends_deep_merges_mappings_and_replaces_lists() -> None:
    text = """
.base:
  variables: {A: "1", B: "1"}
  script: [echo base]
  rules:
    - if: $CI_COMMIT_BRANCH
.more:
  extends: .base
  variables: {B: "2"}
job:
  extends: .more
  variables: {C: "3"}
  script: [echo job]
"""
    (job,) = parse_pipeline(text, "ci.yml").jobs
    assert job.variables == {"A": "1", "B": "2", "C": "3"}
    assert job.script == ["echo job"]
    assert job.rules == [{"if": "$CI_COMMIT_BRANCH"}]


def test_extends_cycle_and_unknown_parent_are_clear_errors() -> None:
    cycle = ".a:\n  extends: .b\n.b:\n  extends: .a\njob:\n  extends: .a\n  script: x\n"
    with pytest.raises(InvalidWorkflowError, match=r"circular extends: job -> \.a -> \.b -> \.a"):
        parse_pipeline(cycle, "ci.yml")
    with pytest.raises(InvalidWorkflowError, match=r"unknown job or template '\.nope'"):
        parse_pipeline("job:\n  extends: .nope\n  script: x\n", "ci.yml")


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(InvalidWorkflowError) as err:
        parse_pipeline("job:\n  script:\n    - echo ok\n   stage: test\n", ".gitlab-ci.yml")
    assert err.value.line is not None and err.value.line >= 3
    assert ".gitlab-ci.yml#L" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("job:\n  stage: nowhere\n  script: x\n", "chosen stage nowhere does not exist"),
        ("job:\n  image: x\n", "script can't be blank"),
        ("variables: {A: 1}\n", "at least one visible job"),
        ("job:\n  script: x\n  when: sometimes\n", "when 'sometimes'"),
        ("job:\n  script: x\n  needs: [ghost]\n", "undefined need: ghost"),
        ("- a\n- b\n", "must be a mapping"),
        ("job:\n  script: [true]\n", "nested array of strings"),
    ],
)
def test_structural_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidWorkflowError, match=message):
        parse_pipeline(text, "ci.yml")


def test_parallel_and_matrix_names_as_gitlab_forms_them() -> None:
    text = """
test:
  parallel: 3
  script: pytest
deploy:
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app1]
      - PROVIDER: gcp
  script: ./deploy
"""
    jobs = parse_pipeline(text, "ci.yml").jobs
    assert [j.name for j in jobs] == [
        "test 1/3",
        "test 2/3",
        "test 3/3",
        "deploy: [aws, monitoring]",
        "deploy: [aws, app1]",
        "deploy: [gcp]",
    ]
    assert jobs[1].variables["CI_NODE_INDEX"] == "2"
    assert jobs[1].variables["CI_NODE_TOTAL"] == "3"
    assert jobs[4].variables["STACK"] == "app1"
    assert jobs[4].matrix == {"PROVIDER": "aws", "STACK": "app1"}
    assert {j.base for j in jobs} == {"test", "deploy"}


def test_local_includes_merge_under_the_file_and_others_are_notes() -> None:
    files = {
        "ci/lint.yml": "include: ci/common.yml\nlint:\n  script: [ruff check .]\n",
        "ci/common.yml": "variables:\n  SHARED: yes-shared\n  OVERRIDE: included\n",
    }
    text = """
include:
  - local: ci/lint.yml
  - project: group/templates
    file: /python.yml
  - remote: https://example.com/ci.yml
  - template: Security/SAST.gitlab-ci.yml
variables:
  OVERRIDE: main
build:
  script: make
"""
    p = parse_pipeline(text, ".gitlab-ci.yml", files.__getitem__, lambda: sorted(files))
    assert [j.name for j in p.jobs] == ["lint", "build"]
    assert p.variables == {"SHARED": "yes-shared", "OVERRIDE": "main"}
    assert sum("cannot replay locally" in n for n in p.notes) == 3


def test_reference_tags_are_resolved() -> None:
    text = """
.setup:
  script:
    - echo setup
job:
  script:
    - !reference [.setup, script]
    - echo job
"""
    (job,) = parse_pipeline(text, "ci.yml").jobs
    assert job.script == ["echo setup", "echo job"]
    with pytest.raises(InvalidWorkflowError, match=r"!reference \[.nope, script\] not found"):
        parse_pipeline("job:\n  script: !reference [.nope, script]\n", "ci.yml")


def test_trigger_job_is_not_replayable_and_unknown_keys_are_notes() -> None:
    text = "child:\n  trigger:\n    include: child.yml\n  script: x\nodd:\n  script: x\n  wat: 1\n"
    child, odd = parse_pipeline(text, "ci.yml").jobs
    assert child.not_replayable == "a trigger job starts another pipeline"
    assert "wat: unknown keyword; ignored" in odd.notes


def test_allow_failure_and_durations() -> None:
    text = "a:\n  script: x\n  allow_failure:\n    exit_codes: [3, 4]\n  timeout: 1h 30m\n"
    (job,) = parse_pipeline(text, "ci.yml").jobs
    assert job.allow_failure == [3, 4]
    assert job.timeout == 5400
    assert duration_seconds("90 minutes") == 5400
    assert duration_seconds("soon") is None


# --------------------------------------------------------------------------- rules
VARS = {
    "CI_COMMIT_BRANCH": "main",
    "CI_COMMIT_REF_NAME": "main",
    "CI_PIPELINE_SOURCE": "push",
    "EMPTY": "",
    "PATTERN": "/^ma/",
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('$CI_COMMIT_BRANCH == "main"', True),
        ("$CI_COMMIT_BRANCH != 'main'", False),
        ('$CI_PIPELINE_SOURCE == "merge_request_event"', False),
        ("$CI_COMMIT_BRANCH =~ /^ma/", True),
        ("$CI_COMMIT_BRANCH =~ /^MA/i", True),
        ("$CI_COMMIT_BRANCH !~ /^release/", True),
        ("$CI_COMMIT_BRANCH =~ $PATTERN", True),
        ("$CI_COMMIT_TAG", False),
        ("$EMPTY", False),
        ("${CI_COMMIT_BRANCH}", True),
        ("$CI_COMMIT_TAG == null", True),
        ('$CI_COMMIT_TAG || $CI_COMMIT_BRANCH == "main"', True),
        ('$CI_COMMIT_TAG && $CI_COMMIT_BRANCH == "main"', False),
        ('($CI_COMMIT_TAG || $CI_COMMIT_BRANCH) && $CI_PIPELINE_SOURCE == "push"', True),
    ],
)
def test_if_expressions(expression: str, expected: bool) -> None:
    assert evaluate_if(expression, VARS) is expected


@pytest.mark.parametrize("expression", ['$A == "x" &&', "$A =~ 'plain'", "$A === 1", "(($A)"])
def test_invalid_if_is_a_clear_error(expression: str) -> None:
    with pytest.raises(WorkflowError, match="invalid rules expression"):
        evaluate_if(expression, {"A": "x"})


def test_rules_first_match_decides() -> None:
    rules = [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "never"},
        {"exists": ["Dockerfile"], "when": "manual", "allow_failure": True},
        {"if": "$CI_COMMIT_BRANCH", "variables": {"DEPLOY": "yes"}},
    ]
    files: list[str] = ["src/app.py"]
    out = evaluate_rules(rules, VARS, lambda pats: any_exists(files, pats))
    assert out.included and out.when is None and out.variables == {"DEPLOY": "yes"}
    files.append("Dockerfile")
    out = evaluate_rules(rules, VARS, lambda pats: any_exists(files, pats))
    assert out.included and out.when == "manual" and out.allow_failure is True
    mr = {**VARS, "CI_PIPELINE_SOURCE": "merge_request_event"}
    assert not evaluate_rules(rules, mr, lambda pats: True).included
    assert not evaluate_rules([{"if": "$NOPE"}], VARS, lambda pats: True).included


def test_changes_counts_as_true_with_a_note() -> None:
    out = evaluate_rules([{"changes": ["src/**/*"]}], VARS, lambda pats: False)
    assert out.included
    assert any("changes cannot be known locally" in n for n in out.notes)


def test_exists_globs() -> None:
    files = ["Dockerfile", "docs/index.md", "src/pkg/mod.py"]
    assert any_exists(files, ["**/*.py"])
    assert any_exists(files, ["**/Dockerfile"])
    assert not any_exists(files, ["*.py"])
    assert any_exists(files, ["docs/*.{md,rst}"])


@pytest.mark.parametrize(
    ("only", "except_", "variables", "expected"),
    [
        (None, None, VARS, True),
        (["main"], None, VARS, True),
        (["/^release-.*$/"], None, VARS, False),
        (["branches"], ["main"], VARS, False),
        (["tags"], None, VARS, False),
        (["tags"], None, {**VARS, "CI_COMMIT_TAG": "v1"}, True),
        (["merge_requests"], None, {**VARS, "CI_PIPELINE_SOURCE": "merge_request_event"}, True),
        ({"refs": ["main"], "variables": ['$DEPLOY == "1"']}, None, VARS, False),
        (None, {"variables": ["$CI_COMMIT_BRANCH"]}, VARS, False),
    ],
)
def test_only_except(
    only: object, except_: object, variables: dict[str, str], expected: bool
) -> None:
    assert evaluate_only_except(only, except_, variables).included is expected


# --------------------------------------------------------------------------- plan
def test_order_follows_needs_then_stages() -> None:
    text = """
stages: [build, test, deploy]
build:
  stage: build
  script: make
lint:
  stage: test
  needs: []
  script: lint
unit:
  stage: test
  script: pytest
deploy:
  stage: deploy
  needs: [unit]
  script: ./deploy
"""
    p = parse_pipeline(text, "ci.yml")
    planned = [plan.PlannedJob(j, j.when, False, {}, True) for j in p.jobs]
    order = plan.order(p, planned)
    assert [(pj.job.name, waits) for pj, waits in order] == [
        ("build", []),
        ("lint", []),
        ("unit", ["build"]),
        ("deploy", ["unit"]),
    ]


def test_select_names_jobs_or_instances_and_refuses_unknown_ones() -> None:
    p = parse_pipeline("test:\n  parallel: 2\n  script: x\nother:\n  script: y\n", "ci.yml")
    assert plan.select(p, {"test"}) == {"test 1/2", "test 2/2"}
    assert plan.select(p, {"test 2/2"}) == {"test 2/2"}
    assert plan.select(p, None) is None
    with pytest.raises(WorkflowError, match="no job named ghost"):
        plan.select(p, {"ghost"})


def test_variables_expand_as_the_runner_expands_them() -> None:
    out = plan.expand_variables(
        {"CACHE": "$CI_PROJECT_DIR/.cache", "PRICE": "$$5", "LATER": "${UNKNOWN}x"},
        {"CI_PROJECT_DIR": "/builds/p"},
    )
    assert out["CACHE"] == "/builds/p/.cache"
    assert out["PRICE"] == "$5"
    assert out["LATER"] == "${UNKNOWN}x"


def test_predefined_variables_of_a_branch_and_a_tag() -> None:
    branch = plan.PipelineContext("a" * 40, "refs/heads/feature/X", "grp/proj").variables()
    assert branch["CI_COMMIT_BRANCH"] == "feature/X"
    assert branch["CI_COMMIT_REF_SLUG"] == "feature-x"
    assert branch["CI_PROJECT_NAME"] == "proj" and branch["CI_PROJECT_NAMESPACE"] == "grp"
    tag = plan.PipelineContext("a" * 40, "refs/tags/v1.0", "grp/proj").variables()
    assert tag["CI_COMMIT_TAG"] == "v1.0" and "CI_COMMIT_BRANCH" not in tag


def test_an_optional_need_of_no_job_is_dropped() -> None:
    text = """
a:
  script: x
b:
  script: y
  needs:
    - job: gone
      optional: true
    - a
"""
    assert parse_pipeline(text, "ci.yml").jobs[1].needs == ["a"]
