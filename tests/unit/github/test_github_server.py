"""The GitHub-compatible server itself: authentication, ETags, rate-limit headers, git."""

from __future__ import annotations

import subprocess

import requests
from gh_helpers import REPO, TOKEN, World

from cicd_orchestrator.testing.github_server.payloads import fixture_text


def test_the_api_requires_the_token(world: World) -> None:
    url = f"{world.server.api_url}/repos/{REPO}"
    assert requests.get(url, timeout=5).status_code == 401
    bad = requests.get(url, headers={"Authorization": "token nope"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    for scheme in ("token", "Bearer"):
        ok = requests.get(url, headers={"Authorization": f"{scheme} {TOKEN}"}, timeout=5)
        assert ok.status_code == 200 and ok.json()["full_name"] == REPO


def test_etag_and_rate_limit_headers(world: World) -> None:
    url = f"{world.server.api_url}/repos/{REPO}/actions/runs"
    auth = {"Authorization": f"token {TOKEN}"}
    first = requests.get(url, headers=auth, timeout=5)
    remaining = int(first.headers["X-RateLimit-Remaining"])
    assert first.json()["total_count"] == 2 and first.headers["ETag"]
    again = requests.get(url, headers={**auth, "If-None-Match": first.headers["ETag"]}, timeout=5)
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["X-RateLimit-Remaining"]) == remaining
    third = requests.get(url, headers=auth, timeout=5)
    assert int(third.headers["X-RateLimit-Remaining"]) == remaining - 1


def test_payloads_keep_the_documented_shape(world: World) -> None:
    auth = {"Authorization": f"token {TOKEN}"}
    url = f"{world.server.api_url}/repos/{REPO}/actions/runs/{world.made.head_run.id}"
    run = requests.get(url, headers=auth, timeout=5).json()
    import json

    documented = json.loads(fixture_text("workflow_run"))
    assert set(documented) <= set(run)
    assert run["head_sha"] == world.made.head_sha and run["conclusion"] == "failure"


def test_git_needs_the_token(world: World) -> None:
    proc = subprocess.run(
        ["git", "ls-remote", f"{world.server.url}/{REPO}.git"],
        env={"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0", "HOME": str(world.tmp)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
