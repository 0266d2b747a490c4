"""Scenario folders: loading, validation, materialising with one CI run per commit."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from cicd_devkit.scenarios import (
    apply_commit_folder,
    fail_head_until_red,
    head_failed_jobs,
    list_scenarios,
    load_scenario,
    materialize,
)

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion, FailureCategory, Outcome
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.git import git

SCENARIOS = Path(
    os.environ.get(
        "CICD_SCENARIOS_DIR", Path(__file__).resolve().parents[4] / "shared" / "scenarios"
    )
)

WORKFLOW = """\
name: CI
on: [push]
jobs:
  check:
    steps:
      - run: test ! -e broken.txt
"""


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def make_scenario(root: Path, spec: str | None = None) -> Path:
    write(
        root,
        {
            "scenario.yaml": spec
            or textwrap.dedent(
                """\
                name: synthetic
                summary: a file appears that the check rejects
                category: test
                failing_jobs: [check]
                culprit: 03-break
                expect:
                  outcome: rolled_back
                  by_attempt: 5
                  escalated_by_attempt: 4
                requires: []
                """
            ),
            "commits/01-initial/.github/workflows/ci.yml": WORKFLOW,
            "commits/01-initial/.scenario-message": "Initial commit\n",
            "commits/01-initial/old.txt": "old\n",
            "commits/01-initial/keep.txt": "v1\n",
            "commits/02-cleanup/.scenario-message": "Remove old file\n",
            "commits/02-cleanup/.scenario-delete": "old.txt\n",
            "commits/02-cleanup/keep.txt": "v2\n",
            "commits/03-break/broken.txt": "x\n",
        },
    )
    return root


def test_load_scenario(tmp_path: Path) -> None:
    scenario = load_scenario(make_scenario(tmp_path / "s"))
    assert scenario.name == "synthetic" and scenario.category is FailureCategory.TEST
    assert scenario.failing_jobs == ["check"] and scenario.culprit == "03-break"
    assert scenario.commits == ["01-initial", "02-cleanup", "03-break"]
    assert scenario.expect.outcome is Outcome.ROLLED_BACK
    assert scenario.expect.escalated_by_attempt == 4 and not scenario.requires_network


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("category: test\nfailing_jobs: [a]\n", "'expect' is missing"),
        ("category: nope\nfailing_jobs: [a]\nexpect: {outcome: fixed}\n", "'category' is 'nope'"),
        ("category: test\nfailing_jobs: [a]\nexpect: {outcome: won}\n", "expect.outcome"),
        (
            "category: test\nfailing_jobs: [a]\nculprit: 09-x\nexpect: {outcome: fixed}\n",
            "culprit",
        ),
        (
            "category: test\nfailing_jobs: [a]\nexpect: {outcome: fixed, by_attempt: 0}\n",
            "by_attempt",
        ),
        ("[1, 2\n", "invalid YAML"),
    ],
)
def test_invalid_scenarios_are_explained(tmp_path: Path, spec: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[")):
        load_scenario(make_scenario(tmp_path / "s", spec))


def test_a_commit_folder_s_files_are_written_anew(tmp_path: Path) -> None:
    """A copied file gets a time of its own, not its source's. In a fresh checkout two versions
    of a file share one time; of one size too, and rewritten within a second, git's index
    would take the second for unchanged and leave it out of its commit."""
    scenario = make_scenario(tmp_path / "s")
    source = scenario / "commits" / "02-cleanup" / "keep.txt"
    os.utime(source, (1_600_000_000, 1_600_000_000))
    tree = tmp_path / "tree"
    tree.mkdir()
    assert apply_commit_folder(source.parent, tree) == "Remove old file"
    assert (tree / "keep.txt").read_text() == "v2\n"
    assert (tree / "keep.txt").stat().st_mtime > 1_600_000_000 + 86_400


def test_materialize_commits_each_folder_and_runs_ci(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path / "ci")
    result = materialize(make_scenario(tmp_path / "s"), provider, "team/synthetic", timeout=60)
    assert result.repo == "team/synthetic"
    assert [folder for folder, _ in result.commits] == ["01-initial", "02-cleanup", "03-break"]
    clone = tmp_path / "clone"
    git(["clone", "-q", str(provider.repo_path("team/synthetic")), str(clone)], tmp_path)
    assert git(["rev-parse", "HEAD"], clone).strip() == result.head_sha
    messages = git(["log", "--format=%s"], clone).splitlines()
    assert messages == ["03-break", "Remove old file", "Initial commit"]
    files = set(git(["ls-files"], clone).splitlines())
    assert files == {".github/workflows/ci.yml", "keep.txt", "broken.txt"}
    assert (clone / "keep.txt").read_text() == "v2\n"
    conclusions = [
        provider.get_run(result.repo, result.runs[folder][0]).conclusion
        for folder, _ in result.commits
    ]
    assert conclusions == [Conclusion.SUCCESS, Conclusion.SUCCESS, Conclusion.FAILURE]
    assert result.head_run is not None and result.head_run.head_sha == result.head_sha
    assert result.culprit_sha == result.commits[2][1]
    assert head_failed_jobs(provider, result.repo, result.head_sha) == ["check"]


def _corpus() -> list[Path]:
    if not SCENARIOS.is_dir():
        return []
    return [p for p in sorted(SCENARIOS.iterdir()) if (p / "scenario.yaml").is_file()]


def test_corpus_loads() -> None:
    if not SCENARIOS.is_dir():
        pytest.skip(f"no scenario corpus at {SCENARIOS}")
    assert len(list_scenarios(SCENARIOS)) == len(_corpus()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("folder", _corpus(), ids=lambda p: p.name)
def test_corpus_scenario_fails_on_its_head(folder: Path, tmp_path: Path) -> None:
    scenario = load_scenario(folder)
    if scenario.requires_network:
        pytest.skip("the scenario's steps need a package registry")
    provider = LocalProvider(tmp_path / "ci")
    result = materialize(scenario, provider, timeout=120)
    history = [
        provider.get_run(result.repo, result.runs[folder][0]).conclusion
        for folder, _ in result.commits[:-1]
    ]
    if scenario.culprit:
        culprit_index = scenario.commits.index(scenario.culprit)
        assert history[:culprit_index] == [Conclusion.SUCCESS] * culprit_index
    if scenario.category is FailureCategory.FLAKY:
        run = fail_head_until_red(provider, result.repo, result.head_sha, max_tries=12)
        failed = sorted(j.name for j in run.failed_jobs)
    else:
        failed = head_failed_jobs(provider, result.repo, result.head_sha)
    assert failed == sorted(scenario.failing_jobs)
