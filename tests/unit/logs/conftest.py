"""Fixtures of the log tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cicd_orchestrator.logs.analyze import analyze_text
from cicd_orchestrator.models import Excerpt


@pytest.fixture
def log_fixtures() -> Path:
    """The folder of the sample logs and reports (tests/fixtures/logs)."""
    return Path(__file__).resolve().parents[2] / "fixtures" / "logs"


@pytest.fixture
def first_excerpt() -> Callable[..., Excerpt]:
    """The first excerpt of a log given as its lines (``fmt``: the log's format, else
    detected)."""

    def read(lines: list[str], fmt: str = "auto") -> Excerpt:
        excerpts = analyze_text("\n".join(lines) + "\n", fmt=fmt).excerpts
        assert excerpts, "no excerpt"
        return excerpts[0]

    return read
