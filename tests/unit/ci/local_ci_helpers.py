"""Helpers for the local CI tests: small git repositories with a workflow."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from cicd_orchestrator.ci.local.runner import JobExecution

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
WORKFLOW = ".github/workflows/ci.yml"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        [*GIT, *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return out.stdout.strip()


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def commit(repo: Path, files: dict[str, str], message: str = "change") -> str:
    write_files(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, files: dict[str, str], branch: str = "main") -> tuple[Path, str]:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", f"--initial-branch={branch}")
    return path, commit(path, files, "initial")


def by_name(executions: list[JobExecution]) -> dict[str, JobExecution]:
    return {e.name: e for e in executions}
