from __future__ import annotations

import subprocess

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.models import Failure
from cicd_orchestrator.repair import project_tools
from cicd_orchestrator.repair.formatters import BlackFixer
from cicd_orchestrator.repair.project_tools import Pin, pinned_version

#: whole attempts, real tool installs: the slow tier (`make test-slow`)
pytestmark = pytest.mark.slow


def write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


PRE_COMMIT = """repos:
  - repo: https://github.com/psf/black-pre-commit-mirror
    rev: 24.2.0
    hooks: [{id: black}]
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: v0.4.4
    hooks: [{id: ruff}, {id: ruff-format}]
"""


@pytest.mark.parametrize(
    ("files", "tool", "expected"),
    [
        (
            {".pre-commit-config.yaml": PRE_COMMIT},
            "black",
            Pin("black", "24.2.0", ".pre-commit-config.yaml"),
        ),
        (
            {".pre-commit-config.yaml": PRE_COMMIT},
            "ruff",
            Pin("ruff", "0.4.4", ".pre-commit-config.yaml"),
        ),
        (
            {"requirements-dev.txt": "pytest>=8\nblack[jupyter] == 23.12.1  # style\n"},
            "black",
            Pin("black", "23.12.1", "requirements-dev.txt"),
        ),
        (
            {"requirements/lint.txt": "isort==5.13.2\n"},
            "isort",
            Pin("isort", "5.13.2", "requirements/lint.txt"),
        ),
        (
            {
                "pyproject.toml": '[project]\nname="x"\n'
                '[project.optional-dependencies]\ndev=["ruff==0.5.0"]\n'
            },
            "ruff",
            Pin("ruff", "0.5.0", "pyproject.toml"),
        ),
        (
            {"pyproject.toml": '[dependency-groups]\nlint = ["black==24.4.2", "mypy"]\n'},
            "black",
            Pin("black", "24.4.2", "pyproject.toml"),
        ),
        (
            {"pyproject.toml": '[tool.poetry.group.dev.dependencies]\nblack = "23.3.0"\n'},
            "black",
            Pin("black", "23.3.0", "pyproject.toml"),
        ),
        (
            {
                "tox.ini": "[testenv:lint]\ndeps =\n    flake8\n    black==22.12.0\n"
                "commands = black --check .\n"
            },
            "black",
            Pin("black", "22.12.0", "tox.ini"),
        ),
        (
            {"setup.cfg": "[options.extras_require]\ndev =\n    isort==5.12.0\n"},
            "isort",
            Pin("isort", "5.12.0", "setup.cfg"),
        ),
    ],
)
def test_a_tool_s_pin_is_read_where_projects_write_it(tmp_path, files, tool, expected):
    write(tmp_path, files)
    assert pinned_version(tmp_path, tool) == expected


@pytest.mark.parametrize(
    "files",
    [
        {"requirements.txt": "black>=23\n"},
        {"requirements.txt": "# black==23.1.0\n"},
        {"requirements.txt": "blacken-docs==1.16.0\n"},
        {"pyproject.toml": '[tool.poetry.group.dev.dependencies]\nblack = "^23.3"\n'},
        {
            ".pre-commit-config.yaml": "repos:\n  - repo: https://github.com/psf/black\n"
            "    rev: main\n"
        },
        {"pyproject.toml": "not toml ["},
        {},
    ],
)
def test_ranges_branches_other_tools_and_bad_files_pin_nothing(tmp_path, files):
    write(tmp_path, files)
    assert pinned_version(tmp_path, "black") is None


def test_a_linked_requirement_file_is_not_read(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("black==22.12.0\n")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "requirements-dev.txt").symlink_to(outside)
    assert pinned_version(root, "black") is None


def test_a_version_that_cannot_be_installed_falls_back_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    write(tmp_path / "repo", {"requirements-dev.txt": "black==0.0.0.1\n"})
    project_tools.environment.cache_clear()
    if runner_tools.python() is None:
        pytest.skip("no runner tool folder (make runner-tools)")
    choice = project_tools.choose(tmp_path / "repo", "black")
    assert choice.readable == ()
    assert "requirements-dev.txt pins black 0.0.0.1" in choice.note
    assert "could not be installed" in choice.note
    assert not (tmp_path / "cache" / "tools" / "black-0.0.0.1").exists()


@pytest.mark.parametrize("bad", [("black; rm -rf /", "1.0"), ("black", "1.0 --index-url x")])
def test_a_tool_or_version_that_is_not_a_plain_name_is_refused(bad):
    with pytest.raises(project_tools.ToolInstallError):
        project_tools.environment(*bad)


# black 22 puts the ``...`` body of a function on its own line; black 24 and later keep
# ``def f(): ...`` on one line: the project's pin decides what its CI accepts
STUB = "def f( ): ...\n"
BLACK_22 = "def f():\n    ...\n"


@pytest.mark.skipif(runner_tools.python() is None, reason="no runner tool folder")
def test_black_runs_at_the_version_the_project_pins(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    project_tools.environment.cache_clear()
    sha = repo.commit({"a.py": STUB, "requirements-dev.txt": "black==22.12.0\n"}, "stub")
    bad = Failure(
        job="lint",
        job_id=1,
        run_id=1,
        step="Lint",
        category=FailureCategory.QUALITY,
        confidence=0.9,
        signature="s",
        recipe="black",
        pattern="black-check",
        evidence=["would reformat a.py"],
    )
    try:
        project_tools.environment("black", "22.12.0")
    except project_tools.ToolInstallError as exc:
        pytest.skip(f"the package index has no black 22.12.0 here: {exc}")
    result = BlackFixer().propose(repo.context([bad], sha))
    repair = result.repairs[0]
    assert "black 22.12.0, as requirements-dev.txt pins it" in repair.description
    applied = subprocess.run(
        ["git", "apply", "--check", "-"], input=repair.patch, text=True, cwd=repo.path
    )
    assert applied.returncode == 0
    assert "+    ..." in repair.patch and BLACK_22.splitlines()[0] in repair.patch
