"""``run_command``: a command that prints without end is stopped at a hard limit (the disk
does not fill until the timeout), the last ``output_cap`` bytes are kept and say so."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import process as workspace
from cicd_orchestrator import sandbox
from cicd_orchestrator.process import run_command


@pytest.fixture(params=["auto", "off"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(sandbox.ENV_VAR, request.param)
    return str(request.param)


@pytest.fixture
def spools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The spool files of run_command, kept on disk to be measured."""
    made: list[Path] = []

    def spool(*args: Any, **kwargs: Any) -> Any:
        f = tempfile.NamedTemporaryFile(dir=tmp_path, delete=False)  # noqa: SIM115
        made.append(Path(f.name))
        return f

    monkeypatch.setattr(workspace.tempfile, "TemporaryFile", spool)
    return made


def test_endless_output_is_stopped_at_the_limit(
    mode: str, tmp_path: Path, spools: list[Path]
) -> None:
    start = time.monotonic()
    result = run_command(["yes"], cwd=tmp_path, timeout=60, output_cap=250_000)
    elapsed = time.monotonic() - start
    assert elapsed < 10, elapsed
    assert result.truncated and not result.timed_out
    assert result.returncode != 0
    limit = workspace.OUTPUT_LIMIT_FACTOR * 250_000
    assert result.output.rstrip().endswith(
        f"output passed {limit / 1_000_000:g} MB: stopped (the last 250000 bytes are kept)"
    )
    body, _, _note = result.output.rpartition("\n[cicd-orchestrator]")
    assert len(body) == 250_000 and set(body) == {"y", "\n"}
    (spool,) = spools
    assert spool.stat().st_size <= limit


def test_an_explicit_limit_and_a_sleeping_writer(tmp_path: Path, spools: list[Path]) -> None:
    script = "head -c 300000 /dev/zero | tr '\\0' x; sleep 30"
    start = time.monotonic()
    result = run_command(
        ["sh", "-c", script], cwd=tmp_path, timeout=60, output_cap=1000, output_limit=100_000
    )
    assert time.monotonic() - start < 10
    assert result.truncated and "output passed 0.1 MB: stopped" in result.output
    assert spools[0].stat().st_size == 100_000


def test_output_over_the_cap_but_under_the_limit_is_only_trimmed(mode: str, tmp_path: Path) -> None:
    result = run_command(
        ["sh", "-c", "seq 1 100000; echo done"], cwd=tmp_path, timeout=60, output_cap=10_000
    )
    assert result.returncode == 0 and result.truncated and not result.timed_out
    assert len(result.output) == 10_000 and result.output.endswith("100000\ndone\n")
    assert "stopped" not in result.output


def test_small_output_timeout_and_exit_status(mode: str, tmp_path: Path) -> None:
    ok = run_command(["sh", "-c", "echo out; echo err >&2; exit 4"], cwd=tmp_path)
    assert (ok.returncode, ok.output, ok.truncated, ok.timed_out) == (4, "out\nerr\n", False, False)
    start = time.monotonic()
    slow = run_command(["sh", "-c", "echo before; sleep 30"], cwd=tmp_path, timeout=0.5)
    assert slow.timed_out and slow.output == "before\n"
    assert time.monotonic() - start < 10


def test_a_leftover_background_writer_does_not_hold_the_result(mode: str, tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_command(["sh", "-c", "(sleep 3; echo late) & echo main"], cwd=tmp_path)
    assert result.returncode == 0 and result.output.startswith("main\n")
    assert time.monotonic() - start < 5
