from __future__ import annotations

import dataclasses
import shutil
import stat

import pytest

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Excerpt, Failure
from cicd_orchestrator.repair import formatters
from cicd_orchestrator.repair.formatters import (
    BlackFixer,
    EslintFixer,
    IsortFixer,
    PreCommitFixer,
    PrettierFixer,
    eslint_problems,
    resolve_path,
)
from cicd_orchestrator.repair.js_format import JsFormatFixer

NEW_FIXERS = ("black", "isort", "pre-commit", "prettier", "eslint")
UGLY = 'def  f( a,b ):\n    return {"a":a,"b":b}\n'
PRETTY = 'def f(a, b):\n    return {"a": a, "b": b}\n'
UNSORTED = "import sys\nimport os\n\nprint(os, sys)\n"
WORKFLOW = """name: ci
on: [push]
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: {command}
  test:
    runs-on: ubuntu-latest
    steps:
      - run: pytest -q
"""
needs_black = pytest.mark.skipif(not formatters.python_tool("black"), reason="black missing")
needs_isort = pytest.mark.skipif(not formatters.python_tool("isort"), reason="isort missing")
needs_pre_commit = pytest.mark.skipif(
    not formatters.python_tool("pre_commit"), reason="pre-commit missing"
)
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not available")


def failure(evidence, recipe="none", pattern=None, job="lint", step="Lint", excerpt=""):
    return Failure(
        job=job,
        job_id=1,
        run_id=1,
        step=step,
        category=FailureCategory.QUALITY,
        confidence=0.9,
        signature="s",
        pattern=pattern,
        recipe=recipe,
        evidence=list(evidence),
        excerpts=[Excerpt(1, 2, excerpt)] if excerpt else [],
    )


def context(repo, failures, sha, workflow_path=""):
    ctx = repo.enable(repo.context(failures, sha), *NEW_FIXERS)
    ctx.workflow_path = workflow_path
    return ctx


def applied(repo, sha, patch, path):
    return repo.applied_bytes(sha, patch, path).decode()


def executable(repo, path, text):
    target = repo.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(target.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)


# --------------------------------------------------------------------------- helpers
def test_runner_paths_map_back_onto_the_repository(tmp_path):
    (tmp_path / "src" / "app").mkdir(parents=True)
    (tmp_path / "src" / "app" / "models.py").write_text("")
    assert resolve_path("/home/runner/work/app/app/src/app/models.py", tmp_path) == (
        "src/app/models.py"
    )
    assert resolve_path("./src/app/models.py", tmp_path) == "src/app/models.py"
    assert resolve_path("/home/runner/work/app/app/src/gone.py", tmp_path) is None
    assert resolve_path("../../etc/passwd", tmp_path) is None


