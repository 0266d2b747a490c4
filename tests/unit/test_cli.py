from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cicd_orchestrator.cli import COMMANDS, main

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def _cicd(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from cicd_orchestrator.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_analyze_json_shape() -> None:
    proc = _cicd(
        "analyze",
        str(FIX / "github_fail.log"),
        "--baseline",
        str(FIX / "github_pass.log"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"category", "confidence", "signature", "excerpts", "steps", "warnings"} <= set(data)
    assert data["category"] == "test" and 0 < data["confidence"] <= 1
    first = data["excerpts"][0]
    assert {"start", "end", "category", "pattern", "text"} <= set(first)
    assert first["start"] <= 29 <= first["end"] and first["pattern"] == "pytest-failed"
    assert {"name", "conclusion", "start", "end"} <= set(data["steps"][0])


def test_analyze_readable_summary_and_format_option() -> None:
    proc = _cicd("analyze", str(FIX / "jenkins_fail.log"), "--format", "jenkins")
    assert proc.returncode == 0, proc.stderr
    assert "category:" in proc.stdout and "maven-compilation-error" in proc.stdout


def test_missing_file_exits_non_zero_with_one_line() -> None:
    proc = _cicd("analyze", "/nonexistent/fail.log")
    assert proc.returncode != 0
    assert (
        proc.stderr.strip().count("\n") == 0 and "cannot read /nonexistent/fail.log" in proc.stderr
    )
    proc = _cicd("analyze", str(FIX / "github_fail.log"), "--baseline", "/nonexistent/pass.log")
    assert proc.returncode != 0 and "pass.log" in proc.stderr


def test_directory_is_unreadable(tmp_path: Path, capsys: object) -> None:
    assert main(["analyze", str(tmp_path)]) == 2


def test_subcommands_are_a_registry() -> None:
    assert "analyze" in COMMANDS
