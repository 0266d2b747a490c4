from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import checkout
from cicd_orchestrator.models import Failure
from cicd_orchestrator.repair.quarantine import (
    MARKER,
    QuarantineFixer,
    add_skip_marker,
    split_test_id,
)

RUFF = shutil.which("ruff", path=os.path.dirname(sys.executable))


@dataclasses.dataclass(frozen=True)
class _Config(OrchestratorConfig):
    """The configuration with the quarantine switch (whether or not the product has it yet)."""

    quarantine_flaky: bool = False


def allow(ctx, allowed=True, enabled=True):
    values = {f.name: getattr(ctx.config, f.name) for f in dataclasses.fields(ctx.config)}
    fixers = tuple(n for n in ctx.config.enabled_fixers if n != "quarantine")
    values["enabled_fixers"] = (*fixers, "quarantine") if enabled else fixers
    values["quarantine_flaky"] = allowed
    ctx.config = _Config(**values)
    return ctx


def flaky(*tests, job="test"):
    return Failure(
        job=job,
        job_id=1,
        run_id=1,
        step="Test",
        category=FailureCategory.FLAKY,
        confidence=0.8,
        signature="s",
        recipe="quarantine-test",
        tests=list(tests),
        evidence=[f"FAILED {t} - AssertionError" for t in tests],
        notes=["test passed 2 of 5 local re-run(s) on the same commit"],
        repeated_after_rerun=True,
    )


TEST_FILE = '''"""Timing tests."""

from __future__ import annotations

import time


def test_fast():
    assert True


def test_timing():
    start = time.monotonic()
    assert time.monotonic() - start < 0.5
'''


def applied(repo, sha, patch):
    with checkout(repo.path, sha, keep=False) as ws:
        assert ws.apply(patch)
        return {p: (ws.path / p).read_text() for p in ws.changed_files()}


