from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cicd_orchestrator.config import load_config
from cicd_orchestrator.repair.base import RepairContext
from cicd_orchestrator.repair.workspace import checkout, git_env


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.path, env=git_env(), check=True, capture_output=True, text=True
        ).stdout

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def context(self, failures, sha, context=None, **config) -> RepairContext:
        return RepairContext(
            repository="acme/shop",
            head_sha=sha,
            failures=failures,
            context=context,
            config=load_config(config or None),
            workspace=lambda: checkout(self.path, sha),
        )


@pytest.fixture
def repo(tmp_path) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    return Repo(path)
