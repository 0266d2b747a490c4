"""The base of the local provider: its folder, configuration and counters, and the bare
repositories it hosts (created with their post-receive hook, deleted with all their data),
their branches and the pushes of fix branches.

The runs (:mod:`~cicd_orchestrator.ci.local.runs`) and the hosting objects
(:mod:`~cicd_orchestrator.ci.local.hosting`) build on it; see
:mod:`~cicd_orchestrator.ci.local.provider` for the layout under ``root``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from cicd_orchestrator import branches, git
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.local import store
from cicd_orchestrator.ci.local.processes import hook_script
from cicd_orchestrator.exceptions import UnknownRepositoryError, UnknownRunError, WorkspaceError
from cicd_orchestrator.git import GitRemote

#: the deployment's settings of replayed jobs, recorded for the run processes: the jobs'
#: package mirror (variables and read-only folders) and the toolchain folder
JOB_SETTINGS = ("CICD_JOB_ENV", "CICD_JOB_READ_ONLY", "CICD_TOOLCHAINS", "CICD_RUNS_ON_IMAGES")
_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def _valid_name(repo: object) -> bool:
    return isinstance(repo, str) and bool(_REPO_RE.match(repo)) and ".." not in repo


class LocalRepositories(CIProvider):
    """Git repositories and a JSON database under ``root`` (see the module docstring)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        secrets: dict[str, str] | None = None,
        *,
        protected_branches: list[str] | None = None,
        tool_path: list[str] | None = None,
        max_parallel_jobs: int | None = None,
        default_timeout_minutes: float | None = None,
        output_cap_bytes: int | None = None,
        python: str | None = None,
        network_allowlist: list[str] | None = None,
        identity: str | None = None,
    ) -> None:
        """``identity``: the user the provider writes its pull requests, issues and comments
        as (the orchestrator's git identity by default); another instance on the same
        ``root`` with another identity is another user of the same hosting."""
        self.root = Path(root).resolve()
        self._identity = identity or git.BOT_NAME
        self.root.mkdir(parents=True, exist_ok=True)
        self.calls = 0
        changes: dict[str, Any] = {
            "secrets": secrets,
            "protected_branches": protected_branches,
            "tool_path": tool_path,
            "max_parallel_jobs": max_parallel_jobs,
            "default_timeout_minutes": default_timeout_minutes,
            "output_cap_bytes": output_cap_bytes,
            "python": python,
            "network_allowlist": network_allowlist,
            # the deployment's job settings, for the run processes (a push's hook does not
            # carry the environment of the process that made the provider)
            **{f"env:{name}": os.environ.get(name) or None for name in JOB_SETTINGS},
        }
        changes = {k: v for k, v in changes.items() if v is not None}

        def merge(cfg: dict[str, Any]) -> None:
            cfg.update(changes)
            cfg.setdefault("secrets", {})
            cfg.setdefault("protected_branches", list(branches.DEFAULT_PROTECTED_PATTERNS))
            cfg.setdefault("python", sys.executable)

        store.update_json(self.config_path, merge, default={}, mode=0o600)

    def apply_job_settings(self) -> None:
        """In a run process: the deployment's job settings the provider recorded
        (:data:`JOB_SETTINGS`), unless this process has its own."""
        for name in JOB_SETTINGS:
            value = self.config.get(f"env:{name}")
            if isinstance(value, str) and value and not os.environ.get(name):
                os.environ[name] = value

    def identity(self) -> str:
        return self._identity

    # ------------------------------------------------------------------ paths and config
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def config(self) -> dict[str, Any]:
        data = store.read_json(self.config_path, {})
        return data if isinstance(data, dict) else {}

    @property
    def secrets(self) -> dict[str, str]:
        return dict(self.config.get("secrets") or {})

    @property
    def _python(self) -> str:
        """The interpreter of the hook and of the run processes."""
        return str(self.config.get("python") or sys.executable)

    def set_secret(self, name: str, value: str) -> None:
        """Configure a secret (``${{ secrets.NAME }}``) for every repository."""
        self.count_call()
        store.update_json(
            self.config_path,
            lambda cfg: cfg.setdefault("secrets", {}).__setitem__(name, value),
            default={},
            mode=0o600,
        )

    def _counter(self, name: str) -> int:
        return store.next_counter(self.root / "counters.json", name)

    def count_call(self, repo: str | None = None) -> None:
        """Count a call in this instance and, per repository, on disk (across processes)."""
        super().count_call(repo)
        if repo and _valid_name(repo):
            store.next_counter(self.root / "calls.json", repo)

    def call_count(self, repo: str) -> int:
        """Calls made for ``repo`` by every process since the repository was created."""
        return int(store.read_json(self.root / "calls.json", {}).get(repo, 0))

    @staticmethod
    def _check_name(repo: str) -> str:
        if not _valid_name(repo):
            raise UnknownRepositoryError(f"invalid repository name {repo!r} (want owner/name)")
        return repo

    def repo_path(self, repo: str) -> Path:
        """The bare repository of ``repo`` (raises UnknownRepositoryError if there is none)."""
        path = self.root / "repos" / f"{self._check_name(repo)}.git"
        if not (path / "HEAD").exists():
            raise UnknownRepositoryError(f"unknown repository {repo!r} in {self.root}")
        return path

    def _data(self, repo: str) -> Path:
        self.repo_path(repo)
        return self.root / "data" / repo

    def _url(self, repo: str, *parts: object) -> str:
        return "/".join([f"local://{repo}", *(str(p) for p in parts)])

    # ------------------------------------------------------------------ repositories
    def create_repository(self, repo: str, default_branch: str = "main") -> str:
        """Create the bare repository with its post-receive hook; returns its path."""
        self.count_call(repo)
        self._check_name(repo)
        path = self.root / "repos" / f"{repo}.git"
        if not (path / "HEAD").exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            git.init_bare(path, default_branch)
        self._install_hook(repo, path)
        data = self.root / "data" / repo
        store.update_json(
            data / "repo.json",
            lambda d: d.setdefault("default_branch", default_branch),
            default={},
        )
        return str(path)

    def delete_repository(self, repo: str) -> None:
        """Delete the repository with its runs, logs, issues and pull requests (as deleting a
        repository on GitHub does); every later call for it raises UnknownRepositoryError.
        A run still executing fails when it next records its progress."""
        self.count_call(repo)
        path = self.repo_path(repo)
        trash = self.root / "deleted" / f"{repo.replace('/', '__')}-{time.time_ns()}"
        trash.mkdir(parents=True)
        path.rename(trash / "repo.git")  # atomic: from here on the repository is unknown
        data = self.root / "data" / repo
        if data.exists():
            data.rename(trash / "data")
        shutil.rmtree(trash, ignore_errors=True)

    def _install_hook(self, repo: str, path: Path) -> None:
        hook = path / "hooks" / "post-receive"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(hook_script(self._python, self.root, repo), encoding="utf-8")
        hook.chmod(0o755)

    def repositories(self) -> list[str]:
        """Every repository of the provider, sorted."""
        self.count_call()
        base = self.root / "repos"
        return sorted(
            f"{p.parent.name}/{p.name[:-4]}" for p in base.glob("*/*.git") if (p / "HEAD").exists()
        )

    # ------------------------------------------------------------------ branches
    def default_branch(self, repo: str) -> str:
        self.count_call(repo)
        return self._default_branch(repo)

    def _default_branch(self, repo: str) -> str:
        data = store.read_json(self._data(repo) / "repo.json", {})
        return str(data.get("default_branch") or "main")

    def protected_branches(self, repo: str) -> list[str]:
        self.count_call(repo)
        return self._protected(repo)

    def _protected(self, repo: str) -> list[str]:
        configured = self.config.get("protected_branches")
        patterns = list(configured or branches.DEFAULT_PROTECTED_PATTERNS)
        default = self._default_branch(repo)
        return patterns if default in patterns else [*patterns, default]

    def git_remote(self, repo: str) -> GitRemote:
        self.count_call(repo)
        return GitRemote(url=str(self.repo_path(repo)), env={})

    def branch_sha(self, repo: str, branch: str) -> str | None:
        """The commit a branch points at, or None."""
        self.count_call(repo)
        return self._branch_sha(repo, branch)

    def _branch_sha(self, repo: str, branch: str) -> str | None:
        try:
            out = git.git(
                ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
                self.repo_path(repo),
            )
        except WorkspaceError:
            return None
        return out.strip() or None

    def commit_author(self, repo: str, sha: str) -> str:
        self.count_call(repo)
        path = self.repo_path(repo)
        if not re.fullmatch(r"[0-9a-fA-F]{4,64}", sha):
            raise UnknownRunError(f"no commit {sha[:12]!r} in {repo}")
        try:
            out = git.git(["log", "-1", "--format=%ae", f"{sha}^{{commit}}", "--"], path)
        except WorkspaceError as exc:
            raise UnknownRunError(f"no commit {sha[:12]} in {repo}") from exc
        return out.strip()

    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        self.count_call(repo)
        self.check_branch_allowed(repo, branch)
        return git.push_head(GitRemote(url=str(self.repo_path(repo))), workdir, repo, branch)

    def check_branch_allowed(self, repo: str, branch: str) -> None:
        """Raise SafetyError for the default branch, a protected pattern or a bad name."""
        branches.check_push_allowed(repo, branch, self._default_branch(repo), self._protected(repo))
