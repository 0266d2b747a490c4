from __future__ import annotations

import dataclasses

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure
from cicd_orchestrator.repair.workflow_config import (
    SUPPORTED_ACTIONS,
    ActionUpgradeFixer,
    InvalidWorkflowFixer,
    MissingAccessFixer,
    WorkflowPathFixer,
    failing_job_text,
    upgrade_line,
    yaml_problem,
)
from cicd_orchestrator.repair.workspace import checkout

NEW_FIXERS = ("upgrade-action", "invalid-workflow", "missing-access", "workflow-path")
CI = ".github/workflows/ci.yml"

# odd but valid formatting on purpose: quotes, comments, trailing spaces, blank lines
DEPRECATED = """name: ci   # the main workflow
on:
  push:
    branches: [main]

jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v3   # keep this comment
      - uses: "actions/setup-python@v4"
        with: {python-version: '3.12'}
      - run: python -m build
      - name:   Upload
        uses: actions/upload-artifact@v3.1.2
        with:
          name: dist
          path: dist/
  publish:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: 'actions/download-artifact@v3'
      - uses: actions/cache@0c45773b623bea8c8e75f6c82b208c3cf94ea4f9
      - uses: actions/setup-node@v4
      - run: ls dist
"""


def config_failure(recipe="none", pattern=None, captures=None, evidence=(), job="build", step=None):
    return Failure(
        job=job,
        job_id=1,
        run_id=1,
        step=step,
        category=FailureCategory.CONFIGURATION,
        confidence=0.9,
        signature="s",
        pattern=pattern,
        recipe=recipe,
        captures=dict(captures or {}),
        evidence=list(evidence),
        message=evidence[0] if evidence else "",
    )


def context(repo, failures, sha, workflow_path=CI):
    ctx = repo.context(failures, sha)
    ctx.config = dataclasses.replace(
        ctx.config, enabled_fixers=(*ctx.config.enabled_fixers, *NEW_FIXERS)
    )
    ctx.workflow_path = workflow_path
    return ctx


def applied_bytes(repo, sha, patch, path):
    with checkout(repo.path, sha) as ws:
        assert ws.apply(patch)
        return (ws.path / path).read_bytes()


# --------------------------------------------------------------------------- action versions
def test_the_table_knows_the_common_actions():
    assert SUPPORTED_ACTIONS["actions/upload-artifact"].supported == 4
    assert SUPPORTED_ACTIONS["actions/setup-python"].supported == 5
    assert SUPPORTED_ACTIONS["github/codeql-action"].supported == 3
    line = "      - uses: github/codeql-action/init@v2 # scan\n"
    assert upgrade_line(line, None) == (
        "      - uses: github/codeql-action/init@v3 # scan\n",
        "github/codeql-action v2 -> v3",
    )
    assert upgrade_line("      - uses: actions/checkout@v4\n", None)[1] is None
    assert upgrade_line("      - uses: actions/checkout@main\n", None)[1] is None


def test_named_action_moves_with_its_companion_and_nothing_else_changes(repo):
    sha = repo.commit({CI: DEPRECATED, "README.md": "x\n"}, "workflow")
    failure = config_failure(
        recipe="upgrade-action",
        pattern="deprecated-action",
        captures={"action": "actions/upload-artifact", "version": "v3"},
        evidence=["uses a deprecated version of `actions/upload-artifact: v3`"],
    )
    result = ActionUpgradeFixer().propose(context(repo, [failure], sha))
    assert result.applicable and not result.unrepaired
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.files == [CI]
    assert repair.category is FailureCategory.CONFIGURATION and repair.confidence >= 0.9
    expected = DEPRECATED.replace(
        "actions/upload-artifact@v3.1.2", "actions/upload-artifact@v4"
    ).replace("'actions/download-artifact@v3'", "'actions/download-artifact@v4'")
    # byte-for-byte: only the two version strings differ
    assert applied_bytes(repo, sha, repair.patch, CI) == expected.encode()
    assert any("immutable" in note for note in repair.notes)


def test_without_a_named_action_every_deprecated_reference_moves(repo):
    other = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
    other += "      - uses: actions/setup-go@v3\n"
    sha = repo.commit({CI: DEPRECATED, ".github/workflows/go.yaml": other}, "workflows")
    failure = config_failure(recipe="upgrade-action", evidence=["##[error]deprecated action"])
    result = ActionUpgradeFixer().propose(context(repo, [failure], sha))
    repair = result.repairs[0]
    assert sorted(repair.files) == [CI, ".github/workflows/go.yaml"]
    expected = (
        DEPRECATED.replace("checkout@v3", "checkout@v4")
        .replace("setup-python@v4", "setup-python@v5")
        .replace("upload-artifact@v3.1.2", "upload-artifact@v4")
        .replace("download-artifact@v3", "download-artifact@v4")
    )
    assert applied_bytes(repo, sha, repair.patch, CI) == expected.encode()
    assert "actions/cache@0c45773b623bea8c8e75f6c82b208c3cf94ea4f9" in expected  # pinned
    assert b"setup-go@v5" in applied_bytes(repo, sha, repair.patch, ".github/workflows/go.yaml")


