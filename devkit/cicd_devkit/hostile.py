"""Hostile material for the security tests of what the orchestrator writes to a hosting: a
session's attempt on a world, a fix to publish, commits and runs, workflows whose logs are
hostile (text an attacker controls: fences, mentions, HTML)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

from cicd_devkit.worlds import EXAMPLE_WORKFLOW, MARKER_KEY, REPO, World
from cicd_orchestrator import session
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import FailureCategory, RepairKind, RunStatus, Strategy
from cicd_orchestrator.git import git
from cicd_orchestrator.models import Repair, Run

NOW = "2026-01-01T00:00:00+00:00"
HUMAN = "Dev <dev@example.invalid>"
#: what an attacker puts in a log, a commit or a file of the repository
HOSTILE = "``` @org/team @alice <img src=x onerror=alert(1)> <script>alert(2)</script> &amp;"
#: a change the attempts publish (a new file)
FIX_PATCH = """\
diff --git a/FIXED.md b/FIXED.md
new file mode 100644
--- /dev/null
+++ b/FIXED.md
@@ -0,0 +1 @@
+fixed
"""

#: the files of a commit whose CI fails at once (the example's workflow replaced by one job
#: with one failing step)
STILL_RED: dict[str, str | None] = {
    EXAMPLE_WORKFLOW: "name: CI\non: [push, pull_request]\njobs:\n  lint:\n"
    "    runs-on: ubuntu-latest\n    steps:\n      - run: echo 'error: still failing'; exit 1\n",
    "NOTES.md": "still failing\n",
}
#: what a commit deletes so that its push starts no CI run
NO_CI: dict[str, str | None] = {EXAMPLE_WORKFLOW: None}

StartWorld = Callable[[str], World]


def hostings(fast: str, *others: str) -> list[Any]:
    """The hostings a costly attack runs on, as test parameters: ``fast`` in ``make test``,
    the ``others`` in ``make test-slow`` (CI runs both), so each attack keeps one hosting in
    the fast tier."""
    import pytest

    return [fast, *(pytest.param(kind, marks=pytest.mark.slow) for kind in others)]


def attempt_on(
    world: World,
    run_id: int | None = None,
    *,
    config: dict[str, object] | None = None,
    number: int = 1,
) -> Attempt:
    """Attempt ``number`` of a session on the failed run ``run_id`` (the example's head run
    by default), through the world's provider, the deployment's marker key configured."""
    provider = world.provider()
    settings: dict[str, object] = {"local_ci_root": str(world.local.root), "marker_key": MARKER_KEY}
    settings.update(config or {})
    cfg = load_config(settings)
    run = provider.get_run(REPO, run_id or world.head_run_id)
    state = session.new_session(world.kind, run, cfg, NOW)
    for n, strategy in zip(range(1, number + 1), Strategy, strict=False):
        session.start_attempt(state, n, strategy, NOW)
    return Attempt(state, number, cfg, provider, cache_dir=world.tmp / "attempt-cache")


def fix(description: str = "Remove the unused import", draft: bool = False) -> Repair:
    return Repair(
        fixer="ruff-fix",
        kind=RepairKind.CHANGE,
        category=FailureCategory.QUALITY,
        description=description,
        patch=FIX_PATCH,
        commit_message="Fix the lint failure",
        confidence=0.9,
        validated=True,
        draft=draft,
    )


def push_commit(
    world: World,
    branch: str,
    files: dict[str, str | None],
    *,
    author: str = HUMAN,
    base: str = "",
) -> str:
    """Commit ``files`` (a file of None is deleted) on top of the example's head (or
    ``base``) as ``author`` and push it to ``branch`` of the bare repository (CI starts, when
    the commit has a workflow); returns the commit."""
    work = world.tmp / f"work-{branch.replace('/', '-')}-{time.monotonic_ns()}"
    git(["clone", "--quiet", str(world.local.repo_path(REPO)), str(work)])
    git(["checkout", "--quiet", "--detach", base or world.head_sha], work)
    for name, text in files.items():
        path = work / name
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(["add", "-A"], work)
    git(["commit", "--quiet", f"--author={author}", "-m", f"change on {branch}"], work)
    sha = git(["rev-parse", "HEAD"], work).strip()
    git(["push", "--quiet", str(world.local.repo_path(REPO)), f"HEAD:refs/heads/{branch}"], work)
    return sha


def completed_run(world: World, sha: str, timeout: float = 240) -> Run:
    """The run of ``sha`` once it is completed, with its jobs."""
    provider = world.provider()
    deadline = time.monotonic() + timeout
    while True:
        runs = provider.list_runs(REPO, head_sha=sha)
        if runs and runs[0].status is RunStatus.COMPLETED:
            return provider.get_run(REPO, runs[0].id)
        assert time.monotonic() < deadline, f"the run of {sha[:12]} did not complete"
        time.sleep(0.5)


#: a step that prints about 300,000 characters with two failures in them, each a few long
#: lines carrying the hostile text
_NOISY = textwrap.dedent(
    """\
    import sys
    hostile = sys.argv[1]
    line = "x" * 3000
    for i in range(50):
        print(f"step output {i} {line}")
    print("____ test_first ____")
    for i in range(10):
        print(f"E   ValueError: {i} {hostile} " + "w" * 5000)
    print(f"FAILED tests/test_x.py::test_first - ValueError: {hostile}")
    for i in range(20):
        print(f"more output {i} {line}")
    print("____ test_second ____")
    for i in range(10):
        print(f"E   AssertionError: {i} {hostile} " + "y" * 5000)
    print(f"FAILED tests/test_x.py::test_second - AssertionError: {hostile}")
    sys.exit(1)
    """
)


def hostile_workflow(jobs: int = 4) -> dict[str, str]:
    """A workflow of ``jobs`` jobs that each fail with a big log of hostile text."""
    steps = "\n".join(
        f"  job{n}:\n    runs-on: ubuntu-latest\n    steps:\n      - name: Noisy\n"
        f"        run: python3 noisy.py '{HOSTILE}'"
        for n in range(jobs)
    )
    return {
        ".github/workflows/ci.yml": f"name: CI\non: [push]\njobs:\n{steps}\n",
        "noisy.py": _NOISY,
    }
