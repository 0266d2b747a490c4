"""The GitLab-compatible server itself: authentication, pagination, payload shapes, git."""

from __future__ import annotations

import json

import requests
from cicd_devkit.servers.gitlab.payloads import fixture_text, project_id
from cicd_devkit.worlds import GITLAB_TOKEN as TOKEN
from cicd_devkit.worlds import REPO, GitLabWorld

from cicd_orchestrator import git

ENCODED = REPO.replace("/", "%2F")


def test_the_api_requires_the_token(gitlab_world: GitLabWorld) -> None:
    url = f"{gitlab_world.gitlab.api_url}/projects/{ENCODED}"
    assert requests.get(url, timeout=5).status_code == 401
    bad = requests.get(url, headers={"PRIVATE-TOKEN": "nope"}, timeout=5)
    assert bad.status_code == 401 and bad.json()["message"] == "401 Unauthorized"
    for headers in ({"PRIVATE-TOKEN": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}):
        ok = requests.get(url, headers=headers, timeout=5)
        assert ok.status_code == 200 and ok.json()["path_with_namespace"] == REPO
        assert int(ok.headers["RateLimit-Remaining"]) > 0
    by_id = requests.get(
        f"{gitlab_world.gitlab.api_url}/projects/{project_id(REPO)}",
        headers={"PRIVATE-TOKEN": TOKEN},
        timeout=5,
    )
    assert by_id.json()["path_with_namespace"] == REPO
    missing = requests.get(
        f"{gitlab_world.gitlab.api_url}/projects/acme%2Fnope",
        headers={"PRIVATE-TOKEN": TOKEN},
        timeout=5,
    )
    assert missing.status_code == 404


def test_offset_pagination_headers(gitlab_world: GitLabWorld) -> None:
    url = f"{gitlab_world.gitlab.api_url}/projects/{ENCODED}/pipelines"
    auth = {"PRIVATE-TOKEN": TOKEN}
    first = requests.get(url, params={"per_page": 1}, headers=auth, timeout=5)
    assert len(first.json()) == 1
    assert first.headers["X-Total"] == "2" and first.headers["X-Total-Pages"] == "2"
    assert first.headers["X-Next-Page"] == "2" and 'rel="next"' in first.headers["Link"]
    second = requests.get(first.links["next"]["url"], headers=auth, timeout=5)
    assert second.headers["X-Next-Page"] == "" and second.json()[0]["id"] < first.json()[0]["id"]


def test_payloads_keep_the_documented_shape(gitlab_world: GitLabWorld) -> None:
    auth = {"PRIVATE-TOKEN": TOKEN}
    base = f"{gitlab_world.gitlab.api_url}/projects/{ENCODED}"
    run_id = gitlab_world.head_run_id
    checks = {
        "project": base,
        "pipeline": f"{base}/pipelines/{run_id}",
        "pipeline_basic": f"{base}/pipelines",
        "job": f"{base}/pipelines/{run_id}/jobs",
        "protected_branch": f"{base}/protected_branches",
        "branch": f"{base}/repository/branches/main",
        "commit_status": f"{base}/repository/commits/{gitlab_world.head_sha}/statuses",
    }
    for name, url in checks.items():
        data = requests.get(url, headers=auth, timeout=5).json()
        item = data[0] if isinstance(data, list) else data
        documented = json.loads(fixture_text(name))
        assert set(documented) <= set(item), (name, set(documented) - set(item))
    pipeline = requests.get(checks["pipeline"], headers=auth, timeout=5).json()
    assert pipeline["sha"] == gitlab_world.head_sha and pipeline["status"] == "failed"
    jobs = requests.get(checks["job"], params={"scope[]": "failed"}, headers=auth, timeout=5)
    assert [(j["name"], j["failure_reason"]) for j in jobs.json()] == [("lint", "script_failure")]


def test_git_needs_the_token(gitlab_world: GitLabWorld) -> None:
    url = f"{gitlab_world.gitlab.url}/{REPO}.git"
    proc = git.run(["ls-remote", url], extra_env={"HOME": str(gitlab_world.tmp)})
    assert proc.returncode != 0
