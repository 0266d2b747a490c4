"""Fixtures of the log tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def log_fixtures() -> Path:
    """The folder of the sample logs and reports (tests/fixtures/logs)."""
    return Path(__file__).resolve().parents[2] / "fixtures" / "logs"
