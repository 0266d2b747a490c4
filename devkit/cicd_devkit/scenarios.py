"""Scenario folders: a small repository with a green history and a failing head.

``load_scenario`` reads and validates ``scenario.yaml``; ``materialize`` replays the commit
folders into a repository of a local provider, pushing each commit on ``main`` so each gets
its own CI run. ``materialize_template`` does that once in a provider of its own and
``copy_template`` gives each user a copy, its runs done, without running CI again. Nothing
here knows any particular scenario.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import (
    FAILED_CONCLUSIONS,
    FailureCategory,
    Outcome,
    RunStatus,
)
from cicd_orchestrator.exceptions import ConfigError, ProviderError
from cicd_orchestrator.git import env as git_env
from cicd_orchestrator.models import Run

log = logging.getLogger(__name__)

MESSAGE_FILE = ".scenario-message"
DELETE_FILE = ".scenario-delete"
SCENARIO_FILES = frozenset({MESSAGE_FILE, DELETE_FILE})
BRANCH = "main"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Scenario Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Scenario Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
}


@dataclass
class Expectation:
    outcome: Outcome
    by_attempt: int = 1
    escalated_by_attempt: int | None = None
    fix_touches: list[str] = field(default_factory=list)
    reported_flaky: list[str] = field(default_factory=list)
    escalation_names: list[str] = field(default_factory=list)


@dataclass
class Scenario:
    name: str
    path: str
    summary: str
    category: FailureCategory
    failing_jobs: list[str]
    expect: Expectation
    root_cause_job: str | None = None
    culprit: str | None = None
    requires: list[str] = field(default_factory=list)
    notes: str = ""
    commits: list[str] = field(default_factory=list)

    @property
    def requires_network(self) -> bool:
        return "network" in self.requires

    def commit_dir(self, folder: str) -> Path:
        return Path(self.path) / "commits" / folder


@dataclass
class MaterializedScenario:
    scenario: Scenario
    repo: str
    head_sha: str
    commits: list[tuple[str, str]] = field(default_factory=list)  # (folder, sha), in order
    runs: dict[str, list[int]] = field(default_factory=dict)  # folder -> run ids
    head_run: Run | None = None

    def sha_of(self, folder: str) -> str:
        for name, sha in self.commits:
            if name == folder:
                return sha
        raise KeyError(folder)

    @property
    def culprit_sha(self) -> str | None:
        return self.sha_of(self.scenario.culprit) if self.scenario.culprit else None


# --------------------------------------------------------------------------- loading
def _str_list(data: dict[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    return [str(v) for v in value]


def _enum(cls: Any, value: Any, key: str, where: str) -> Any:
    try:
        return cls(value)
    except ValueError as exc:
        allowed = ", ".join(e.value for e in cls)
        raise ConfigError(f"{where}: '{key}' is {value!r}; expected one of {allowed}") from exc


def _int(value: Any, key: str, where: str, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: '{key}' must be a positive integer, not {value!r}")
    return value


def _expectation(data: Any, where: str) -> Expectation:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: 'expect' must be a mapping")
    if "outcome" not in data:
        raise ConfigError(f"{where}: 'expect.outcome' is missing")
    return Expectation(
        outcome=_enum(Outcome, data["outcome"], "expect.outcome", where),
        by_attempt=_int(data.get("by_attempt"), "expect.by_attempt", where, 1) or 1,
        escalated_by_attempt=_int(
            data.get("escalated_by_attempt"), "expect.escalated_by_attempt", where, None
        ),
        fix_touches=_str_list(data, "fix_touches", where),
        reported_flaky=_str_list(data, "reported_flaky", where),
        escalation_names=_str_list(data, "escalation_names", where),
    )


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate ``<path>/scenario.yaml`` and list the commit folders."""
    folder = Path(path)
    spec = folder / "scenario.yaml"
    where = str(spec)
    if not spec.is_file():
        raise ConfigError(f"{folder}: no scenario.yaml")
    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping")
    for key in ("category", "failing_jobs", "expect"):
        if key not in data:
            raise ConfigError(f"{where}: '{key}' is missing")
    commits_dir = folder / "commits"
    commits = (
        sorted(p.name for p in commits_dir.iterdir() if p.is_dir()) if commits_dir.is_dir() else []
    )
    if not commits:
        raise ConfigError(f"{folder}: no commit folders under commits/")
    failing = _str_list(data, "failing_jobs", where)
    culprit = data.get("culprit")
    if culprit is not None and str(culprit) not in commits:
        raise ConfigError(f"{where}: culprit {culprit!r} is not a commit folder")
    root_cause = data.get("root_cause_job")
    if root_cause is not None and str(root_cause) not in failing:
        raise ConfigError(f"{where}: root_cause_job {root_cause!r} is not in failing_jobs")
    return Scenario(
        name=str(data.get("name") or folder.name),
        path=str(folder.resolve()),
        summary=str(data.get("summary") or ""),
        category=_enum(FailureCategory, data["category"], "category", where),
        failing_jobs=failing,
        expect=_expectation(data["expect"], where),
        root_cause_job=None if root_cause is None else str(root_cause),
        culprit=None if culprit is None else str(culprit),
        requires=_str_list(data, "requires", where),
        notes=str(data.get("notes") or ""),
        commits=commits,
    )


def list_scenarios(folder: str | os.PathLike[str]) -> list[Scenario]:
    """Every scenario folder (one with a scenario.yaml) under ``folder``, by name."""
    base = Path(folder)
    return [load_scenario(p) for p in sorted(base.iterdir()) if (p / "scenario.yaml").is_file()]


