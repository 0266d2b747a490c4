from __future__ import annotations

from cicd_orchestrator.git import checkout
from cicd_orchestrator.repair.workflows import failing_job_text

CI = ".github/workflows/ci.yml"
JOBS = """on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pytest
  publish-docs:
    runs-on: ubuntu-latest
    steps:
      - env:
          DOCS_TOKEN: ${{ secrets.DOCS_TOKEN }}
        run: python scripts/publish_docs.py
  release:
    runs-on: ubuntu-latest
    steps:
      - run: twine upload --password "${{ secrets.PYPI_API_TOKEN }}" dist/*
"""


def test_the_failing_job_text_is_its_own_block(repo):
    sha = repo.commit({CI: JOBS}, "x")
    with checkout(repo.path, sha) as ws:
        text = failing_job_text(ws.path, CI, "publish-docs")
        assert "DOCS_TOKEN" in text and "PYPI_API_TOKEN" not in text and "pytest" not in text
        assert "PYPI_API_TOKEN" in failing_job_text(ws.path, CI, "no such job")
