from __future__ import annotations

import pytest

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Failure
from cicd_orchestrator.repair.dependency import MissingDependencyFixer, distribution_for
from cicd_orchestrator.repair.flaky import FlakyTestFixer
from cicd_orchestrator.repair.manifest import ManifestFixer, duplicate_keys, fix_whitespace
from cicd_orchestrator.repair.workspace import checkout

WORKFLOW = """name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pip install -r requirements/base.txt
"""


def failure(category, recipe=None, job="test", **captures):
    return Failure(
        job=job,
        job_id=1,
        run_id=1,
        step=None,
        category=category,
        confidence=0.9,
        signature="s",
        recipe=recipe,
        captures=captures,
    )


@pytest.mark.parametrize(
    "module,dist",
    [
        ("yaml", "PyYAML"),
        ("PIL.Image", "Pillow"),
        ("cv2", "opencv-python"),
        ("sklearn.linear_model", "scikit-learn"),
        ("jsonschema", "jsonschema"),
        ("os", None),
    ],
)
def test_distribution_names(module, dist):
    assert distribution_for(module) == dist


def test_missing_module_goes_to_the_requirements_file_the_workflow_installs(repo):
    sha = repo.commit(
        {
            ".github/workflows/ci.yml": WORKFLOW,
            "requirements/base.txt": "requests==2.0\n",
            "requirements.txt": "# unused\n",
        },
        "init",
    )
    ctx = repo.context([failure(FailureCategory.BUILD, "add-requirement", module="yaml")], sha)
    ctx.workflow_path = ".github/workflows/ci.yml"
    result = MissingDependencyFixer().propose(ctx)
    repair = result.repairs[0]
    assert repair.files == ["requirements/base.txt"]
    assert "+PyYAML==" in repair.patch  # pinned like its neighbours


def test_missing_module_goes_to_pyproject_without_requirements(repo):
    sha = repo.commit(
        {
            "pyproject.toml": '[project]\nname = "x"\ndependencies = ["requests"]\n'
            "\n[tool.ruff]\nline-length = 100\n"
        },
        "init",
    )
    ctx = repo.context([failure(FailureCategory.BUILD, "add-requirement", module="bs4")], sha)
    repair = MissingDependencyFixer().propose(ctx).repairs[0]
    with checkout(repo.path, sha) as ws:
        assert ws.apply(repair.patch)
        import tomllib

        data = tomllib.loads((ws.path / "pyproject.toml").read_text())
    assert data["project"]["dependencies"] == ["requests", "beautifulsoup4"]
    assert data["tool"]["ruff"]["line-length"] == 100


def test_declared_requirement_is_not_added_twice(repo):
    sha = repo.commit({"requirements.txt": "pyyaml>=6\n"}, "init")
    ctx = repo.context([failure(FailureCategory.BUILD, "add-requirement", module="yaml")], sha)
    result = MissingDependencyFixer().propose(ctx)
    assert not result.repairs and "already declared" in result.unrepaired[0]


MANIFEST = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
    "  replicas: 3\n  template:\n\tspec: {}   \n"
)


def test_tab_indentation_is_repaired(repo):
    sha = repo.commit({"deploy/app.yaml": MANIFEST, "deploy/ok.yaml": "a: 1\n"}, "init")
    result = ManifestFixer().propose(repo.context([failure(FailureCategory.DEPLOYMENT)], sha))
    repair = result.repairs[0]
    assert repair.files == ["deploy/app.yaml"] and repair.kind is RepairKind.CHANGE
    assert fix_whitespace(MANIFEST).endswith("  template:\n  spec: {}\n")


def test_duplicated_keys_are_reported_not_changed(repo):
    text = "a: 1\nb: 2\na: 3\n"
    assert duplicate_keys(text) == ["line 3: duplicated key 'a'"]
    sha = repo.commit({"k8s/x.yaml": text}, "init")
    result = ManifestFixer().propose(repo.context([failure(FailureCategory.DEPLOYMENT)], sha))
    assert not result.repairs
    assert result.unrepaired == ["k8s/x.yaml line 3: duplicated key 'a'"]


FLAKY_WF = """name: CI
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: python flip.py
"""
# fails on the first run in a fresh checkout directory, passes afterwards (state in $HOME)
FLIP = """import os, pathlib, sys
mark = pathlib.Path(os.environ["HOME"]) / "seen"
first = not mark.exists()
mark.write_text("x")
sys.exit(1 if first else 0)
"""


def test_flaky_test_is_confirmed_by_local_reruns_and_rerun(repo, tmp_path):
    sha = repo.commit(
        {
            ".github/workflows/ci.yml": FLAKY_WF,
            "flip.py": FLIP.replace('os.environ["HOME"]', f'"{tmp_path}"'),
        },
        "init",
    )
    f = failure(FailureCategory.TEST)
    f.tests = ["tests/test_x.py::test_y"]
    ctx = repo.context([f], sha)
    ctx.workflow_path = ".github/workflows/ci.yml"
    result = FlakyTestFixer().propose(ctx)
    repair = result.repairs[0]
    assert repair.kind is RepairKind.RERUN and repair.category is FailureCategory.FLAKY
    assert "tests/test_x.py::test_y" in repair.description


def test_deterministic_failure_is_not_called_flaky(repo):
    sha = repo.commit(
        {".github/workflows/ci.yml": FLAKY_WF, "flip.py": "raise SystemExit(1)\n"}, "init"
    )
    ctx = repo.context([failure(FailureCategory.TEST)], sha, flaky_local_reruns=2)
    ctx.workflow_path = ".github/workflows/ci.yml"
    result = FlakyTestFixer().propose(ctx)
    assert not result.repairs and "deterministic" in result.unrepaired[0]
