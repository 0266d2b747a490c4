"""Rate limits and transient errors of the GitLab API: a bounded back-off per operation.

GitLab answers ``429 Too Many Requests`` with ``Retry-After`` (seconds) and
``RateLimit-Reset`` (a Unix time) when a user or IP limit is hit. The back-off retries one
operation (a whole lookup-then-write, so a retried write finds what the failed try may have
written) on:

- 429 with ``Retry-After``: wait that long; with ``RateLimit-Reset``: wait until then;
- 5xx answers, timeouts, connection resets and truncated bodies: exponential back-off;

every wait bounded by ``max_wait`` (a limit resetting later fails at once with
RateLimitedError) and the number of tries by ``max_tries``. python-gitlab's own retries are
switched off (``auth``) so that the waits stay bounded and the sleep can be injected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from cicd_orchestrator.ci.github.ratelimit import BackoffPolicy, RateLimitedError
from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["BackoffPolicy", "RateLimitedError", "retry_delay", "with_backoff"]


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "response_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _is_transport_error(exc: BaseException) -> bool:
    import requests
    import urllib3.exceptions
    from gitlab.exceptions import GitlabConnectionError, GitlabParsingError

    transport = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.TimeoutError,
        GitlabConnectionError,
        GitlabParsingError,  # a body cut short does not parse
        ConnectionError,
        TimeoutError,
    )
    return isinstance(exc, transport) or isinstance(exc.__cause__, transport)


def retry_delay(
    exc: BaseException,
    attempt: int,
    policy: BackoffPolicy,
    headers: Mapping[str, str] | None = None,
) -> float | None:
    """Seconds to wait before retrying after ``exc`` (try number ``attempt``, from 1), or
    None when the error is not worth retrying. ``headers``: those of the failed answer."""
    backoff = min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1)))
    status = _status(exc)
    if status == 429:
        retry_after = _header(headers, "Retry-After")
        if retry_after is not None and retry_after.strip().isdigit():
            wait = float(retry_after)
        else:
            reset = _header(headers, "RateLimit-Reset")
            wait = max(0.0, float(reset) - time.time()) + 0.5 if reset and reset.isdigit() else 0
            wait = wait or backoff
        if wait > policy.max_wait:
            raise RateLimitedError(
                f"the GitLab rate limit resets in {wait:.0f}s, beyond the "
                f"{policy.max_wait:.0f}s the orchestrator waits; the next sweep retries"
            ) from exc
        return wait
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
    headers: Callable[[], Mapping[str, str]] | None = None,
) -> T:
    """Call ``fn`` and retry it as ``retry_delay`` says, at most ``policy.max_tries`` times.
    ``headers`` gives the headers of the last failed answer (the client keeps them)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            delay = retry_delay(exc, attempt, policy, headers() if headers else None)
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
    status = _status(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"HTTP {status}: {text[:200]}" if status else f"{type(exc).__name__}: {text[:200]}"
