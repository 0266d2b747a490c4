"""Fixtures every test tier shares: one builder of small git repositories."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from cicd_orchestrator.git import git

WORKFLOW = ".github/workflows/ci.yml"
#: the runner tool folder that `make runner-tools` builds: the tools of repository commands
#: (never the orchestrator's own environment)
os.environ.setdefault(
    "CICD_RUNNER_TOOLS", str(Path(__file__).resolve().parents[1] / ".venv-runner")
)


class GitRepo:
    """A non-bare git repository in a temporary folder, committed to by the test."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")

    def git(self, *args: str) -> str:
        """Run git in the repository (the orchestrator's own git, its bot identity)."""
        return git(args, self.path).strip()

    def write(self, files: dict[str, str], dedent: bool = True) -> None:
        for rel, text in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text) if dedent else text, encoding="utf-8")

    def commit(self, files: dict[str, str], message: str = "change", dedent: bool = True) -> str:
        """Write ``files`` (paths relative to the repository), commit everything, return the sha."""
        self.write(files, dedent)
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


MakeRepo = Callable[..., GitRepo]


@pytest.fixture
def make_git_repo(tmp_path: Path) -> MakeRepo:
    """``make_git_repo(name="repo", branch="main")``: a new repository under ``tmp_path``."""

    def make(name: str = "repo", branch: str = "main") -> GitRepo:
        return GitRepo(tmp_path / name, branch)

    return make


@pytest.fixture
def git_repo(make_git_repo: MakeRepo) -> GitRepo:
    """A new, empty repository on ``main``."""
    return make_git_repo()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that runs real containers (it takes :func:`container_images`) is slow: it runs in
    ``make test-slow``, not in the fast tier."""
    for item in items:
        if "container_images" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def no_container_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host has no container engine: a job's image is not used and its steps run with the
    host's tools, whatever podman or the network would have made of it."""
    from cicd_orchestrator.actions import containers

    monkeypatch.setattr(containers, "detect_engine", lambda: None)


@pytest.fixture(scope="session")
def container_images() -> tuple[str, str]:
    """The test images of the job pods (``BUSYBOX_IMAGE``, ``HTTPD_IMAGE``), made in podman's
    store; skips where podman cannot run them, fails instead when ``CICD_REQUIRE_CONTAINERS``
    is set (CI installs podman)."""
    from cicd_devkit import containers as images

    why = images.unavailable()
    if why is not None:
        if os.environ.get(images.REQUIRE_VAR):
            pytest.fail(f"{images.REQUIRE_VAR} is set but the job pods cannot run: {why}")
        pytest.skip(why)
    images.build_images()
    return images.BUSYBOX_IMAGE, images.HTTPD_IMAGE
