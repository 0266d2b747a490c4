from __future__ import annotations

from cicd_orchestrator.repair.missing_access import MissingAccessFixer

CI = ".github/workflows/ci.yml"

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


def test_missing_secret_names_it_where_it_is_used_and_where_to_set_it(repo, config_failure):
    sha = repo.commit({CI: SECRETS}, "docs")
    failure = config_failure(
        recipe="escalate-secret",
        pattern="missing-secret",
        captures={"secret": "DOCS_TOKEN"},
        evidence=["::error title=Missing secret::DOCS_TOKEN is empty."],
        job="publish-docs",
    )
    result = MissingAccessFixer().propose(repo.workflow_context([failure], sha))
    assert result.applicable and not result.repairs
    first = result.unrepaired[0]
    assert first.startswith("secret DOCS_TOKEN is missing or empty")
    assert f"{CI}:12" in first and "Secrets and variables > Actions" in first
    assert "SENTRY_DSN" in result.unrepaired[1]
    assert not any("GITHUB_TOKEN" in u or "PYPI_API_TOKEN" in u for u in result.unrepaired)


def test_missing_action_input_names_the_secret_behind_it_and_its_environment(repo, config_failure):
    sha = repo.commit({CI: SECRETS}, "release")
    failure = config_failure(
        recipe="escalate-secret",
        captures={"secret": "password"},
        evidence=["Error: Input required and not supplied: password"],
        job="release",
    )
    report = MissingAccessFixer().propose(repo.workflow_context([failure], sha)).unrepaired[0]
    assert report.startswith("secret PYPI_API_TOKEN is missing")
    assert "Environments > production" in report and f"{CI}:22" in report


def test_missing_permission_names_the_scope_and_the_place(repo, config_failure):
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
    report = MissingAccessFixer().propose(repo.workflow_context([failure], sha)).unrepaired[0]
    assert "`pull-requests: write`" in report or "`issues: write`" in report
    assert "jobs.comment.permissions" in report and CI in report
    assert "contents" in report  # what the workflow grants today


def test_workflow_files_cannot_be_pushed_with_the_token(repo, config_failure):
    sha = repo.commit({CI: SECRETS}, "x")
    failure = config_failure(
        recipe="escalate-permission",
        evidence=["refusing to allow a GitHub App to create or update workflow"],
        job="test",
    )
    report = MissingAccessFixer().propose(repo.workflow_context([failure], sha)).unrepaired[0]
    assert "`workflows` permission" in report
