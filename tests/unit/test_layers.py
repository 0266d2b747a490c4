"""The layer check of ``make lint`` (import-linter contracts in pyproject.toml) holds for the
package, and fails on an import that goes up a layer or brings Airflow into the domain."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _check(
    tmp_path: Path, change: tuple[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the contracts on a copy of the package, with one line appended to one module."""
    copy = tmp_path / "include"
    shutil.copytree(ROOT / "include", copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if change:
        module, line = change
        with (copy / "cicd_orchestrator" / module).open("a", encoding="utf-8") as f:
            f.write(f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    result = _check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("change", "contract"),
    [
        (("models.py", "import cicd_orchestrator.stages.fixing"), "over the floor BROKEN"),
        (("logs/reader.py", "import cicd_orchestrator.analysis.classify"), "over the floor BROKEN"),
        (
            ("session/state.py", "import airflow.sdk"),
            "Only the Airflow glue imports Airflow BROKEN",
        ),
        (("git.py", "import cicd_devkit.scenarios"), "development tools BROKEN"),
    ],
)
def test_a_wrong_import_breaks_the_check(
    tmp_path: Path, change: tuple[str, str], contract: str
) -> None:
    result = _check(tmp_path, change)
    assert result.returncode != 0
    assert contract in result.stdout, result.stdout[-3000:]
