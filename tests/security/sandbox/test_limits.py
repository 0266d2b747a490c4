"""Limits of a repository command (issue 12): a fork bomb, a file larger than the cap and an
allocation past the memory limit are stopped inside the sandbox (small limits here), and
nothing is left running on the host."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import sandbox
from cicd_orchestrator.process import run_command

MiB = 1 << 20


@pytest.fixture
def small_limits() -> Iterator[sandbox.Limits]:
    limits = sandbox.Limits(processes=40, address_space=512 * MiB, file_size=MiB, open_files=64)
    sandbox.configure("required", limits=limits)
    yield limits
    sandbox.configure("required")


def host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _peak_while(run: Callable[[], Any], marker: str) -> tuple[Any, int]:
    """Run ``run`` while counting the host's processes whose command line holds ``marker``;
    its result and the highest count seen."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", run()))
    thread.start()
    peak = 0
    while thread.is_alive():
        peak = max(peak, len(host_processes_with(marker)))
        time.sleep(0.05)
    thread.join()
    return box["result"], peak


@pytest.mark.parametrize(
    "script",
    [
        "n=0; while [ $n -lt 500 ]; do sleep MARKER & n=$((n+1)); done",  # a flood
        "bomb() { bomb | bomb & }; bomb; sleep MARKER",  # the classic bomb
    ],
    ids=["flood", "bomb"],
)
def test_a_fork_bomb_is_stopped(work: Path, small_limits: sandbox.Limits, script: str) -> None:
    # a sleep of this test's own (the other bomb may be running on another worker)
    marker = f"41.{secrets.randbelow(10**9):09d}"
    script = script.replace("MARKER", marker)
    start = time.monotonic()
    result, peak = _peak_while(
        lambda: run_command(["bash", "-c", script], cwd=work, timeout=5), marker
    )
    assert time.monotonic() - start < 30
    assert result.timed_out or result.returncode != 0
    assert 0 < peak <= small_limits.processes, peak
    time.sleep(0.3)
    assert host_processes_with(marker) == []  # the whole sandbox went with it


def test_a_file_past_the_size_cap_is_stopped(work: Path, small_limits: sandbox.Limits) -> None:
    result = run_command(
        ["sh", "-c", "head -c 5000000 /dev/zero > big; echo status=$?"], cwd=work, timeout=30
    )
    assert "status=153" in result.output  # 128 + SIGXFSZ
    assert (work / "big").stat().st_size <= small_limits.file_size


def test_memory_past_the_limit_is_refused(work: Path, small_limits: sandbox.Limits) -> None:
    result = run_command(
        ["python3", "-c", "x = bytearray(1024 * 1024 * 1024); print('allocated')"],
        cwd=work,
        timeout=30,
    )
    assert "allocated" not in result.output and "MemoryError" in result.output


def test_open_files_are_capped(work: Path, small_limits: sandbox.Limits) -> None:
    script = "import os\nfds = []\ntry:\n    while True: fds.append(os.open('/dev/null', 0))\n"
    script += "except OSError as e:\n    print('opened', len(fds), e.errno)\n"
    result = run_command(["python3", "-c", script], cwd=work, timeout=30)
    opened = int(result.output.split()[1])
    assert opened <= small_limits.open_files
