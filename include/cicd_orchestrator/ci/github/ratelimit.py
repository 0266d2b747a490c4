"""Rate limits of the GitHub API: an ETag cache for conditional requests, and when to back off.

GitHub does not count a ``304 Not Modified`` answer to a conditional request against the
rate limit, so what a sweep polls (the runs of a branch) is asked with ``If-None-Match`` and
the cached body is reused when nothing changed.

The back-off (``ci.retry``) retries one operation on what ``retry_delay`` classifies:

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator.ci import retry
from cicd_orchestrator.ci.retry import BackoffPolicy

log = logging.getLogger(__name__)


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
def _headers_of(exc: BaseException) -> Any:
    if getattr(exc, "status", None) is not None:
        return getattr(exc, "headers", None)
    return getattr(getattr(exc, "response", None), "headers", None)


def _is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, retry.transport_errors()):
        return True
    # a body cut short parses as invalid JSON inside PyGithub
    return isinstance(exc, ValueError) and "Expecting" in str(exc)


def retry_delay(exc: BaseException, attempt: int, policy: BackoffPolicy) -> float | None:
    """Seconds to wait before retrying after ``exc`` (try number ``attempt``, from 1), or
    None when the error is not worth retrying. Raises RateLimitedError when the primary
    limit resets later than ``policy.max_wait``."""
    status, headers = retry.status_of(exc), _headers_of(exc)
    if status in (403, 429):
        return _rate_limit_delay(exc, status, headers, attempt, policy)
    if status is not None and 500 <= status < 600:
        return retry.exponential(policy, attempt)
    if status is None and _is_transport_error(exc):
        return retry.exponential(policy, attempt)
    return None


def _rate_limit_delay(
    exc: BaseException, status: int, headers: Any, attempt: int, policy: BackoffPolicy
) -> float | None:
    retry_after = retry.header(headers, "Retry-After")
    if retry_after is not None and retry_after.strip().isdigit():
        return min(float(retry_after), policy.max_wait)  # a secondary limit
    if retry.header(headers, "X-RateLimit-Remaining") == "0":  # the primary limit
        wait = retry.seconds_until(retry.header(headers, "X-RateLimit-Reset"))
        return retry.within_bound(60.0 if wait is None else wait, policy, "GitHub", exc)
    if status == 429 or "rate limit" in str(exc).lower():
        return retry.exponential(policy, attempt)
    return None  # a plain 403: permissions, not a limit