def test_eslint_problems_from_json_and_stylish(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.js").write_text("")
    js = (
        '[{"filePath": "/ci/web/src/app.js", "messages": ['
        '{"line": 3, "column": 10, "severity": 2, "ruleId": "no-unused-vars",'
        ' "message": "x is unused"}, {"line": 1, "column": 1, "severity": 1}]}]'
    )
    assert eslint_problems(js, tmp_path) == ["src/app.js:3:10 no-unused-vars: x is unused"]
    stylish = "/ci/web/src/app.js\n  3:10  error  'x' is unused  no-unused-vars\n"
    assert eslint_problems(stylish, tmp_path) == ["src/app.js:3:10 no-unused-vars: 'x' is unused"]


# --------------------------------------------------------------------------- black, isort
@needs_black
def test_black_formats_only_the_reported_file(repo):
    sha = repo.commit({"pkg/a.py": UGLY, "pkg/b.py": UGLY, "pkg/__init__.py": ""}, "ugly")
    bad = failure(
        ["would reformat /home/runner/work/shop/shop/pkg/a.py", "Oh no! 💥 💔 💥"],
        recipe="black",
        pattern="black-check",
    )
    result = BlackFixer().propose(context(repo, [bad], sha))
    assert result.applicable and not result.unrepaired
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.fixer == "black"
    assert repair.files == ["pkg/a.py"] and "pkg/b.py" not in repair.patch
    assert repair.commit_message and repair.evidence
    assert applied(repo, sha, repair.patch, "pkg/a.py") == PRETTY


@needs_black
def test_black_formats_the_whole_tree_when_no_file_is_named(repo):
    sha = repo.commit({"a.py": UGLY, "sub/b.py": UGLY, "ok.py": PRETTY}, "ugly")
    bad = failure(["Oh no! 💥 💔 💥", "2 files would be reformatted."], recipe="black")
    result = BlackFixer().propose(context(repo, [bad], sha))
    assert sorted(result.repairs[0].files) == ["a.py", "sub/b.py"]


@needs_black
def test_black_reports_a_file_it_cannot_parse(repo):
    sha = repo.commit({"broken.py": "x = (\n", "a.py": PRETTY}, "broken")
    bad = failure(["error: cannot format broken.py: Cannot parse: 1:5"], recipe="black")
    result = BlackFixer().propose(context(repo, [bad], sha))
    assert not result.repairs
    assert any("broken.py:1" in u and "cannot format" in u for u in result.unrepaired)


def test_black_not_installed_is_reported_not_installed_at_run_time(repo, monkeypatch):
    sha = repo.commit({"a.py": UGLY}, "ugly")
    monkeypatch.setattr(formatters, "python_tool", lambda module: False)
    bad = failure(["would reformat a.py"], recipe="black")
    result = BlackFixer().propose(context(repo, [bad], sha))
    assert not result.repairs
    assert "black is not available" in result.unrepaired[0] and "a.py" in result.unrepaired[0]


def test_black_ignores_other_recipes_and_disabled_config(repo):
    sha = repo.commit({"a.py": UGLY}, "ugly")
    other = failure(["would reformat a.py"], recipe="ruff-format")
    assert not BlackFixer().propose(context(repo, [other], sha)).applicable
    mine = failure(["would reformat a.py"], recipe="black")
    ctx = context(repo, [mine], sha)
    ctx.config = dataclasses.replace(ctx.config, enabled_fixers=("ruff-fix",))
    assert not BlackFixer().propose(ctx).repairs


@needs_isort
def test_isort_sorts_only_the_reported_file(repo):
    sha = repo.commit({"a.py": UNSORTED, "b.py": UNSORTED}, "unsorted")
    bad = failure(
        ["ERROR: /home/runner/work/x/x/a.py Imports are incorrectly sorted and/or formatted."],
        recipe="isort",
        pattern="isort-check",
    )
    result = IsortFixer().propose(context(repo, [bad], sha))
    repair = result.repairs[0]
    assert repair.fixer == "isort" and repair.files == ["a.py"]
    assert applied(repo, sha, repair.patch, "a.py").startswith("import os\nimport sys\n")


# --------------------------------------------------------------------------- pre-commit
PRE_COMMIT_CONFIG = """repos:
  - repo: local
    hooks:
      - id: black
        name: black
        entry: python -m black
        language: system
        types: [python]
      - id: no-print
        name: no print statements
        entry: 'print\\('
        language: pygrep
        types: [python]
"""


CHANGED_ONLY = "pre-commit run --from-ref origin/main --to-ref HEAD"


def pre_commit_failure(step="Run pre-commit run --all-files"):
    return failure(
        ["black....................................................................Failed"],
        pattern="pre-commit-hook-failed",
        step=step,
        excerpt="- hook id: black\n- files were modified by this hook\nreformatted a.py",
    )


@needs_pre_commit
@needs_black
def test_pre_commit_runs_the_repository_hooks_and_reports_what_they_cannot_fix(repo):
    sha = repo.commit(
        {
            ".pre-commit-config.yaml": PRE_COMMIT_CONFIG,
            ".github/workflows/ci.yml": WORKFLOW.format(command=CHANGED_ONLY),
            "a.py": UGLY,
            "b.py": UGLY,
            "c.py": "print('debug')\n",
        },
        "hooks",
    )
    bad = pre_commit_failure(step=f"Run {CHANGED_ONLY}")
    ctx = context(repo, [bad], sha, ".github/workflows/ci.yml")
    result = PreCommitFixer().propose(ctx)
    repair = result.repairs[0]
    assert repair.fixer == "pre-commit" and repair.kind is RepairKind.CHANGE
    # scoped to the file the hook output named
    assert repair.files == ["a.py"]
    assert applied(repo, sha, repair.patch, "a.py") == PRETTY
    assert not any("no print" in u for u in result.unrepaired)


@needs_pre_commit
@needs_black
def test_pre_commit_checks_every_file_when_the_job_did(repo):
    sha = repo.commit(
        {
            ".pre-commit-config.yaml": PRE_COMMIT_CONFIG,
            ".github/workflows/ci.yml": WORKFLOW.format(command="pre-commit run --all-files"),
            "a.py": UGLY,
            "b.py": UGLY,
        },
        "hooks",
    )
    ctx = context(repo, [pre_commit_failure(step="Lint")], sha, ".github/workflows/ci.yml")
    result = PreCommitFixer().propose(ctx)
    assert sorted(result.repairs[0].files) == ["a.py", "b.py"] and not result.unrepaired


@needs_pre_commit
@needs_black
def test_pre_commit_reports_a_hook_without_a_fix(repo):
    sha = repo.commit(
        {".pre-commit-config.yaml": PRE_COMMIT_CONFIG, "a.py": UGLY, "c.py": 'print("x")\n'},
        "hooks",
    )
    bad = failure(
        ["no print statements......................................................Failed"],
        pattern="pre-commit-hook-failed",
        step="pre-commit",
    )
    result = PreCommitFixer().propose(context(repo, [bad], sha))
    assert result.repairs and sorted(result.repairs[0].files) == ["a.py"]  # whole tree
    assert result.repairs[0].confidence == 0.5
    hooks = [u for u in result.unrepaired if "no print statements" in u]
    assert hooks and "no-print" in hooks[0] and "c.py:1" in hooks[0]


def test_pre_commit_needs_a_configuration_and_a_job_that_ran_it(repo):
    sha = repo.commit({"a.py": UGLY}, "no config")
    result = PreCommitFixer().propose(context(repo, [pre_commit_failure()], sha))
    assert not result.applicable and not result.repairs
    sha = repo.commit(
        {
            ".pre-commit-config.yaml": PRE_COMMIT_CONFIG,
            ".github/workflows/ci.yml": WORKFLOW.format(command="ruff check ."),
        },
        "config",
    )
    ruff_fail = failure(["a.py:1:8: F401 [*] `os` imported but unused"], recipe="ruff-fix")
    ctx = context(repo, [ruff_fail], sha, ".github/workflows/ci.yml")
    assert not PreCommitFixer().propose(ctx).applicable


def test_pre_commit_not_installed_is_said(repo, monkeypatch):
    sha = repo.commit({".pre-commit-config.yaml": PRE_COMMIT_CONFIG, "a.py": UGLY}, "x")
    monkeypatch.setattr(formatters, "python_tool", lambda module: False)
    result = PreCommitFixer().propose(context(repo, [pre_commit_failure()], sha))
    assert result.applicable and not result.repairs
    assert "pre-commit is not installed" in result.unrepaired[0]


@needs_pre_commit
def test_black_defers_to_the_hooks_when_the_job_runs_pre_commit(repo):
    sha = repo.commit(
        {
            ".pre-commit-config.yaml": PRE_COMMIT_CONFIG,
            ".github/workflows/ci.yml": WORKFLOW.format(command="pre-commit run --all-files"),
            "a.py": UGLY,
        },
        "x",
    )
    bad = failure(["would reformat a.py"], recipe="black", job="lint", step="Run black")
    ctx = context(repo, [bad], sha, ".github/workflows/ci.yml")
    result = BlackFixer().propose(ctx)
    assert not result.applicable and not result.repairs


# --------------------------------------------------------------------------- prettier, eslint
FAKE_PRETTIER = """#!/bin/sh
# a stand-in for prettier --write: squeezes repeated spaces of the files it is given
[ "$1" = "--write" ] || exit 2
shift
for f in "$@"; do
  [ -f "$f" ] && sed -i 's/  */ /g' "$f"
done
exit 0
"""
FAKE_ESLINT = """#!/bin/sh
# a stand-in for eslint: --fix removes doubled semicolons; --format json reports the rest
if [ "$1" = "--fix" ]; then
  shift
  for f in "$@"; do [ -f "$f" ] && sed -i 's/;;/;/g' "$f"; done
  exit 1
fi
echo '[{"filePath": "'"$PWD"'/src/app.js", "messages": [{"line": 3, "column": 7,
 "severity": 2, "ruleId": "no-unused-vars", "message": "unused is never used"}]}]'
exit 1
"""
JS = "const a = 1;;\nconsole.log(a);\nconst unused  =  2;\n"


@needs_node
def test_prettier_runs_the_repository_binary_on_the_reported_file(repo):
    executable(repo, "node_modules/.bin/prettier", FAKE_PRETTIER)
    sha = repo.commit(
        {
            "src/app.js": JS,
            "src/other.js": JS,
            ".github/workflows/ci.yml": WORKFLOW.format(command="npx prettier --check src"),
        },
        "js",
    )
    bad = failure(
        ["[warn] src/app.js", "[warn] Code style issues found in the above file."],
        pattern="prettier-check",
    )
    result = PrettierFixer().propose(context(repo, [bad], sha, ".github/workflows/ci.yml"))
    repair = result.repairs[0]
    assert repair.fixer == "prettier" and repair.files == ["src/app.js"]
    assert "const unused = 2;" in applied(repo, sha, repair.patch, "src/app.js")


@needs_node
def test_prettier_not_in_the_repository_is_left_to_the_project_s_version(repo):
    """Without node_modules the repository's prettier cannot run; the version the project
    declares would be installed (js-format), and a project that declares none is told so."""
    sha = repo.commit(
        {
            "src/app.js": JS,
            "package.json": '{"scripts": {"format:check": "prettier --check ."}}',
            ".github/workflows/ci.yml": WORKFLOW.format(command="npm run format:check"),
        },
        "js",
    )
    bad = failure(["[warn] src/app.js"], pattern="prettier-check")
    ctx = context(repo, [bad], sha, ".github/workflows/ci.yml")
    result = PrettierFixer().propose(ctx)
    assert not result.repairs and not result.unrepaired
    js = JsFormatFixer().propose(ctx)
    assert not js.repairs
    assert any("does not declare prettier" in note for note in js.unrepaired), js.unrepaired


def test_prettier_only_when_the_failing_job_used_it(repo):
    sha = repo.commit(
        {"src/app.js": JS, ".github/workflows/ci.yml": WORKFLOW.format(command="make check")},
        "js",
    )
    bad = failure(["[warn] src/app.js"], pattern="prettier-check")
    result = PrettierFixer().propose(context(repo, [bad], sha, ".github/workflows/ci.yml"))
    assert not result.applicable and not result.repairs


@needs_node
def test_eslint_fixes_what_it_can_and_reports_the_rest_with_location(repo):
    executable(repo, "node_modules/.bin/eslint", FAKE_ESLINT)
    sha = repo.commit(
        {
            "src/app.js": JS,
            ".github/workflows/ci.yml": WORKFLOW.format(command="npx eslint src"),
        },
        "js",
    )
    bad = failure(
        ["  1:13  error  Unnecessary semicolon  no-extra-semi", "✖ 2 problems (2 errors)"],
        pattern="eslint-error",
        excerpt="/home/runner/work/web/web/src/app.js\n  1:13  error  x  no-extra-semi",
    )
    result = EslintFixer().propose(context(repo, [bad], sha, ".github/workflows/ci.yml"))
    repair = result.repairs[0]
    assert repair.fixer == "eslint" and repair.files == ["src/app.js"]
    assert applied(repo, sha, repair.patch, "src/app.js").startswith("const a = 1;\n")
    assert result.unrepaired == [
        "eslint: no safe fix: src/app.js:3:7 no-unused-vars: unused is never used"
    ]
    assert repair.confidence == 0.5


@needs_black
def test_a_job_that_installs_pre_commit_but_runs_black_gets_black(repo):
    """Installing pre-commit (or naming it in a comment) is not running its hooks: the
    formatter the job ran repairs the failure; a job that runs the hooks defers to them."""
    workflow = """on: [push]
jobs:
  lint:
    steps:
      - name: Install pre-commit
        run: pip install pre-commit
      - name: run linters
        # pre-commit also runs elsewhere
        run: |
          black --check --diff .
"""
    sha = repo.commit(
        {
            ".pre-commit-config.yaml": PRE_COMMIT_CONFIG,
            ".github/workflows/ci.yml": workflow,
            "a.py": UGLY,
        },
        "black job",
    )
    bad = failure(["would reformat a.py", "Oh no! 💥 💔 💥"], recipe="black", job="lint")
    result = BlackFixer().propose(context(repo, [bad], sha, ".github/workflows/ci.yml"))
    assert [r.fixer for r in result.repairs] == ["black"], result.unrepaired
    hooks = repo.commit(
        {".github/workflows/ci.yml": WORKFLOW.format(command="pre-commit run --all-files")},
        "hooks job",
    )
    deferred = BlackFixer().propose(context(repo, [bad], hooks, ".github/workflows/ci.yml"))
    if formatters.python_tool("pre_commit"):
        assert not deferred.repairs
