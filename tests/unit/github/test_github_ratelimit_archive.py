"""Back-off decisions, the ETag cache and bounded zip extraction, without a server."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
import requests
from github import GithubException

from cicd_orchestrator.ci.github.archive import ArchiveError, ArchiveLimits, extract_zip
from cicd_orchestrator.ci.github.ratelimit import (
    BackoffPolicy,
    EtagCache,
    RateLimitedError,
    retry_delay,
    with_backoff,
)
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

    assert with_backoff(flaky, POLICY, "flaky", sleep=sleeps.append) == "ok"
    assert sleeps == [1.0, 2.0]

    def broken() -> str:
        raise gh_error(500, {})

    with pytest.raises(ProviderError, match="failed after 3 tries"):
        with_backoff(broken, POLICY, "broken", sleep=sleeps.append)


def test_etag_cache_persists(tmp_path: Path) -> None:
    cache = EtagCache(tmp_path / "etags.json", max_entries=2)
    cache.put("/a", '"1"', {"x": 1})
    cache.put("/b", '"2"', [1])
    cache.put("/c", '"3"', None)
    again = EtagCache(tmp_path / "etags.json")
    assert again.get("/a") is None and again.get("/b").data == [1]  # type: ignore[union-attr]


def test_extract_zip_limits(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("0_a.txt", "hello\n")
        zf.writestr("dir/", "")
        zf.writestr("1_job/2_step.txt", "step\n")
    files = extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "ok")
    assert sorted(p.relative_to(tmp_path / "ok").as_posix() for p in files) == [
        "0_a.txt",
        "1_job/2_step.txt",
    ]
    with pytest.raises(ArchiveError, match="members"):
        extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "n", ArchiveLimits(max_members=1))
    with pytest.raises(ArchiveError, match="not a valid zip"):
        extract_zip(io.BytesIO(b"not a zip"), tmp_path / "bad")


def test_extract_zip_selects_members_but_checks_the_whole_archive(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("0_lint.txt", "lint log\n")
        zf.writestr("1_test.txt", "test log\n")
    files = extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "one", select=lambda m: "lint" in m)
    assert [p.name for p in files] == ["0_lint.txt"]
    assert not (tmp_path / "one" / "1_test.txt").exists()
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("2_bomb.txt", b"\0" * 30_000_000)
    with pytest.raises(ArchiveError, match=r"'2_bomb.txt' inflates \d+x to 30000000 bytes"):
        extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "two", select=lambda m: "lint" in m)
    assert not any((tmp_path / "two").iterdir())


def test_a_lying_central_directory_is_caught_while_inflating(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("0_a.txt", b"a" * 5000)
    data = bytearray(buf.getvalue())
    # declare 10 bytes in the central directory; the member really holds 5000
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    limits = ArchiveLimits(max_member_bytes=1000)
    with pytest.raises((ArchiveError, zipfile.BadZipFile)):
        extract_zip(io.BytesIO(bytes(data)), tmp_path / "lie", limits)
    assert not (tmp_path / "lie" / "0_a.txt").exists()
