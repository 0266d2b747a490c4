"""The scenarios built from real public projects (``tests/scenarios/``), replayed by the local
CI: each is materialised in a local provider (every commit pushed on ``main``, its workflow run
by the local engine in the command sandbox), and the history must be green up to the culprit
and the head must fail in exactly the jobs its ``scenario.yaml`` names.

No Airflow is needed: these tests exercise the scenario corpus and the engine only.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cicd_devkit.mirrors import job_mirror_env
from cicd_devkit.scenarios import Scenario, head_failed_jobs, list_scenarios, materialize

from cicd_orchestrator import sandbox
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
WORKFLOW = Path(".github") / "workflows" / "ci.yml"
#: a setup action -> the host tool its jobs' commands need
SETUP_TOOLS = {"actions/setup-node": "node", "actions/setup-python": "python3"}

#: a job that asks the package index for one distribution, as a workflow's install step does
PROBE_WORKFLOW = """
on: push
jobs:
  probe:
    runs-on: ubuntu-latest
    steps:
      - run: python -m pip download --no-deps --retries 0 --timeout 10 -d "$RUNNER_TEMP" pytest
"""

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _package_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs install from this machine's package folders, as a deployment's jobs would from
    its mirror (``CICD_JOB_ENV``/``CICD_JOB_READ_ONLY``, unless already set)."""
    for key, value in job_mirror_env().items():
        if key not in os.environ:
            monkeypatch.setenv(key, value)


def _corpus() -> list[Scenario]:
    return list_scenarios(SCENARIOS)


def _needed_tools(scenario: Scenario) -> set[str]:
    """The host tools the scenario's workflow needs, from the setup actions it uses."""
    tools: set[str] = set()
    for folder in scenario.commits:
        path = scenario.commit_dir(folder) / WORKFLOW
        if not path.is_file():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for job in (data.get("jobs") or {}).values():
            for step in (job or {}).get("steps") or []:
                action = str((step or {}).get("uses") or "").split("@")[0]
                if action in SETUP_TOOLS:
                    tools.add(SETUP_TOOLS[action])
    return tools


@functools.cache
def _jobs_reach_a_package_index(tmp: Path) -> bool:
    """Whether a replayed job's ``pip`` reaches a package index here (a registry through the
    job network allowlist, or a package mirror wired into the job sandbox)."""
    tree = tmp / "probe"
    (tree / WORKFLOW.parent).mkdir(parents=True)
    (tree / WORKFLOW).write_text(PROBE_WORKFLOW, encoding="utf-8")
    identity = ["-c", "user.name=probe", "-c", "user.email=probe@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*identity, "commit", "-qm", "p"]):
        subprocess.run(["git", *args], cwd=tree, check=True, capture_output=True)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tree, check=True, capture_output=True, text=True
    ).stdout.strip()
    (job,) = JobRunner().run_workflow(
        tree,
        sha,
        WORKFLOW.as_posix(),
        ref="refs/heads/main",
        repository="probe/index",
        run_id=1,
        run_number=1,
        run_attempt=1,
        log_dir=tmp / "logs",
    )
    return job.conclusion is Conclusion.SUCCESS


def _skip_reason(scenario: Scenario, tmp: Path) -> str | None:
    reason = sandbox.unavailable_reason()
    if reason and sandbox.mode() == "required":
        return f"the command sandbox does not work here: {reason}"
    missing = sorted(t for t in _needed_tools(scenario) if shutil.which(t) is None)
    if missing:
        return f"{scenario.name} needs {', '.join(missing)} on this host"
    if scenario.requires_network and not _jobs_reach_a_package_index(tmp):
        return (
            f"{scenario.name} installs packages (requires: network) and a replayed job reaches "
            "no package index here: neither a registry through the job network allowlist nor "
            "a package mirror (tests/scenarios/README.md, 'Package mirror')"
        )
    return None


def test_the_corpus_is_complete() -> None:
    scenarios = _corpus()
    assert len(scenarios) >= 4
    for scenario in scenarios:
        first = scenario.commit_dir(scenario.commits[0])
        assert (first / WORKFLOW).is_file(), scenario.name
        assert any(p.name.upper().startswith("LICENSE") for p in first.iterdir()), scenario.name
        assert scenario.culprit is not None, scenario.name
        assert scenario.failing_jobs, scenario.name


@pytest.mark.parametrize("scenario", _corpus(), ids=lambda s: s.name)
def test_green_history_and_failing_head(
    scenario: Scenario, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reason = _skip_reason(scenario, tmp_path_factory.getbasetemp())
    if reason:
        pytest.skip(reason)
    provider = LocalProvider(tmp_path / "local-ci")
    made = materialize(scenario, provider, f"real/{scenario.name}", timeout=600)
    assert scenario.culprit is not None
    culprit_index = scenario.commits.index(scenario.culprit)
    for folder in scenario.commits[:culprit_index]:
        runs = [provider.get_run(made.repo, run_id) for run_id in made.runs[folder]]
        assert runs, f"{folder}: no CI run"
        for run in runs:
            jobs = {j.name: j.conclusion for j in run.jobs}
            assert run.conclusion is Conclusion.SUCCESS, f"{folder}: {jobs}"
    assert made.head_run is not None
    assert made.head_run.conclusion is Conclusion.FAILURE
    assert head_failed_jobs(provider, made.repo, made.head_sha) == sorted(scenario.failing_jobs)
