from __future__ import annotations

from cicd_orchestrator.constants import RepairKind
from cicd_orchestrator.repair.workflow_path import WorkflowPathFixer

CI = ".github/workflows/ci.yml"

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


def path_failure(config_failure, path="/home/runner/work/app/app/scripts/deploy_docs.py"):
    return config_failure(
        pattern="workflow-wrong-path",
        captures={"file": path},
        evidence=[f"python: can't open file '{path}': [Errno 2] No such file or directory"],
        job="docs",
    )


def test_wrong_path_with_one_candidate_is_corrected_on_its_line_only(repo, config_failure):
    sha = repo.commit({CI: PATHS, "tools/deploy_docs.py": "print('deploy')\n"}, "moved")
    result = WorkflowPathFixer().propose(repo.workflow_context([path_failure(config_failure)], sha))
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.confidence == 0.5
    assert "step 'Deploy the docs'" in repair.description and f"{CI}:10" in repair.description
    expected = PATHS.replace("python scripts/deploy_docs.py", "python tools/deploy_docs.py")
    assert repo.applied_bytes(sha, repair.patch, CI) == expected.encode()


def test_wrong_path_with_several_candidates_is_reported(repo, config_failure):
    sha = repo.commit(
        {CI: PATHS, "tools/deploy_docs.py": "", "old/deploy_docs.py": ""}, "two candidates"
    )
    result = WorkflowPathFixer().propose(repo.workflow_context([path_failure(config_failure)], sha))
    assert not result.repairs
    report = result.unrepaired[0]
    assert "step 'Deploy the docs'" in report and "scripts/deploy_docs.py" in report
    assert "tools/deploy_docs.py" in report and "old/deploy_docs.py" in report


def test_wrong_path_without_any_candidate_is_reported(repo, config_failure):
    sha = repo.commit({CI: PATHS}, "gone")
    result = WorkflowPathFixer().propose(repo.workflow_context([path_failure(config_failure)], sha))
    assert not result.repairs and "no file of that name" in result.unrepaired[0]
