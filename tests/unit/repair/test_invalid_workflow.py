from __future__ import annotations

from cicd_orchestrator.repair.invalid_workflow import InvalidWorkflowFixer, yaml_problem

CI = ".github/workflows/ci.yml"

BROKEN = """on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo one
       - run: echo two
"""


def test_invalid_workflow_reports_file_line_and_parser_message(repo, config_failure):
    sha = repo.commit({CI: BROKEN}, "broken")
    failure = config_failure(
        pattern="gha-invalid-workflow",
        captures={"file": CI},
        evidence=[f"##[error]Invalid workflow file: {CI}"],
        job=CI,
    )
    result = InvalidWorkflowFixer().propose(repo.workflow_context([failure], sha))
    assert result.applicable and not result.repairs
    report = result.unrepaired[0]
    line, column, message = yaml_problem(BROKEN)
    assert line == 7 and column and message
    assert f"{CI}:7" in report and "YAML parser" in report and message in report
    assert "- run: echo two" in report


def test_invalid_workflow_message_of_the_log_is_kept(repo, config_failure):
    wf = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    step:\n      - run: x\n"
    sha = repo.commit({CI: wf}, "typo")
    failure = config_failure(
        pattern="gha-invalid-workflow",
        evidence=[
            f"The workflow is not valid. {CI} (Line: 5, Col: 5): Unexpected value 'step'",
        ],
        job=CI,
    )
    result = InvalidWorkflowFixer().propose(repo.workflow_context([failure], sha))
    report = result.unrepaired[0]
    assert f"{CI}:5" in report and "Unexpected value 'step'" in report and "`step:`" in report


def test_invalid_workflow_without_a_message_asks_the_parsers(repo, config_failure):
    wf = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    step:\n      - run: x\n"
    sha = repo.commit({CI: wf}, "typo")
    failure = config_failure(
        pattern="gha-invalid-workflow", evidence=[f"##[error]Invalid workflow file: {CI}"]
    )
    report = InvalidWorkflowFixer().propose(repo.workflow_context([failure], sha)).unrepaired[0]
    assert "workflow parser" in report and "steps" in report and CI in report
