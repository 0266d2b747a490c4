"""The local provider's events as on GitHub: path filters of pushes, pull request runs
(opened, synchronize, pull_request_target), which workflows an event starts, job tokens."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cicd_devkit.worlds import signed_marker

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import Conclusion

REPO = "acme/widgets"
WORKFLOW = ".github/workflows/ci.yml"

MAIN_AND_PRS = """\
name: CI
on:
  push:
    branches: [main]
  pull_request:
jobs:
  show:
    steps:
      - run: |
          echo "event=$GITHUB_EVENT_NAME ref=$GITHUB_REF"
          echo "head=$GITHUB_HEAD_REF base=$GITHUB_BASE_REF"
          echo "number=${{ github.event.pull_request.number }}"
          echo "sha=${{ github.event.pull_request.head.sha }}"
          echo "token=${{ secrets.GITHUB_TOKEN }} same=${{ secrets.GITHUB_TOKEN == github.token }}"
          echo "configured=${{ secrets.API_KEY }}"
          test -n "${{ github.token }}"
"""


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    prov = LocalProvider(
        tmp_path / "ci", secrets={"API_KEY": "k-123456", "GITHUB_TOKEN": "orchestrator-secret"}
    )
    prov.create_repository(REPO)
    return prov


def push(provider: LocalProvider, work: Any, branch: str) -> str:
    url = str(provider.repo_path(REPO))
    subprocess.run(
        ["git", "push", "-q", url, f"HEAD:refs/heads/{branch}"], cwd=work.path, check=True
    )
    return str(work.head())


def log_of(provider: LocalProvider, run_id: int) -> str:
    run = provider.wait_for_run(REPO, run_id, timeout=120)
    assert run.conclusion is Conclusion.SUCCESS, run
    (job,) = run.jobs
    return provider.job_log_text(REPO, job.id)


def test_a_fix_branch_gets_ci_through_its_pull_request(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    work = make_git_repo("work")
    main_sha = work.commit({WORKFLOW: MAIN_AND_PRS, "a.txt": "1\n"}, "initial")
    push(provider, work, "main")
    assert [r.event for r in provider.list_runs(REPO, branch="main")] == ["push"]
    work.git("checkout", "-q", "-b", "cicd-fix/a")
    fix_sha = work.commit({"a.txt": "2\n"}, "fix")
    push(provider, work, "cicd-fix/a")
    # the branch filter of push leaves the fix branch without a push run ...
    assert provider.list_runs(REPO, branch="cicd-fix/a") == []
    assert provider.workflows_for(REPO, fix_sha, "push", branch="cicd-fix/a") == []
    # ... but a pull request into main would run it
    assert provider.workflows_for(
        REPO, fix_sha, "pull_request", branch="cicd-fix/a", base_branch="main", action="opened"
    ) == [WORKFLOW]
    marker = signed_marker("pull-request", "events")
    pr = provider.open_or_update_pull_request(REPO, "cicd-fix/a", "main", "Fix", "b", marker)
    (run,) = provider.list_runs(REPO, branch="cicd-fix/a", head_sha=fix_sha)
    assert run.event == "pull_request" and run.pull_request_number == pr.number
    assert [r.id for r in provider.ref_status(REPO, fix_sha).runs] == [run.id]
    text = log_of(provider, run.id)
    assert f"event=pull_request ref=refs/pull/{pr.number}/merge" in text
    assert "head=cicd-fix/a base=main" in text
    assert f"number={pr.number}" in text and f"sha={fix_sha}" in text
    assert "token=*** same=true" in text and "configured=***" in text
    assert "orchestrator-secret" not in text and "ghs_" not in text
    # updating the pull request starts nothing; a push to its branch is a synchronize
    provider.open_or_update_pull_request(REPO, "cicd-fix/a", "main", "Fix 2", "b", marker)
    assert len(provider.list_runs(REPO, branch="cicd-fix/a")) == 1
    second = work.commit({"a.txt": "3\n"}, "more")
    push(provider, work, "cicd-fix/a")
    (sync,) = provider.list_runs(REPO, head_sha=second)
    assert sync.event == "pull_request" and sync.pull_request_number == pr.number
    assert "number=" in log_of(provider, sync.id)
    assert main_sha != fix_sha


def test_push_path_filters_see_the_files_the_push_changed(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    wf = "on:\n  push:\n    paths: ['src/**']\njobs:\n  a:\n    steps:\n      - run: 'true'\n"
    work = make_git_repo("work")
    work.commit({WORKFLOW: wf, "src/a.py": "1\n"}, "initial")
    push(provider, work, "main")  # a new default branch: changes unknown, the workflow runs
    assert len(provider.list_runs(REPO, branch="main")) == 1
    docs = work.commit({"docs/x.md": "x\n"}, "docs")
    push(provider, work, "main")
    assert provider.list_runs(REPO, head_sha=docs) == []
    src = work.commit({"src/a.py": "2\n"}, "code")
    push(provider, work, "main")
    assert len(provider.list_runs(REPO, head_sha=src)) == 1
    # a new branch is compared with its merge base with the default branch
    work.git("checkout", "-q", "-b", "docs-only")
    only_docs = work.commit({"docs/y.md": "y\n"}, "more docs")
    push(provider, work, "docs-only")
    assert provider.list_runs(REPO, head_sha=only_docs) == []
    assert provider.push_changed_paths(REPO, "docs-only", "0" * 40, only_docs) == ["docs/y.md"]
    assert provider.workflows_for(REPO, only_docs, "push", "docs-only", None, ["docs/y.md"]) == []
    assert provider.workflows_for(REPO, only_docs, "push", "docs-only", None, ["src/b"]) == [
        WORKFLOW
    ]


def test_pull_request_target_runs_the_base_workflow_on_the_base(
    provider: LocalProvider, make_git_repo: Any
) -> None:
    base_wf = (
        "on: pull_request_target\njobs:\n  t:\n    steps:\n"
        '      - run: echo "from base ref=$GITHUB_REF head=${{ github.head_ref }}"\n'
    )
    work = make_git_repo("work")
    base_sha = work.commit({WORKFLOW: base_wf}, "initial")
    push(provider, work, "main")
    work.git("checkout", "-q", "-b", "feature")
    head_sha = work.commit({WORKFLOW: base_wf.replace("from base", "from head")}, "change")
    push(provider, work, "feature")
    marker = signed_marker("pull-request", "target")
    pr = provider.open_or_update_pull_request(REPO, "feature", "main", "T", "b", marker)
    (run,) = [r for r in provider.list_runs(REPO) if r.event == "pull_request_target"]
    assert run.head_sha == base_sha != head_sha and run.pull_request_number == pr.number
    assert run.head_branch == "feature"
    assert "from base ref=refs/heads/main head=feature" in log_of(provider, run.id)


def test_each_job_gets_a_token_of_its_own(provider: LocalProvider, make_git_repo: Any) -> None:
    wf = "on: push\njobs:\n" + "".join(
        f"  j{i}:\n    steps:\n      - run: echo ${{{{ github.token }}}} > /dev/null\n"
        f'      - run: echo "${{{{ github.token }}}}" | sha256sum\n'
        for i in (1, 2)
    )
    work = make_git_repo("work")
    work.commit({WORKFLOW: wf}, "initial")
    push(provider, work, "main")
    (run,) = provider.list_runs(REPO)
    done = provider.wait_for_run(REPO, run.id, timeout=120)
    digests = set()
    for job in done.jobs:
        text = provider.job_log_text(REPO, job.id)
        digests.add(next(ln.split()[1] for ln in text.splitlines() if ln.endswith(" -")))
    assert len(digests) == 2  # two jobs, two tokens


def test_runs_get_the_deployment_s_job_settings(
    make_git_repo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process that executes a run (started by a push's hook, whoever pushed) gets the
    deployment's job settings the provider recorded (a package mirror's variables and
    read-only folders), and nothing else of the environment that made the provider."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "index.txt").write_text("from the mirror\n", encoding="utf-8")
    monkeypatch.setenv("CICD_JOB_ENV", '{"PIP_INDEX_URL": "file:///srv/mirror/simple"}')
    monkeypatch.setenv("CICD_JOB_READ_ONLY", str(mirror))
    monkeypatch.setenv("SOME_WORKER_SECRET", "s3cr3t-value")
    provider = LocalProvider(tmp_path / "ci")
    provider.create_repository(REPO)
    work = make_git_repo("work")
    workflow = f"""\
on: push
jobs:
  show:
    steps:
      - run: |
          echo "index=$PIP_INDEX_URL"
          cat {mirror}/index.txt
          echo "secret=${{SOME_WORKER_SECRET:-none}}"
"""
    work.commit({WORKFLOW: workflow}, "initial")
    # a push by a process without those settings (the orchestrator's git pushes so)
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    url = str(provider.repo_path(REPO))
    subprocess.run(["git", "push", "-q", url, "HEAD:refs/heads/main"], cwd=work.path, env=bare)
    (run,) = provider.list_runs(REPO, branch="main")
    text = log_of(provider, run.id)
    assert "index=file:///srv/mirror/simple" in text
    assert "from the mirror" in text
    assert "secret=none" in text
