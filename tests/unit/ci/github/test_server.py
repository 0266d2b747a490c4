"""The GitHub-compatible server itself: authentication, ETags, rate-limit headers, git."""

from __future__ import annotations

import json

import requests
from cicd_devkit.servers.github.payloads import fixture_text
from cicd_devkit.worlds import GITHUB_TOKEN as TOKEN
from cicd_devkit.worlds import REPO, GitHubWorld

from cicd_orchestrator import git


def test_the_api_requires_the_token(github_world: GitHubWorld) -> None:
    url = f"{github_world.github.api_url}/repos/{REPO}"
    assert requests.get(url, timeout=5).status_code == 401
    bad = requests.get(url, headers={"Authorization": "token nope"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    for scheme in ("token", "Bearer"):
        ok = requests.get(url, headers={"Authorization": f"{scheme} {TOKEN}"}, timeout=5)
        assert ok.status_code == 200 and ok.json()["full_name"] == REPO


def test_etag_and_rate_limit_headers(github_world: GitHubWorld) -> None:
    url = f"{github_world.github.api_url}/repos/{REPO}/actions/runs"
    auth = {"Authorization": f"token {TOKEN}"}
    first = requests.get(url, headers=auth, timeout=5)
    remaining = int(first.headers["X-RateLimit-Remaining"])
    assert first.json()["total_count"] == 2 and first.headers["ETag"]
    again = requests.get(url, headers={**auth, "If-None-Match": first.headers["ETag"]}, timeout=5)
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["X-RateLimit-Remaining"]) == remaining
    third = requests.get(url, headers=auth, timeout=5)
    assert int(third.headers["X-RateLimit-Remaining"]) == remaining - 1


def test_payloads_keep_the_documented_shape(github_world: GitHubWorld) -> None:
    auth = {"Authorization": f"token {TOKEN}"}
    url = f"{github_world.github.api_url}/repos/{REPO}/actions/runs/{github_world.head_run_id}"
    run = requests.get(url, headers=auth, timeout=5).json()
    documented = json.loads(fixture_text("workflow_run"))
    assert set(documented) <= set(run)
    assert run["head_sha"] == github_world.head_sha and run["conclusion"] == "failure"


def test_git_needs_the_token(github_world: GitHubWorld) -> None:
    url = f"{github_world.github.url}/{REPO}.git"
    proc = git.run(["ls-remote", url], extra_env={"HOME": str(github_world.tmp)})
    assert proc.returncode != 0
