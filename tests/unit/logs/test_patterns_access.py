"""Credentials and permissions refused by registries, git hosts and APIs, as their usual
clients print it: only a person can fix them (a secret to set, a permission to grant)."""

from __future__ import annotations

import re

import pytest

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import analyze_text
from cicd_orchestrator.logs.patterns import load_library

LIBRARY = load_library()
PREFILTER = re.compile(LIBRARY.prefilter_regex(), re.I)


def _github_log(command: str, *output: str) -> str:
    ts = "2024-05-01T10:00:00.1234567Z "
    lines = [f"##[group]Run {command}", command, "##[endgroup]", *output]
    lines.append("##[error]Process completed with exit code 1.")
    return "".join(f"{ts}{line}\n" for line in lines)


CREDENTIALS = {
    "npm-e401": ("npm publish", "npm ERR! code E401", "npm ERR! 401 Unauthorized - PUT x"),
    "npm-10-e401": ("npm ci", "npm error code E401", "npm error Unable to authenticate"),
    "npm-eneedauth": ("npm publish", "npm ERR! code ENEEDAUTH"),
    "pip-401": ("pip install -r r.txt", "ERROR: HTTP error 401 while getting https://pkgs.x/a"),
    "requests-401": (
        "python upload.py",
        "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://x/api",
    ),
    "twine-invalid-auth": (
        "twine upload dist/*",
        "ERROR    HTTPError: 403 Forbidden from https://upload.pypi.org/legacy/",
        "         Invalid or non-existent authentication information. See "
        "https://pypi.org/help/#invalid-auth for more information.",
    ),
    "docker-no-credentials": (
        "docker push registry.x/app:1",
        "no basic auth credentials",
    ),
    "docker-auth-required": (
        "docker pull registry.x/app:1",
        "Error response from daemon: Head https://registry.x/v2/app/manifests/1: "
        "unauthorized: authentication required",
    ),
    "github-bad-credentials": ("gh release create v1", "HTTP 401: Bad credentials (https://x)"),
    "gitlab-basic-denied": (
        "git push origin HEAD",
        "remote: HTTP Basic: Access denied",
        "fatal: Authentication failed for 'https://gitlab.x/acme/app.git/'",
    ),
    "curl-401": ("curl -fsS https://x/hook", "curl: (22) The requested URL returned error: 401"),
    "gradle-401": (
        "./gradlew publish",
        "> Could not PUT 'https://maven.x/a.jar'. Received status code 401 from server: "
        "Unauthorized",
    ),
    "maven-401": (
        "mvn deploy",
        "[ERROR] Failed to execute goal deploy: Transfer failed for https://m.x/a.jar "
        "status code: 401, reason phrase: Unauthorized (401)",
    ),
}

PERMISSIONS = {
    "npm-e403": ("npm publish", "npm ERR! code E403", "npm ERR! 403 403 Forbidden - PUT x"),
    "pip-403": ("pip download a", "ERROR: HTTP error 403 while getting https://pkgs.x/a"),
    "requests-403": ("python sync.py", "HTTPError: 403 Client Error: Forbidden for url: x"),
    "docker-push-denied": (
        "docker push ghcr.io/acme/app:1",
        "denied: requested access to the resource is denied",
    ),
    "ghcr-permission": ("docker push ghcr.io/acme/app:1", "denied: permission_denied: write"),
    "github-integration": (
        "gh pr comment 3 --body ok",
        "GraphQL: Resource not accessible by integration (addComment)",
    ),
    "github-push-denied": (
        "git push origin HEAD",
        "remote: Permission to acme/app.git denied to github-actions[bot].",
    ),
    "github-workflow-scope": (
        "git push origin HEAD",
        " ! [remote rejected] HEAD -> main (refusing to allow a GitHub App to create or "
        "update workflow `.github/workflows/ci.yml` without `workflows` permission)",
    ),
    "gitlab-403": ("release-cli create", "ERROR: 403 Forbidden"),
    "curl-403": ("curl -fsS https://x/hook", "curl: (22) The requested URL returned error: 403"),
    "gradle-403": (
        "./gradlew publish",
        "> Could not PUT 'https://maven.x/a.jar'. Received status code 403 from server: Forbidden",
    ),
}


def _check(lines: tuple[str, ...], recipe: str) -> None:
    command, *output = lines
    analysis = analyze_text(_github_log(command, *output))
    assert analysis.category is FailureCategory.CONFIGURATION, analysis.pattern
    assert analysis.recipe == recipe, analysis.pattern
    assert analysis.needs_person
    assert PREFILTER.search(analysis.evidence[0])


@pytest.mark.parametrize("case", sorted(CREDENTIALS))
def test_refused_or_missing_credentials_escalate_the_secret(case: str) -> None:
    _check(CREDENTIALS[case], "escalate-secret")


@pytest.mark.parametrize("case", sorted(PERMISSIONS))
def test_denied_access_escalates_the_permission(case: str) -> None:
    _check(PERMISSIONS[case], "escalate-permission")


@pytest.mark.parametrize(
    "line",
    [
        "E       assert 403 == 200",
        "FAILED tests/test_api.py::test_forbidden_for_anonymous - assert 401 == 403",
        "expected status 401 but the server answered 200",
    ],
)
def test_a_status_code_inside_a_test_assertion_stays_a_test_failure(line: str) -> None:
    analysis = analyze_text(_github_log("python -m pytest -q", line, "1 failed in 0.1s"))
    assert analysis.category is FailureCategory.TEST
    assert not analysis.needs_person
