"""Fixtures of the CI provider tests: the worlds of each provider (an example repository
served by a CI-compatible server, see ``cicd_devkit.worlds``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cicd_devkit.worlds import (
    EXAMPLE_WORKFLOW,
    KINDS,
    REPO,
    GitHubWorld,
    GitLabWorld,
    JenkinsWorld,
    World,
    start_world,
)


# --------------------------------------------------------------------------- provider worlds
def _started(kind: str, factory: pytest.TempPathFactory) -> Iterator[World]:
    world = start_world(kind, factory.mktemp(kind))
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture(scope="module", params=KINDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Each provider in turn, in a world of its own (one per test module)."""
    yield from _started(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def github_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHubWorld]:
    yield from _started("github", tmp_path_factory)  # type: ignore[misc]


@pytest.fixture(scope="module")
def gitlab_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitLabWorld]:
    yield from _started("gitlab", tmp_path_factory)  # type: ignore[misc]


@pytest.fixture(scope="module")
def jenkins_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JenkinsWorld]:
    yield from _started("jenkins", tmp_path_factory)  # type: ignore[misc]


@pytest.fixture
def fresh_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], World]]:
    """``fresh_world(kind)``: a world for one test (a whole session changes it), with a cache
    folder of its own."""
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    started: list[World] = []

    def start(kind: str) -> World:
        started.append(start_world(kind, tmp_path / kind))
        return started[-1]

    try:
        yield start
    finally:
        for world in started:
            world.stop()


@pytest.fixture(autouse=True)
def _no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test's faults that did not fire do not reach the next test of its world."""
    yield
    for name in ("world", "github_world", "gitlab_world", "jenkins_world"):
        if name in request.fixturenames:
            server = getattr(request.getfixturevalue(name), "server", None)
            if server is not None:
                server.clear_faults()


@pytest.fixture
def work_tree(make_git_repo: Callable[..., Any]) -> Callable[[World, str], Any]:
    """``work_tree(world, name)``: a repository (the root conftest's ``GitRepo``) at the head
    of the world's example, fetched from the local provider's bare repository, to commit a
    change in and push it. Its next commit also deletes the example's workflow, so its push
    starts no CI run (no test here waits for one; they would compete for the cores)."""

    def make(world: World, name: str) -> Any:
        repo = make_git_repo(name)
        repo.git("fetch", "--quiet", str(world.local.repo_path(REPO)), world.head_sha)
        repo.git("checkout", "--quiet", "--detach", world.head_sha)
        (repo.path / EXAMPLE_WORKFLOW).unlink()
        return repo

    return make