def test_the_rewrite_keeps_crlf_and_every_other_byte(tmp_path):
    crlf = DEPRECATED.replace("\n", "\r\n").encode() + b"# trailing comment without newline"
    target = tmp_path / CI
    target.parent.mkdir(parents=True)
    target.write_bytes(crlf)
    moved = ActionUpgradeFixer._upgrade(tmp_path, {"actions/checkout"})
    assert moved == [f"{CI}:10: actions/checkout v3 -> v4"]
    assert target.read_bytes() == crlf.replace(b"checkout@v3", b"checkout@v4")


def test_unknown_action_one_typo_from_a_known_one(repo):
    wf = DEPRECATED.replace("actions/setup-python@v4", "actions/setup-pyhton@v5")
    sha = repo.commit({CI: wf}, "typo")
    failure = config_failure(
        recipe="upgrade-action",
        pattern="unknown-action",
        captures={"action": "actions/setup-pyhton", "version": "v5"},
    )
    result = ActionUpgradeFixer().propose(context(repo, [failure], sha))
    repair = result.repairs[0]
    assert repair.confidence == 0.5
    text = applied_bytes(repo, sha, repair.patch, CI).decode()
    assert '"actions/setup-python@v5"' in text and "checkout@v3" in text


def test_unknown_action_without_a_known_version_is_reported(repo):
    sha = repo.commit({CI: DEPRECATED.replace("actions/checkout@v3", "acme/deploy@v1")}, "x")
    failure = config_failure(
        recipe="upgrade-action", captures={"action": "acme/deploy", "version": "v1"}
    )
    result = ActionUpgradeFixer().propose(context(repo, [failure], sha))
    assert not result.repairs
    assert "acme/deploy@v1" in result.unrepaired[0] and "by hand" in result.unrepaired[0]


def test_upgrade_ignores_other_categories(repo):
    sha = repo.commit({CI: DEPRECATED}, "x")
    failure = dataclasses.replace(
        config_failure(recipe="upgrade-action"), category=FailureCategory.TEST
    )
    assert not ActionUpgradeFixer().propose(context(repo, [failure], sha)).applicable


# --------------------------------------------------------------------------- invalid workflow
BROKEN = """on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: echo one
       - run: echo two
"""


def test_invalid_workflow_reports_file_line_and_parser_message(repo):
    sha = repo.commit({CI: BROKEN}, "broken")
    failure = config_failure(
        pattern="gha-invalid-workflow",
        captures={"file": CI},
        evidence=[f"##[error]Invalid workflow file: {CI}"],
        job=CI,
    )
    result = InvalidWorkflowFixer().propose(context(repo, [failure], sha))
    assert result.applicable and not result.repairs
    report = result.unrepaired[0]
    line, column, message = yaml_problem(BROKEN)
    assert line == 7 and column and message
    assert f"{CI}:7" in report and "YAML parser" in report and message in report
    assert "- run: echo two" in report


def test_invalid_workflow_message_of_the_log_is_kept(repo):
    wf = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    step:\n      - run: x\n"
    sha = repo.commit({CI: wf}, "typo")
    failure = config_failure(
        pattern="gha-invalid-workflow",
        evidence=[
            f"The workflow is not valid. {CI} (Line: 5, Col: 5): Unexpected value 'step'",
        ],
        job=CI,
    )
    result = InvalidWorkflowFixer().propose(context(repo, [failure], sha))
    report = result.unrepaired[0]
    assert f"{CI}:5" in report and "Unexpected value 'step'" in report and "`step:`" in report


def test_invalid_workflow_without_a_message_asks_the_parsers(repo):
    wf = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    step:\n      - run: x\n"
    sha = repo.commit({CI: wf}, "typo")
    failure = config_failure(
        pattern="gha-invalid-workflow", evidence=[f"##[error]Invalid workflow file: {CI}"]
    )
    report = InvalidWorkflowFixer().propose(context(repo, [failure], sha)).unrepaired[0]
    assert "workflow parser" in report and "steps" in report and CI in report


# --------------------------------------------------------------------------- secrets, permissions
SECRETS = """on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pytest
  publish-docs:
    runs-on: ubuntu-latest
    steps:
      - name: Publish
        env:
          DOCS_TOKEN: ${{ secrets.DOCS_TOKEN }}
          SENTRY: ${{ secrets['SENTRY_DSN'] }}
          GH: ${{ secrets.GITHUB_TOKEN }}
        run: python scripts/publish_docs.py
  release:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - uses: pypa/gh-action-pypi-publish@release/v1
        with:
          password: ${{ secrets.PYPI_API_TOKEN }}
"""


