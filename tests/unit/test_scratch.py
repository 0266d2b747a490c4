"""Scratch directories: marked with their owner, removed once the owner died (a worker killed
mid-task), never while it lives, never another host's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from cicd_orchestrator import scratch
from cicd_orchestrator.git import MirrorCache, checkout


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv(scratch.ROOT_ENV, str(tmp_path / "scratch"))
    return tmp_path / "scratch"


_MAKE_AND_DIE = """
import os, sys
from cicd_orchestrator import scratch
path = scratch.make_scratch("cicd-ws-")
(path / "repo").mkdir()
print(path, flush=True)
os.kill(os.getpid(), 9)
"""


def test_a_directory_of_a_killed_process_is_removed_by_the_next_one(root):
    proc = subprocess.run(
        [sys.executable, "-c", _MAKE_AND_DIE],
        capture_output=True,
        text=True,
        env={**os.environ, scratch.ROOT_ENV: str(root)},
        check=False,
    )
    assert proc.returncode == -9
    orphan = root / proc.stdout.strip().split("/")[-1]
    assert orphan.is_dir() and (orphan / scratch.OWNER_FILE).exists()
    mine = scratch.make_scratch("cicd-job-")
    assert not orphan.exists()
    assert mine.is_dir()


def test_a_living_owner_keeps_its_directory(root):
    first = scratch.make_scratch("cicd-ws-")
    second = scratch.make_scratch("cicd-ws-")
    assert first.is_dir() and second.is_dir()
    assert scratch.sweep_stale(root) == []


def test_a_reused_pid_is_not_the_owner(root):
    path = scratch.make_scratch("cicd-ws-")
    host, pid, _started = (path / scratch.OWNER_FILE).read_text().split("\n")[:3]
    (path / scratch.OWNER_FILE).write_text(f"{host}\n{pid}\n1\n")  # same pid, other start
    assert scratch.sweep_stale(root) == [path]


def test_other_hosts_and_foreign_directories_are_left_alone(root):
    other = scratch.make_scratch("cicd-ws-")
    (other / scratch.OWNER_FILE).write_text("another-host\n1\n1\n")
    unrelated = root / "something-else"
    unrelated.mkdir()
    fresh_unmarked = root / "cicd-ws-being-made"
    fresh_unmarked.mkdir()
    old_unmarked = root / "cicd-job-old"
    old_unmarked.mkdir()
    old = time.time() - scratch.UNMARKED_GRACE_SECONDS - 10
    os.utime(old_unmarked, (old, old))
    assert scratch.sweep_stale(root) == [old_unmarked]
    assert other.exists() and unrelated.exists() and fresh_unmarked.exists()
    assert scratch.owner_alive("another-host\n1\n1\n") is None
    assert scratch.owner_alive(f"{socket.gethostname()}\nnot-a-pid\n\n") is False


def test_checkout_works_in_a_marked_directory_and_removes_it(root, tmp_path):
    src = tmp_path / "src"
    subprocess.run(["git", "init", "-q", "-b", "main", str(src)], check=True)
    (src / "a.txt").write_text("a\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "add", "-A"], cwd=src, check=True)
    subprocess.run(["git", "commit", "-qm", "a"], cwd=src, check=True, env=env)
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, check=True
    ).stdout.strip()
    from cicd_orchestrator.ci.base import GitRemote

    mirror = MirrorCache(tmp_path / "cache").mirror("o/r", GitRemote(url=str(src)), [sha])
    with checkout(mirror, sha) as ws:
        assert ws.path.parent.parent == root
        assert (ws.path / "a.txt").read_text() == "a\n"
        assert ws.changed_files() == []
    assert list(root.iterdir()) == []
