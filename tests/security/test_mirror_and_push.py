"""Finding 2 (its git parts): the mirrors are fetched with the token in the environment, and
the orchestrator pushes fix branches; a hook planted in a mirror, or a hostile
``~/.gitconfig`` of the worker (``url.<x>.insteadOf``, hooks, fsmonitor), neither runs nor
redirects a fetch or a push. The local CI provider's own post-receive hook still runs when
the orchestrator pushes to it. Only the https and file transports are allowed (plain http
to a loopback test server only)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import git
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.git import GitRemote, MirrorCache, checkout

REPO = "acme/shop"
WORKFLOW = ".github/workflows/ci.yml"


def _hook(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ntouch {marker}\n")
    path.chmod(0o755)


@pytest.fixture
def evil(make_git_repo: Any, tmp_path: Path) -> Path:
    """A bare repository the attacker would like the orchestrator to fetch from or push to."""
    work = make_git_repo("evil-work")
    work.commit({"app.py": "print('pwned')\n"}, "evil")
    bare = tmp_path / "evil.git"
    git.git(["clone", "--quiet", "--bare", str(work.path), str(bare)])
    return bare


@pytest.fixture
def hostile_home(
    tmp_path: Path, markers: Path, evil: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The worker's HOME with a ``~/.gitconfig`` (and an XDG one) that redirect the test's
    repository and the local provider's repository to ``evil`` and switch hooks and fsmonitor
    on."""
    base = os.path.realpath(tmp_path)
    home = tmp_path / "home"
    hooks = home / "hooks"
    for name in ("reference-transaction", "pre-push", "post-checkout", "post-commit"):
        _hook(hooks / name, markers / f"global-{name}")
    config = (
        f'[url "{evil}"]\n\tinsteadOf = {base}/repo\n\tinsteadOf = {tmp_path}/repo\n'
        f"\tpushInsteadOf = {base}/ci/repos/{REPO}.git\n"
        f"[core]\n\thooksPath = {hooks}\n\tfsmonitor = touch {markers}/global-fsmonitor\n"
        '[protocol "ext"]\n\tallow = always\n'
    )
    (home / ".gitconfig").write_text(config)
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".config" / "git" / "config").write_text(config)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


def _head_of(repo: Path, ref: str) -> str:
    return git.git(["rev-parse", ref], repo).strip()


def test_the_hostile_home_would_redirect_a_plain_git(
    git_repo: Any, evil: Path, hostile_home: Path
) -> None:
    """The attack is real: git as a person runs it fetches from ``evil``."""
    git_repo.commit({"app.py": "print('good')\n"}, "good")
    plain = subprocess.run(
        ["git", "ls-remote", str(git_repo.path), "HEAD"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HOME": str(hostile_home)},
    )
    assert plain.stdout.split()[0] == _head_of(evil, "HEAD") != git_repo.head()


def test_a_planted_mirror_hook_and_the_home_config_do_nothing_to_a_fetch(
    git_repo: Any, tmp_path: Path, markers: Path, evil: Path, hostile_home: Path
) -> None:
    first = git_repo.commit({"app.py": "print('one')\n"}, "one")
    cache = MirrorCache(tmp_path / "cache")
    remote = GitRemote(url=str(git_repo.path), env={"CICD_GIT_TOKEN": "canary-token"})
    mirror = cache.mirror(REPO, remote, [first])
    for name in ("reference-transaction", "post-update", "post-checkout", "pre-auto-gc"):
        _hook(mirror / "hooks" / name, markers / f"mirror-{name}")
    second = git_repo.commit({"app.py": "print('two')\n"}, "two")
    assert cache.mirror(REPO, remote, [second]) == mirror
    assert _head_of(mirror, "refs/remotes/origin/main") == second
    assert not git.has_commit(mirror, _head_of(evil, "HEAD"))
    with checkout(mirror, second) as ws:
        assert (ws.path / "app.py").read_text() == "print('two')\n"
        ws.commit("nothing")
    assert sorted(p.name for p in markers.iterdir()) == []


def test_a_push_goes_where_it_is_sent_and_the_providers_hook_runs(
    make_git_repo: Any, tmp_path: Path, markers: Path, evil: Path, hostile_home: Path
) -> None:
    provider = LocalProvider(tmp_path / "ci")
    provider.create_repository(REPO)
    work = make_git_repo("work")
    wf = "on: push\njobs:\n  build:\n    steps:\n      - run: 'true'\n"
    sha = work.commit({WORKFLOW: wf, "app.py": "print('one')\n"}, "one")
    work.git("push", "--quiet", str(provider.repo_path(REPO)), "HEAD:refs/heads/main")
    evil_head = _head_of(evil, "HEAD")
    with checkout(provider.repo_path(REPO), sha) as ws:
        (ws.path / "app.py").write_text("print('fixed')\n")
        fixed = ws.commit("Fix app")
        assert provider.push_branch(REPO, str(ws.path), "cicd-fix/app") == fixed
    assert provider.branch_sha(REPO, "cicd-fix/app") == fixed
    assert _head_of(evil, "HEAD") == evil_head
    assert not git.succeeds(["rev-parse", "--verify", "refs/heads/cicd-fix/app"], evil)
    # the provider's post-receive hook ran for both pushes: each started a run
    runs = {r.head_branch: r for r in provider.list_runs(REPO)}
    assert set(runs) == {"main", "cicd-fix/app"} and runs["cicd-fix/app"].head_sha == fixed
    for run in runs.values():
        provider.wait_for_run(REPO, run.id, timeout=60)
    assert sorted(p.name for p in markers.iterdir()) == []


def test_only_https_file_and_loopback_http_transports(markers: Path, hostile_home: Path) -> None:
    ext = git.run(["ls-remote", f"ext::sh -c touch% {markers}/ext"])
    assert ext.returncode != 0 and "transport 'ext' not allowed" in ext.stderr
    http = git.run(["ls-remote", "http://example.invalid/acme/shop.git"])
    assert http.returncode != 0 and "transport 'http' not allowed" in http.stderr
    assert "protocol.http.allow=always" in git.command_line(["fetch", "http://127.0.0.1:9/x"])
    assert "protocol.http.allow=always" in git.command_line(["fetch", "http://[::1]:9/x"])
    assert "protocol.http.allow=always" not in git.command_line(["fetch", "http://10.0.0.1/x"])
    assert sorted(p.name for p in markers.iterdir()) == []


def test_every_git_command_runs_with_the_safe_configuration(tmp_path: Path) -> None:
    line = git.command_line(["show", "HEAD"], tmp_path)
    for key, value in git.SAFE_CONFIG:
        assert f"{key}={value}" in line
    assert line[line.index("show") + 1 : line.index("show") + 3] == [
        "--no-textconv",
        "--no-ext-diff",
    ]
    environment = git.env({"HOME": "/root", "GIT_CONFIG_GLOBAL": "/root/.gitconfig"})
    assert environment["HOME"] == os.devnull and environment["GIT_CONFIG_GLOBAL"] == os.devnull
    assert environment["GIT_CONFIG_NOSYSTEM"] == "1" and environment["GIT_ATTR_NOSYSTEM"] == "1"