def test_missing_secret_names_it_where_it_is_used_and_where_to_set_it(repo):
    sha = repo.commit({CI: SECRETS}, "docs")
    failure = config_failure(
        recipe="escalate-secret",
        pattern="missing-secret",
        captures={"secret": "DOCS_TOKEN"},
        evidence=["::error title=Missing secret::DOCS_TOKEN is empty."],
        job="publish-docs",
    )
    result = MissingAccessFixer().propose(context(repo, [failure], sha))
    assert result.applicable and not result.repairs
    first = result.unrepaired[0]
    assert first.startswith("secret DOCS_TOKEN is missing or empty")
    assert f"{CI}:12" in first and "Secrets and variables > Actions" in first
    assert "SENTRY_DSN" in result.unrepaired[1]
    assert not any("GITHUB_TOKEN" in u or "PYPI_API_TOKEN" in u for u in result.unrepaired)


def test_missing_action_input_names_the_secret_behind_it_and_its_environment(repo):
    sha = repo.commit({CI: SECRETS}, "release")
    failure = config_failure(
        recipe="escalate-secret",
        captures={"secret": "password"},
        evidence=["Error: Input required and not supplied: password"],
        job="release",
    )
    report = MissingAccessFixer().propose(context(repo, [failure], sha)).unrepaired[0]
    assert report.startswith("secret PYPI_API_TOKEN is missing")
    assert "Environments > production" in report and f"{CI}:22" in report


def test_missing_permission_names_the_scope_and_the_place(repo):
    wf = """on: pull_request
permissions:
  contents: read
jobs:
  comment:
    runs-on: ubuntu-latest
    steps:
      - name: Comment on the pull request
        uses: actions/github-script@v7
        with:
          script: |
            await github.rest.issues.createComment({body: 'hi'})
"""
    sha = repo.commit({CI: wf}, "comment")
    failure = config_failure(
        recipe="escalate-permission",
        pattern="missing-permission",
        evidence=["Error: Resource not accessible by integration"],
        job="comment",
        step="Comment on the pull request",
    )
    report = MissingAccessFixer().propose(context(repo, [failure], sha)).unrepaired[0]
    assert "`pull-requests: write`" in report or "`issues: write`" in report
    assert "jobs.comment.permissions" in report and CI in report
    assert "contents" in report  # what the workflow grants today


def test_workflow_files_cannot_be_pushed_with_the_token(repo):
    sha = repo.commit({CI: SECRETS}, "x")
    failure = config_failure(
        recipe="escalate-permission",
        evidence=["refusing to allow a GitHub App to create or update workflow"],
        job="test",
    )
    report = MissingAccessFixer().propose(context(repo, [failure], sha)).unrepaired[0]
    assert "`workflows` permission" in report


# --------------------------------------------------------------------------- wrong path
PATHS = """on: push
jobs:
  docs:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Deploy the docs
        run: |
          echo deploying
          python scripts/deploy_docs.py --site public
"""


def path_failure(path="/home/runner/work/app/app/scripts/deploy_docs.py"):
    return config_failure(
        pattern="workflow-wrong-path",
        captures={"file": path},
        evidence=[f"python: can't open file '{path}': [Errno 2] No such file or directory"],
        job="docs",
    )


def test_wrong_path_with_one_candidate_is_corrected_on_its_line_only(repo):
    sha = repo.commit({CI: PATHS, "tools/deploy_docs.py": "print('deploy')\n"}, "moved")
    result = WorkflowPathFixer().propose(context(repo, [path_failure()], sha))
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.confidence == 0.5
    assert "step 'Deploy the docs'" in repair.description and f"{CI}:10" in repair.description
    expected = PATHS.replace("python scripts/deploy_docs.py", "python tools/deploy_docs.py")
    assert applied_bytes(repo, sha, repair.patch, CI) == expected.encode()


def test_wrong_path_with_several_candidates_is_reported(repo):
    sha = repo.commit(
        {CI: PATHS, "tools/deploy_docs.py": "", "old/deploy_docs.py": ""}, "two candidates"
    )
    result = WorkflowPathFixer().propose(context(repo, [path_failure()], sha))
    assert not result.repairs
    report = result.unrepaired[0]
    assert "step 'Deploy the docs'" in report and "scripts/deploy_docs.py" in report
    assert "tools/deploy_docs.py" in report and "old/deploy_docs.py" in report


def test_wrong_path_without_any_candidate_is_reported(repo):
    sha = repo.commit({CI: PATHS}, "gone")
    result = WorkflowPathFixer().propose(context(repo, [path_failure()], sha))
    assert not result.repairs and "no file of that name" in result.unrepaired[0]


def test_the_failing_job_text_is_its_own_block(repo):
    sha = repo.commit({CI: SECRETS}, "x")
    with checkout(repo.path, sha) as ws:
        text = failing_job_text(ws.path, CI, "publish-docs")
        assert "DOCS_TOKEN" in text and "PYPI_API_TOKEN" not in text and "pytest" not in text
        assert "PYPI_API_TOKEN" in failing_job_text(ws.path, CI, "no such job")
