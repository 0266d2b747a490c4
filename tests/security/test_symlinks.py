"""Finding 10: a repository's requirements file, manifest or workflow is a symbolic link to a
file outside the clone (one holding a canary). The in-process fixers neither read it (the
canary is in no patch, note or evidence) nor write through it (the outside file is
unchanged); the link is left alone and reported."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace, checkout
from cicd_orchestrator.models import Context, DependencyChange, Failure, FixerResult
from cicd_orchestrator.repair.action_upgrade import ActionUpgradeFixer
from cicd_orchestrator.repair.dependency import MissingDependencyFixer
from cicd_orchestrator.repair.k8s import KubernetesSchemaFixer
from cicd_orchestrator.repair.llm import LLMPatchFixer
from cicd_orchestrator.repair.manifest import ManifestFixer
from cicd_orchestrator.repair.pinning import PinDependencyFixer
from cicd_orchestrator.repair.quarantine import QuarantineFixer

CANARY = "CANARY-7f3a9c"
WORKFLOW = ".github/workflows/ci.yml"
LINK_NOTE = "is a symbolic link: left alone"

OUTSIDE = {
    "requirements.txt": f"requests==2.32.0  # {CANARY}\nflask\n",
    "ci.yml": (
        f"# {CANARY}\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v3\n      - run: pip install -r requirements.txt\n"
    ),
    "app.yaml": f"# {CANARY}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n",
    "deploy.yaml": (
        f"# {CANARY}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
        'spec:\n  replicas: "3"\n  selector: {}\n  template:\n    spec:\n      containers: []\n'
    ),
    "calc.py": f"SECRET = '{CANARY}'\ndef add(a, b)\n    return a + b\n",
    "flaky-tests.txt": f"{CANARY}\n",
}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Files outside every clone, each holding the canary (and a folder of them)."""
    folder = tmp_path / "outside"
    (folder / "dir").mkdir(parents=True)
    for name, text in OUTSIDE.items():
        (folder / name).write_text(text)
        (folder / "dir" / name).write_text(text)
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _said(result: FixerResult) -> str:
    parts = list(result.unrepaired)
    for r in result.repairs:
        parts += [r.patch, r.description, r.commit_message, *r.notes, *r.evidence, *r.files]
    return "\n".join(parts)


def _linked_repo(git_repo: Any, outside: Path, links: dict[str, str], files: dict[str, str]) -> str:
    """Commit ``files`` and, for each ``links`` entry, a symbolic link to the outside file."""
    git_repo.write(files, dedent=False)
    for rel, target in links.items():
        path = git_repo.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(outside / target, path)
    return str(git_repo.commit({}, "links"))


def _failure(category: FailureCategory, recipe: str | None = None, **captures: Any) -> Failure:
    return Failure(
        job="test",
        job_id=1,
        run_id=1,
        step="Run tests",
        category=category,
        confidence=0.9,
        signature="s",
        recipe=recipe,
        captures=captures,
        evidence=["the job failed"],
    )


def _check(result: FixerResult, outside: Path, before: dict[str, bytes]) -> None:
    assert _snapshot(outside) == before, "a fixer wrote through a link"
    assert CANARY not in _said(result), "a fixer read through a link"
    assert any(LINK_NOTE in u for u in result.unrepaired), result.unrepaired


