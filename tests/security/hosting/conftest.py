"""Fixtures of the hosting's security tests: each test starts the worlds it needs (a test
that publishes changes its world)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cicd_devkit.hostile import StartWorld
from cicd_devkit.worlds import World, start_world


@pytest.fixture
def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StartWorld]:
    """``start(kind)``: a world of its own for the test (its server stopped afterwards)."""
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path / "cache"))
    started: list[World] = []

    def make(kind: str) -> World:
        started.append(start_world(kind, tmp_path / f"{kind}-{len(started)}"))
        return started[-1]

    try:
        yield make
    finally:
        for world in started:
            world.stop()
