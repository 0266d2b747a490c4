"""Fixtures of the GitLab provider tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gl_helpers import World, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w, server = start_world(tmp_path_factory.mktemp("gl"))
    try:
        yield w
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_faults_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "world" in request.fixturenames:
        request.getfixturevalue("world").server.clear_faults()
