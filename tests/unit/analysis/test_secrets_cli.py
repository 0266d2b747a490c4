"""``cicd analyze --workflow``: the same verdict as the orchestrator's classification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cicd_orchestrator.cli import main

WORKFLOW = """\
on: [push]
jobs:
  publish:
    runs-on: ubuntu-latest
    steps:
      - name: Publish
        run: ./publish.sh
        env:
          REGISTRY_TOKEN: ${{ secrets.REGISTRY_TOKEN }}
"""


def _log(tmp_path: Path, shown: str) -> Path:
    lines = [
        "##[group]Run ./publish.sh",
        "./publish.sh",
        "env:",
        f"  REGISTRY_TOKEN: {shown}",
        "##[endgroup]",
        "Error: token is empty",
        "##[error]Process completed with exit code 1.",
    ]
    path = tmp_path / "job.log"
    path.write_text("".join(f"2024-05-01T10:00:00.1234567Z {line}\n" for line in lines))
    return path


def _analyze(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["analyze", *args, "--json"]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_the_workflow_turns_an_unknown_failure_into_a_missing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = tmp_path / "ci.yml"
    workflow.write_text(WORKFLOW)
    log = _log(tmp_path, "")
    alone = _analyze(capsys, str(log))
    assert alone["recipe"] != "escalate-secret"
    data = _analyze(capsys, str(log), "--workflow", str(workflow), "--job", "publish")
    assert data["category"] == "configuration" and data["recipe"] == "escalate-secret"
    captures = data["captures"]
    assert isinstance(captures, dict)
    assert captures["secret"] == "REGISTRY_TOKEN"
    assert captures["secret_line"] == f"{workflow}:9"
    masked = _analyze(capsys, str(_log(tmp_path, "***")), "--workflow", str(workflow))
    assert masked["category"] == alone["category"]


def test_an_unreadable_workflow_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(_log(tmp_path, "")), "--workflow", str(tmp_path / "no")]) == 2
    assert "cannot read" in capsys.readouterr().err
