"""Helpers of the GitLab provider tests: a lint-failure repository served by the GitLab server."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator.ci.gitlab.auth import token_client
from cicd_orchestrator.ci.gitlab.provider import GitLabProvider
from cicd_orchestrator.ci.gitlab.ratelimit import BackoffPolicy
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.scenarios import MaterializedScenario, materialize
from cicd_orchestrator.testing.gitlab_server import GitLabServer
from cicd_orchestrator.tools.airflow_stack import PROJECT_ROOT

TOKEN = "glpat-" + "L00pbackServerT0ken00001"
REPO = "acme/shipping"
FAST = BackoffPolicy(max_tries=4, base_delay=0.05, max_delay=0.2, max_wait=5.0)


@dataclass
class World:
    local: LocalProvider
    server: GitLabServer
    made: MaterializedScenario
    tmp: Path
    sleeps: list[float]

    def provider(self, **kwargs: object) -> GitLabProvider:
        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            time.sleep(seconds)

        options: dict[str, object] = {
            "client": token_client(TOKEN, self.server.url, timeout=1.0),
            "timeout": 1.0,
            "backoff": FAST,
            "sleep": sleep,
        }
        options.update(kwargs)
        return GitLabProvider(**options)  # type: ignore[arg-type]


def start_world(tmp: Path) -> tuple[World, GitLabServer]:
    local = LocalProvider(tmp / "ci")
    made = materialize(PROJECT_ROOT / "examples" / "lint-failure", local, REPO)
    server = GitLabServer(local, TOKEN).start()
    return World(local, server, made, tmp, []), server


def clone(world: World, provider: GitLabProvider, name: str, sha: str | None = None) -> Path:
    """A clone of the project through the server (git over HTTP with the token in env)."""
    from cicd_orchestrator.repair.workspace import git_env

    remote = provider.git_remote(REPO)
    dest = world.tmp / name
    subprocess.run(
        ["git", "clone", "--quiet", remote.url, str(dest)],
        env=git_env(remote.env),
        check=True,
        capture_output=True,
    )
    if sha:
        subprocess.run(["git", "checkout", "--quiet", sha], cwd=dest, check=True)
    return dest


def commit_file(workdir: Path, name: str, text: str) -> str:
    from cicd_orchestrator.repair.workspace import git, git_env

    (workdir / name).write_text(text, encoding="utf-8")
    git(["add", name], cwd=workdir, env=git_env())
    git(["commit", "--quiet", "-m", f"add {name}"], cwd=workdir, env=git_env())
    return git(["rev-parse", "HEAD"], cwd=workdir).strip()