# --------------------------------------------------------------------------- materialising
def _git(args: list[str], cwd: Path) -> str:
    env = {**git_env(), **GIT_IDENTITY}
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    if proc.returncode != 0:
        raise ProviderError(f"git {' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def apply_commit_folder(src: Path, tree: Path) -> str:
    """Copy a commit folder over the work tree and delete what it lists; returns the message."""
    for item in src.rglob("*"):
        rel = item.relative_to(src)
        if rel.as_posix() in SCENARIO_FILES:
            continue
        target = tree / rel
        if item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            # a new time, not the source's: two versions of a file alike in size and time
            # (as a fresh checkout makes them) would look unchanged to git's index
            shutil.copy(item, target)
    delete = src / DELETE_FILE
    if delete.is_file():
        for line in delete.read_text(encoding="utf-8").splitlines():
            rel_path = line.strip()
            if not rel_path or rel_path.startswith("#"):
                continue
            target = (tree / rel_path).resolve()
            if tree.resolve() not in target.parents:
                raise ConfigError(f"{delete}: refusing to delete {rel_path!r} outside the tree")
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    message_file = src / MESSAGE_FILE
    message = message_file.read_text(encoding="utf-8").strip() if message_file.is_file() else ""
    return message or src.name


def materialize(
    scenario_dir: str | os.PathLike[str] | Scenario,
    provider: LocalProvider,
    repo: str | None = None,
    *,
    wait: bool = True,
    timeout: float = 300.0,
) -> MaterializedScenario:
    """Create the repository and push each commit folder as one commit on ``main``.

    With ``wait`` each commit's CI runs are awaited before the next push (a green history,
    one run per commit); the head's run is then in ``head_run``.
    """
    scenario = scenario_dir if isinstance(scenario_dir, Scenario) else load_scenario(scenario_dir)
    repo = repo or f"scenarios/{_slug(scenario.name)}"
    bare = Path(provider.create_repository(repo, default_branch=BRANCH))
    result = MaterializedScenario(scenario=scenario, repo=repo, head_sha="")
    with tempfile.TemporaryDirectory(prefix="cicd-scenario-") as tmp:
        tree = Path(tmp) / "tree"
        _git(["init", "--quiet", f"--initial-branch={BRANCH}", str(tree)], Path(tmp))
        for folder in scenario.commits:
            message = apply_commit_folder(scenario.commit_dir(folder), tree)
            _git(["add", "--all", "."], tree)
            _git(["commit", "--quiet", "--allow-empty", "-m", message], tree)
            sha = _git(["rev-parse", "HEAD"], tree).strip()
            _git(["push", "--quiet", str(bare), f"HEAD:refs/heads/{BRANCH}"], tree)
            result.commits.append((folder, sha))
            result.runs[folder] = [r.id for r in provider.list_runs(repo, head_sha=sha)]
            if wait:
                for run_id in result.runs[folder]:
                    run = provider.wait_for_run(repo, run_id, timeout=timeout)
                    if folder == scenario.commits[-1]:
                        result.head_run = run
                    log.info("%s %s: run %s %s", repo, folder, run_id, run.conclusion)
    result.head_sha = result.commits[-1][1]
    return result


@dataclass(frozen=True)
class Template:
    """A scenario materialised once, in a local provider of its own under ``root``."""

    root: Path
    made: MaterializedScenario


def materialize_template(
    scenario_dir: str | os.PathLike[str] | Scenario, root: Path, repo: str | None = None
) -> Template:
    """Materialise the scenario in a new local provider under ``root``, to copy from."""
    return Template(root, materialize(scenario_dir, LocalProvider(root), repo))


def copy_template(template: Template, root: Path) -> tuple[LocalProvider, MaterializedScenario]:
    """A local provider under ``root`` (a new folder) holding a copy of the template's
    repository, runs and logs, and the template's record of them (the same shas and ids).
    The copy's hook starts the copy's own runs; the template stays as it was."""
    shutil.copytree(template.root, root, symlinks=True)
    # the run records name their job logs by path
    old, new = (json.dumps(str(p))[1:-1] for p in (template.root, root))
    for record in (root / "data").glob("*/*/runs/*.json"):
        record.write_text(record.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    provider = LocalProvider(root)
    provider.create_repository(template.made.repo)  # idempotent: the hook names the new root
    return provider, copy.deepcopy(template.made)


def _slug(name: str) -> str:
    out = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    return out.strip("-.") or "scenario"


def fail_head_until_red(
    provider: LocalProvider,
    repo: str,
    head_sha: str,
    max_tries: int = 10,
    timeout: float = 300.0,
) -> Run:
    """Re-run the head's workflow run until an attempt fails (for a flaky head); returns it.

    Raises ProviderError when no attempt failed in ``max_tries`` runs.
    """
    runs = provider.list_runs(repo, head_sha=head_sha)
    if not runs:
        raise ProviderError(f"no CI run for {head_sha[:12]} in {repo}")
    run = provider.wait_for_run(repo, runs[0].id, timeout=timeout)
    tries = 1
    while not _failed(run):
        if tries >= max_tries:
            raise ProviderError(f"{repo}@{head_sha[:12]} stayed green in {max_tries} runs")
        attempt = provider.rerun_all_jobs(repo, run.id)
        run = provider.wait_for_run(repo, run.id, attempt=attempt, timeout=timeout)
        tries += 1
    return run


def _failed(run: Run) -> bool:
    return run.status is RunStatus.COMPLETED and run.conclusion in FAILED_CONCLUSIONS


def head_failed_jobs(provider: LocalProvider, repo: str, head_sha: str) -> list[str]:
    """Names of the failed jobs of the latest run of the head (for checks and reports)."""
    runs = provider.list_runs(repo, head_sha=head_sha)
    if not runs:
        return []
    run = provider.get_run(repo, runs[0].id)
    return sorted(j.name for j in run.failed_jobs)