def test_a_linked_requirements_file_and_workflow_are_neither_read_nor_written(
    git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = _linked_repo(
        git_repo,
        outside,
        {"requirements.txt": "requirements.txt", WORKFLOW: "ci.yml"},
        {"app.py": "import yaml\n"},
    )
    before = _snapshot(outside)
    ctx = fixer_context(
        git_repo, [_failure(FailureCategory.BUILD, "add-requirement", module="yaml")], sha
    )
    ctx.workflow_path = WORKFLOW
    result = MissingDependencyFixer().propose(ctx)
    assert not result.repairs
    _check(result, outside, before)


def test_a_linked_requirements_file_is_not_pinned_through(
    git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = _linked_repo(
        git_repo, outside, {"requirements.txt": "requirements.txt"}, {"app.py": "import x\n"}
    )
    before = _snapshot(outside)
    context = Context(
        failing_sha=sha,
        last_green_sha="0" * 40,
        dependency_changes=[DependencyChange("requests", "2.31.0", "2.32.0")],
    )
    failure = _failure(FailureCategory.BUILD, "pin-dependency", module="requests.adapters")
    result = PinDependencyFixer().propose(fixer_context(git_repo, [failure], sha, context))
    assert not result.repairs
    _check(result, outside, before)


@pytest.mark.parametrize("fixer", [ManifestFixer, KubernetesSchemaFixer])
def test_linked_manifests_and_folders_are_neither_read_nor_written(
    fixer: Any, git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = _linked_repo(
        git_repo,
        outside,
        {"deploy/app.yaml": "app.yaml", "deploy/web.yaml": "deploy.yaml", "k8s": "dir"},
        {"deploy/ok.yaml": "a: 1\n"},
    )
    before = _snapshot(outside)
    result = fixer().propose(fixer_context(git_repo, [_failure(FailureCategory.DEPLOYMENT)], sha))
    assert not result.repairs
    _check(result, outside, before)
    assert any(u.startswith("k8s ") for u in result.unrepaired)


def test_a_linked_workflow_is_not_upgraded_through(
    git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = _linked_repo(git_repo, outside, {WORKFLOW: "ci.yml"}, {"README.md": "x\n"})
    before = _snapshot(outside)
    failure = _failure(FailureCategory.CONFIGURATION, "upgrade-action")
    ctx = fixer_context(git_repo, [failure], sha)
    ctx.workflow_path = WORKFLOW
    result = ActionUpgradeFixer().propose(ctx)
    assert not result.repairs
    _check(result, outside, before)


def test_a_linked_skip_list_is_not_appended_to(
    git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = _linked_repo(
        git_repo,
        outside,
        {"flaky-tests.txt": "flaky-tests.txt"},
        {
            "conftest.py": "SKIP = open('flaky-tests.txt')\n",
            "tests/test_a.py": "def test_x(): pass\n",
        },
    )
    before = _snapshot(outside)
    failure = _failure(FailureCategory.FLAKY, test="tests/test_a.py::test_x")
    failure.repeated_after_rerun = True
    ctx = fixer_context(git_repo, [failure], sha, quarantine_flaky=True)
    result = QuarantineFixer().propose(ctx)
    assert _snapshot(outside) == before and CANARY not in _said(result)
    # the link is no skip list: the test gets a marker in its own file instead
    assert [r.files for r in result.repairs] == [["tests/test_a.py"]]


def test_a_linked_source_file_stays_out_of_the_llm_prompt(
    git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = _linked_repo(git_repo, outside, {"app/calc.py": "calc.py"}, {"app/__init__.py": ""})
    before = _snapshot(outside)
    prompts: list[str] = []

    class Agent:
        def run_sync(self, prompt: str) -> str:
            prompts.append(prompt)
            return "NO_PATCH"

    failure = _failure(FailureCategory.TEST, file="app/calc.py")
    failure.message = "SyntaxError in app/calc.py line 2"
    ctx = fixer_context(git_repo, [failure], sha, llm_conn_id="llm")
    result = LLMPatchFixer(agent_factory=lambda conn_id, instructions: Agent()).propose(ctx)
    [prompt] = prompts
    assert CANARY not in prompt and "--- app/calc.py" not in prompt
    _check(result, outside, before)


@contextlib.contextmanager
def _hard_linked(repo: Any, sha: str, target: Path) -> Iterator[Workspace]:
    """A workspace where a repository command replaced requirements.txt with a hard link to
    ``target`` (no sandbox: nothing keeps it in the work tree)."""
    with checkout(repo.path, sha) as ws:
        (ws.path / "requirements.txt").unlink()
        os.link(target, ws.path / "requirements.txt")
        yield ws


def test_a_hard_link_a_command_made_is_neither_read_nor_written(
    git_repo: Any, outside: Path, fixer_context: Any
) -> None:
    sha = git_repo.commit({"requirements.txt": "flask\n", "app.py": "import yaml\n"}, "init")
    before = _snapshot(outside)
    failure = _failure(FailureCategory.BUILD, "add-requirement", module="yaml")
    ctx = fixer_context(git_repo, [failure], sha)
    ctx.workspace = lambda: _hard_linked(git_repo, sha, outside / "requirements.txt")
    result = MissingDependencyFixer().propose(ctx)
    assert _snapshot(outside) == before and CANARY not in _said(result)
    assert "requirements.txt has other hard links: left alone" in result.unrepaired
