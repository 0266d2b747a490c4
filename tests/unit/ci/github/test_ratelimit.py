"""GitHub's rate limits: the back-off decisions and the ETag cache (without a server), then
the provider meeting each fault of the GitHub-compatible server (a sweep with nothing new is
a free 304)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from cicd_devkit.worlds import FAST, REPO, GitHubWorld
from cicd_devkit.worlds import GITHUB_TOKEN as TOKEN
from github import GithubException

from cicd_orchestrator.ci.github.ratelimit import EtagCache, retry_delay
from cicd_orchestrator.ci.retry import BackoffPolicy, RateLimitedError, with_backoff
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import ProviderError

POLICY = BackoffPolicy(max_tries=3, base_delay=1.0, max_delay=4.0, max_wait=60.0)


def gh_error(status: int, headers: dict[str, str], message: str = "x") -> GithubException:
    return GithubException(status, {"message": message}, headers)


def test_retry_delays() -> None:
    assert retry_delay(gh_error(403, {"Retry-After": "7"}), 1, POLICY) == 7
    reset = str(int(time.time()) + 10)
    wait = retry_delay(
        gh_error(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}), 1, POLICY
    )
    assert wait is not None and 9 <= wait <= 11
    assert retry_delay(gh_error(502, {}), 3, POLICY) == 4.0
    assert retry_delay(gh_error(429, {}), 1, POLICY) == 1.0
    assert (
        retry_delay(gh_error(403, {}, "Resource not accessible by integration"), 1, POLICY) is None
    )
    assert retry_delay(gh_error(404, {}), 1, POLICY) is None
    assert retry_delay(requests.exceptions.ReadTimeout(), 2, POLICY) == 2.0
    late = str(int(time.time()) + 3600)
    with pytest.raises(RateLimitedError):
        retry_delay(
            gh_error(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": late}), 1, POLICY
        )


def test_with_backoff_retries_then_gives_up() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise gh_error(503, {})
        return "ok"

    assert with_backoff(flaky, POLICY, "flaky", retry_delay, sleep=sleeps.append) == "ok"
    assert sleeps == [1.0, 2.0]

    def broken() -> str:
        raise gh_error(500, {})

    with pytest.raises(ProviderError, match="failed after 3 tries"):
        with_backoff(broken, POLICY, "broken", retry_delay, sleep=sleeps.append)


def test_etag_cache_persists(tmp_path: Path) -> None:
    cache = EtagCache(tmp_path / "etags.json", max_entries=2)
    cache.put("/a", '"1"', {"x": 1})
    cache.put("/b", '"2"', [1])
    cache.put("/c", '"3"', None)
    again = EtagCache(tmp_path / "etags.json")
    assert again.get("/a") is None and again.get("/b").data == [1]  # type: ignore[union-attr]


# --------------------------------------------------------------------------- the provider
def test_a_sweep_with_nothing_new_costs_no_rate_limit(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    head = github_world.head_run_id
    assert [r.id for r in gh.list_failed_runs(REPO, "main", since_run_id=0)] == [head]
    used = github_world.github.rate_used
    before = len(github_world.github.requests)
    assert gh.list_failed_runs(REPO, "main", since_run_id=head) == []
    new = github_world.github.requests[before:]
    assert [(r.status, r.counted) for r in new] == [(304, False)]
    assert github_world.github.rate_used == used
    assert gh.not_modified == 1 and gh.etags.hits == 1


@pytest.mark.parametrize(
    ("kind", "options", "min_sleep"),
    [
        ("error", {"status": 502}, 0.0),
        ("error", {"status": 503, "count": 2}, 0.0),
        ("secondary", {"retry_after": 1}, 1.0),
        ("primary", {"reset_in": 1}, 0.5),
        ("timeout", {"delay": 1.5}, 0.0),
        ("truncate", {}, 0.0),
    ],
)
def test_back_off_on_each_fault_then_succeed(
    github_world: GitHubWorld, kind: str, options: dict[str, int], min_sleep: float
) -> None:
    gh = github_world.provider()
    github_world.sleeps.clear()
    fault = github_world.github.inject(kind, path=r"/actions/runs/\d+$", **options)
    run = gh.get_run(REPO, github_world.head_run_id)
    assert run.conclusion is Conclusion.FAILURE
    assert fault.fired == options.get("count", 1)
    assert len(github_world.sleeps) == fault.fired
    assert max(github_world.sleeps) >= min_sleep
    assert max(github_world.sleeps) <= FAST.max_wait


def test_back_off_is_bounded(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    github_world.github.inject("error", count=10, path=r"/repos/acme/shipping$")
    with pytest.raises(ProviderError, match="failed after 4 tries") as info:
        gh.default_branch(REPO)
    assert TOKEN not in str(info.value)
    github_world.github.clear_faults()
    gh2 = github_world.provider(backoff=BackoffPolicy(max_tries=3, max_wait=2.0))
    github_world.github.inject("primary", path=r"/repos/acme/shipping$", reset_in=600)
    start = time.monotonic()
    with pytest.raises(RateLimitedError, match="resets in"):
        gh2.default_branch(REPO)
    assert time.monotonic() - start < 2


def test_downloads_back_off_too(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    run = gh.get_run(REPO, github_world.head_run_id)
    github_world.github.inject("truncate", path=r"^/_blobs/job-logs/")
    github_world.github.inject("error", path=r"^/_blobs/job-logs/", status=500)
    with gh.open_job_log(REPO, run.failed_jobs[0].id) as fh:
        assert fh.read() == github_world.local.job_log_text(REPO, run.failed_jobs[0].id).encode()