def test_pytest_test_gets_a_skip_marker_and_the_import(repo, tmp_path):
    sha = repo.commit({"tests/test_timing.py": TEST_FILE, "tests/__init__.py": ""}, "init")
    ctx = allow(repo.context([flaky("tests/test_timing.py::test_timing")], sha))
    result = QuarantineFixer().propose(ctx)
    assert not result.unrepaired
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.category is FailureCategory.FLAKY
    assert repair.confidence < 0.5 and repair.files == ["tests/test_timing.py"]
    assert "tests/test_timing.py::test_timing" in repair.description
    assert "tests/test_timing.py::test_timing" in repair.commit_message
    text = applied(repo, sha, repair.patch)["tests/test_timing.py"]
    assert text == TEST_FILE.replace("import time\n", "import time\n\nimport pytest\n").replace(
        "\ndef test_timing", f"\n{MARKER}\ndef test_timing"
    )
    assert '@pytest.mark.skip(reason="quarantined: flaky (cicd-orchestrator)")' in text
    # the quarantined test really is skipped, the other still runs
    work = tmp_path / "run"
    (work / "tests").mkdir(parents=True)
    (work / "tests" / "test_timing.py").write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "1 passed, 1 skipped" in out
    if RUFF:
        lint = subprocess.run(
            [RUFF, "check", "--isolated", "--select", "I,E,F", str(work)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout


CLASS_FILE = """import pytest


class TestCart:
    @pytest.mark.parametrize("n", [1, 2])
    def test_total(self, n):
        assert n

    def test_other(self):
        assert True
"""


def test_method_marker_keeps_indentation_and_parametrized_ids(repo):
    sha = repo.commit({"tests/test_cart.py": CLASS_FILE}, "init")
    failure = flaky("tests/test_cart.py::TestCart::test_total[2]")
    repair = QuarantineFixer().propose(allow(repo.context([failure], sha))).repairs[0]
    text = applied(repo, sha, repair.patch)["tests/test_cart.py"]
    assert text == CLASS_FILE.replace(
        "    @pytest.mark.parametrize", f"    {MARKER}\n    @pytest.mark.parametrize"
    )


def test_the_repository_skip_list_is_preferred(repo):
    conftest = (
        "from pathlib import Path\n\n"
        "QUARANTINED = set(Path(__file__).with_name('.flaky-tests').read_text().split())\n"
    )
    sha = repo.commit(
        {
            "tests/test_a.py": "def test_a():\n    assert True\n",
            "tests/conftest.py": conftest,
            "tests/.flaky-tests": "tests/test_old.py::test_old",  # no final newline
        },
        "init",
    )
    failure = flaky("tests/test_a.py::test_a", "tests/test_old.py::test_old")
    result = QuarantineFixer().propose(allow(repo.context([failure], sha)))
    repair = result.repairs[0]
    assert repair.files == ["tests/.flaky-tests"]
    listed = applied(repo, sha, repair.patch)["tests/.flaky-tests"]
    assert listed == "tests/test_old.py::test_old\ntests/test_a.py::test_a\n"
    assert "already in the skip list" in result.unrepaired[0]


def test_an_unreferenced_list_like_file_is_not_a_skip_list(repo):
    sha = repo.commit(
        {"tests/test_a.py": "def test_a():\n    pass\n", "quarantine.txt": "notes\n"}, "init"
    )
    repair = (
        QuarantineFixer()
        .propose(allow(repo.context([flaky("tests/test_a.py::test_a")], sha)))
        .repairs[0]
    )
    assert repair.files == ["tests/test_a.py"]


def test_disabled_quarantine_reports_the_tests(repo):
    sha = repo.commit({"tests/test_timing.py": TEST_FILE}, "init")
    failure = flaky("tests/test_timing.py::test_timing")
    for ctx in (
        allow(repo.context([failure], sha), allowed=False),
        repo.context([failure], sha),  # a configuration without the key at all
    ):
        if "quarantine" not in ctx.config.enabled_fixers:
            allow(ctx, allowed=False)
        result = QuarantineFixer().propose(ctx)
        assert result.applicable and not result.repairs
        assert len(result.unrepaired) == 1
        assert "tests/test_timing.py::test_timing" in result.unrepaired[0]
        assert "quarantining is disabled" in result.unrepaired[0]


def test_what_cannot_be_quarantined_is_reported(repo):
    sha = repo.commit({"tests/test_a.py": "def test_a():\n    pass\n"}, "init")
    failures = [
        flaky("TestCheckout", job="go"),
        flaky("tests/test_a.py::test_missing"),
        flaky(job="bare"),
    ]
    result = QuarantineFixer().propose(allow(repo.context(failures, sha)))
    assert not result.repairs
    joined = "\n".join(result.unrepaired)
    assert "bare: flaky, but the log names no test" in joined
    assert "go: cannot quarantine TestCheckout" in joined
    assert "no test test_missing in test_a.py" in joined


def test_other_categories_are_not_this_fixers():
    failure = dataclasses.replace(flaky("a.py::t"), category=FailureCategory.TEST)
    assert QuarantineFixer().relevant([failure]) == []


@pytest.mark.parametrize(
    "source",
    [
        "import os\nimport sys\n\nimport requests\nfrom flask import Flask\n\n\ndef test_x():\n"
        "    pass\n",
        "import os\n\nimport attr\nimport requests\n\nfrom app import thing\n\n\ndef test_x():\n"
        "    pass\n",
        "import json\n\nfrom app import thing\n\n\ndef test_x():\n    pass\n",
        "from app import thing\n\n\ndef test_x():\n    pass\n",
        '"""Doc."""\n\n\ndef test_x():\n    pass\n',
        "def test_x():\n    pass\n",
    ],
)
def test_the_import_lands_where_isort_wants_it(tmp_path: Path, source):
    (tmp_path / "app.py").write_text("thing = 1\n")
    target = tmp_path / "test_mod.py"
    target.write_text(source)
    assert add_skip_marker(target, ["test_x"], {"app"}) is None
    text = target.read_text()
    assert text.count("import pytest\n") == 1 and MARKER in text
    if RUFF is None:
        pytest.skip("ruff is not installed")
    lint = subprocess.run(
        [RUFF, "check", "--isolated", "--select", "I,E,W", "--target-version", "py311", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + text


def test_split_test_id():
    assert split_test_id("tests/a.py::C::t[x-1]") == ("tests/a.py", ["C", "t"])
    assert split_test_id("pkg.Test > case FAILED") is None
    assert split_test_id("a.py::t with spaces") is None


def test_nothing_is_quarantined_while_ci_re_runs_remain(repo):
    sha = repo.commit({"tests/test_timing.py": TEST_FILE, "tests/__init__.py": ""}, "init")
    failure = flaky("tests/test_timing.py::test_timing")
    failure.repeated_after_rerun = False
    result = QuarantineFixer().propose(allow(repo.context([failure], sha)))
    assert not result.repairs and not result.unrepaired
