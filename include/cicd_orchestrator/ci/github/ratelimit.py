"""Rate limits of the GitHub API: an ETag cache for conditional requests and a bounded back-off.

GitHub does not count a ``304 Not Modified`` answer to a conditional request against the
rate limit, so what a sweep polls (the runs of a branch) is asked with ``If-None-Match`` and
the cached body is reused when nothing changed.

The back-off retries one operation (a whole lookup-then-write, so a retried write finds what
the failed try may have written) on:

- 403/429 with ``Retry-After`` (a secondary rate limit): wait that long;
- 403/429 with ``X-RateLimit-Remaining: 0`` (the primary limit): wait until
  ``X-RateLimit-Reset``;
- 5xx answers, timeouts, connection resets and truncated bodies: exponential back-off;

every wait bounded by ``max_wait`` and the number of tries by ``max_tries``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")


class RateLimitedError(ProviderError):
    """GitHub kept refusing with a rate limit beyond the bounded back-off."""


# --------------------------------------------------------------------------- ETag cache
@dataclass
class CachedResponse:
    etag: str
    data: Any


class EtagCache:
    """ETag and body per URL (thread-safe; kept on disk when ``path`` is given, so the next
    sweep in another process can still send ``If-None-Match``)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, max_entries: int = 512):
        self.path = Path(path) if path else None
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, CachedResponse] = {}
        self.hits = 0
        if self.path and self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = {k: CachedResponse(v["etag"], v["data"]) for k, v in raw.items()}
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring the unreadable ETag cache %s: %s", self.path, exc)

    def get(self, url: str) -> CachedResponse | None:
        with self._lock:
            return self._entries.get(url)

    def put(self, url: str, etag: str, data: Any) -> None:
        with self._lock:
            self._entries.pop(url, None)
            self._entries[url] = CachedResponse(etag, data)
            while len(self._entries) > self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._save()

    def hit(self) -> None:
        with self._lock:
            self.hits += 1

    def _save(self) -> None:
        if not self.path:
            return
        data = {k: {"etag": v.etag, "data": v.data} for k, v in self._entries.items()}
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- back-off
@dataclass(frozen=True)
class BackoffPolicy:
    """How long and how often to retry. ``max_wait`` bounds each single wait (a primary
    limit resetting later than that fails at once with RateLimitedError)."""

    max_tries: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_wait: float = 120.0


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _status_and_headers(exc: BaseException) -> tuple[int | None, Any]:
    status = getattr(exc, "status", None)
    headers = getattr(exc, "headers", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
        headers = getattr(response, "headers", None)
    return (status if isinstance(status, int) else None), headers


def _is_transport_error(exc: BaseException) -> bool:
    import requests
    import urllib3.exceptions

    transport = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.TimeoutError,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(exc, transport):
        return True
    # a body cut short parses as invalid JSON inside PyGithub
    return isinstance(exc, ValueError) and "Expecting" in str(exc)


def retry_delay(exc: BaseException, attempt: int, policy: BackoffPolicy) -> float | None:
    """Seconds to wait before retrying after ``exc`` (try number ``attempt``, from 1), or
    None when the error is not worth retrying. Raises RateLimitedError when the primary
    limit resets later than ``policy.max_wait``."""
    backoff = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    status, headers = _status_and_headers(exc)
    if status in (403, 429):
        retry_after = _header(headers, "Retry-After")
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), policy.max_wait)
        remaining = _header(headers, "X-RateLimit-Remaining")
        reset = _header(headers, "X-RateLimit-Reset")
        if remaining == "0":
            wait = max(0.0, float(reset) - time.time()) + 0.5 if reset and reset.isdigit() else 60
            if wait > policy.max_wait:
                raise RateLimitedError(
                    f"the GitHub rate limit resets in {wait:.0f}s, beyond the "
                    f"{policy.max_wait:.0f}s the orchestrator waits; the next sweep retries"
                ) from exc
            return wait
        if status == 429 or "rate limit" in str(exc).lower():
            return backoff
        return None  # a plain 403: permissions, not a limit
    if status is not None and 500 <= status < 600:
        return backoff
    if status is None and _is_transport_error(exc):
        return backoff
    return None


def with_backoff(
    fn: Callable[[], T],
    policy: BackoffPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` and retry it as ``retry_delay`` says, at most ``policy.max_tries`` times."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            delay = retry_delay(exc, attempt, policy)
            if delay is None:
                raise
            if attempt >= policy.max_tries:
                raise ProviderError(
                    f"{what} failed after {attempt} tries: {redact(_describe(exc))}"
                ) from exc
            log.warning(
                "%s: %s; retrying in %.1fs (try %d of %d)",
                what,
                redact(_describe(exc)),
                delay,
                attempt + 1,
                policy.max_tries,
            )
            sleep(delay)


def _describe(exc: BaseException) -> str:
    status, _ = _status_and_headers(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"HTTP {status}: {text[:200]}" if status else f"{type(exc).__name__}: {text[:200]}"
