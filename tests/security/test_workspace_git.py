"""Finding 1 (and the clone part of finding 2): a repository command run in a workspace sets
``core.fsmonitor``, ``core.hooksPath``, a filter driver, hooks, or a ``.git`` pointing
elsewhere; the orchestrator's next ``git add``/``diff``/``commit`` in the workspace runs none
of it, and its change holds no ``.git`` and no repository planted by the command."""

from __future__ import annotations

import textwrap
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.git import Workspace, checkout
from cicd_orchestrator.process import run_command

APP = "def main():\n    return 1\n"
FIXED = "def main():\n    return 2\n"

# Every attack also makes the change a repair tool would make (app.py), so that the
# orchestrator has something to stage, diff and commit.
FIX_APP = f"""
import os, subprocess, sys
open("app.py", "w").write({FIXED!r})

def hook_script(name):
    return f"#!/bin/sh\\ntouch {{M}}/{{name}}\\n"

def plant_hooks(folder):
    os.makedirs(folder, exist_ok=True)
    for hook in ("pre-commit", "commit-msg", "prepare-commit-msg", "post-commit",
                 "post-index-change", "reference-transaction", "pre-auto-gc", "post-checkout"):
        path = os.path.join(folder, hook)
        open(path, "w").write(hook_script(os.path.basename(folder) + "-" + hook))
        os.chmod(path, 0o755)

def plant_repository(gitdir, config):
    for sub in ("objects", "refs/heads", "hooks", "info"):
        os.makedirs(os.path.join(gitdir, sub), exist_ok=True)
    open(os.path.join(gitdir, "HEAD"), "w").write("ref: refs/heads/main\\n")
    open(os.path.join(gitdir, "config"), "w").write(config)
    plant_hooks(os.path.join(gitdir, "hooks"))
"""

ATTACKS = {
    "fsmonitor": """
        # through git itself (no repository here: it fails), then by hand
        subprocess.run(["git", "config", "core.fsmonitor", f"touch {M}/fsmonitor-git"])
        plant_repository(".git", f"[core]\\n\\tfsmonitor = touch {M}/fsmonitor\\n")
    """,
    "hooks-path": """
        plant_hooks(os.path.abspath("planted-hooks"))
        hooks = os.path.abspath("planted-hooks")
        plant_repository(".git", f"[core]\\n\\thooksPath = {hooks}\\n")
    """,
    "hooks": """
        plant_repository(".git", "[core]\\n\\tbare = false\\n")
    """,
    "filter-driver": """
        open(".gitattributes", "w").write("* filter=evil diff=evil merge=evil\\n")
        driver = (
            f"[filter \\"evil\\"]\\n\\tclean = touch {M}/clean; cat\\n"
            f"\\tsmudge = touch {M}/smudge; cat\\n\\tprocess = touch {M}/process\\n"
            f"\\trequired = true\\n"
            f"[diff \\"evil\\"]\\n\\ttextconv = touch {M}/textconv; cat\\n"
            f"\\tcommand = touch {M}/external-diff\\n"
            f"[merge \\"evil\\"]\\n\\tdriver = touch {M}/merge\\n"
        )
        plant_repository(".git", driver)
        os.makedirs(".git/info", exist_ok=True)
        open(".git/info/attributes", "w").write("* filter=evil diff=evil\\n")
    """,
    "git-file-elsewhere": """
        planted = os.path.abspath("docs/.hidden-gitdir")
        plant_repository(planted, f"[core]\\n\\tfsmonitor = touch {M}/gitfile-fsmonitor\\n")
        open(".git", "w").write(f"gitdir: {planted}\\n")
    """,
    "git-file-to-the-real-git-dir": """
        # points at the workspace's own git directory, from inside the work tree
        open(".git", "w").write("gitdir: ../git\\n")
    """,
    "nested-repository": """
        env = dict(os.environ, GIT_AUTHOR_NAME="x", GIT_AUTHOR_EMAIL="x@x",
                   GIT_COMMITTER_NAME="x", GIT_COMMITTER_EMAIL="x@x")
        subprocess.run(["git", "init", "-q", "vendored"], check=True)
        open("vendored/lib.py", "w").write("x = 1\\n")
        subprocess.run(["git", "-C", "vendored", "add", "-A"], check=True)
        subprocess.run(["git", "-C", "vendored", "commit", "-qm", "v"], check=True, env=env)
        subprocess.run(["git", "-C", "vendored", "config", "core.fsmonitor",
                        f"touch {M}/nested-fsmonitor"], check=True)
        plant_hooks("vendored/.git/hooks")
        # a repository without a commit, and names git refuses: each would fail `git add`
        plant_repository("sub/.git", f"[core]\\n\\tfsmonitor = touch {M}/sub-fsmonitor\\n")
        open("sub/code.py", "w").write("y = 2\\n")
        plant_repository(".GIT", f"[core]\\n\\tfsmonitor = touch {M}/upper-fsmonitor\\n")
        plant_repository("lib/.Git", "[core]\\n")
    """,
}


@pytest.fixture
def workspace(git_repo: Any) -> Any:
    sha = git_repo.commit({"app.py": APP, "README.md": "shop\n"}, "init")
    with checkout(git_repo.path, sha) as ws:
        yield ws


def _has_git_part(path: str) -> bool:
    return any(p.lower() == ".git" for p in PurePosixPath(path).parts)


def test_the_work_tree_has_no_usable_git_dir(workspace: Workspace, no_sandbox: None) -> None:
    assert not (workspace.path / ".git").exists()
    assert not workspace.git_dir.is_relative_to(workspace.path)
    workspace.check_isolated()
    # a command in the work tree finds no repository (not the workspace's, not another)
    probe = run_command(["git", "rev-parse", "--absolute-git-dir"], cwd=workspace.path)
    assert probe.returncode != 0 and "not a git repository" in probe.output
    # while the orchestrator's own git still works there
    assert workspace.head() == workspace.base_sha


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_planted_git_configuration_runs_nothing(
    name: str, workspace: Workspace, attack: Any, markers: Path
) -> None:
    attack(workspace.path, FIX_APP + textwrap.dedent(ATTACKS[name]))
    files = workspace.changed_files()
    patch = workspace.diff()
    sha = workspace.commit("Fix main")
    workspace.reset()
    assert workspace.diff() == ""
    assert sorted(p.name for p in markers.iterdir()) == []
    # the change is the fix (and plain files the command wrote), never a .git or a repository
    assert "app.py" in files and "diff --git a/app.py b/app.py" in patch
    assert not any(_has_git_part(f) for f in files)
    assert "vendored" not in files and "Subproject commit" not in patch
    committed = workspace.git("show", "--format=", "--name-only", sha).split()
    assert committed == files and not any(_has_git_part(f) for f in committed)


def test_a_command_that_reaches_the_real_git_dir_stops_the_workspace(
    workspace: Workspace, attack: Any, markers: Path
) -> None:
    """With no sandbox at all a command may write beside the work tree: a changed
    configuration or attribute file of the workspace is refused, and a hook there never
    runs (hooks are off for every git command)."""
    script = """
        plant_hooks("../git/hooks")
        config = open("../git/config").read()
        open("../git/config", "w").write(
            config + f"[core]\\n\\tfsmonitor = touch {M}/fsmonitor\\n"
            f"[filter \\"evil\\"]\\n\\tclean = touch {M}/clean; cat\\n"
        )
        open("../git/info/attributes", "w").write("* filter=evil\\n")
    """
    attack(workspace.path, FIX_APP + textwrap.dedent(script))
    with pytest.raises(WorkspaceError, match="changed behind"):
        workspace.diff()
    assert sorted(p.name for p in markers.iterdir()) == []


def test_hooks_planted_in_the_real_git_dir_never_run(
    workspace: Workspace, attack: Any, markers: Path
) -> None:
    attack(workspace.path, FIX_APP + 'plant_hooks("../git/hooks")\n')
    assert workspace.changed_files() == ["app.py"]
    workspace.commit("Fix main")
    assert sorted(p.name for p in markers.iterdir()) == []


def test_a_tool_repository_is_thrown_away(workspace: Workspace, attack: Any, markers: Path) -> None:
    """A tool that needs a repository (pre-commit) gets a throw-away one; what it plants in it
    is removed with it, and the change never holds it."""
    script = """
        subprocess.run(["git", "config", "core.fsmonitor", f"touch {M}/fsmonitor"], check=True)
        plant_hooks(".git/hooks")
    """
    with workspace.tool_repository() as decoy:
        assert decoy == workspace.path / ".git" and decoy.is_dir()
        listed = run_command(["git", "ls-files"], cwd=workspace.path).output.split()
        assert sorted(listed) == ["README.md", "app.py"]
        attack(workspace.path, FIX_APP + textwrap.dedent(script))
    assert not (workspace.path / ".git").exists()
    assert workspace.changed_files() == ["app.py"]
    workspace.commit("Fix main")
    assert sorted(p.name for p in markers.iterdir()) == []
