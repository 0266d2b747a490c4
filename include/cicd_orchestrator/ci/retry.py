"""The bounded back-off of the hosted CI providers: one retry loop, a classifier per provider.

An operation (a whole lookup-then-write, so a retried write finds what the failed try may
have written) is retried while the provider's classifier says how long to wait after its
error: a rate limit (the wait the service names), a 5xx answer, a timeout, a connection reset
or a truncated body (an exponential back-off). Every wait is bounded by ``max_wait`` (a limit
resetting later fails at once with RateLimitedError) and the number of tries by
``max_tries``; the clients' own retries are switched off so that the waits stay bounded and
the sleep can be injected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")


class RateLimitedError(ProviderError):
    """The service kept refusing with a rate limit beyond the bounded back-off."""


@dataclass(frozen=True)
class BackoffPolicy:
    """How long and how often to retry. ``max_wait`` bounds each single wait (a limit
    resetting later than that fails at once with RateLimitedError)."""

    max_tries: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_wait: float = 120.0


#: (error, try number from 1, policy) -> seconds to wait before the next try, or None when the
#: error is not worth retrying (it may raise RateLimitedError)
RetryDelay = Callable[[BaseException, int, BackoffPolicy], "float | None"]


def exponential(policy: BackoffPolicy, attempt: int) -> float:
    """The back-off before try ``attempt + 1``: doubling from ``base_delay``, capped."""
    return float(min(policy.max_delay, policy.base_delay * (2 ** (attempt - 1))))


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """A header's value, whatever the case of its name."""
    for key, value in dict(headers or {}).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a client error (PyGithub's ``status``, python-gitlab's
    ``response_code``, a requests error's response), or None for a transport error."""
    for attribute in ("status", "response_code"):
        status = getattr(exc, attribute, None)
        if status is not None:
            return status if isinstance(status, int) else None
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def transport_errors() -> tuple[type[BaseException], ...]:
    """Errors of the connection itself: a reset, a timeout, a body cut short."""
    import requests
    import urllib3.exceptions

    return (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.TimeoutError,
        ConnectionError,
        TimeoutError,
    )


def seconds_until(reset: str | None) -> float | None:
    """Seconds until the Unix time ``reset`` (a header's value) plus a margin, or None."""
    if not reset or not reset.isdigit():
        return None
    return max(0.0, float(reset) - time.time()) + 0.5


def within_bound(wait: float, policy: BackoffPolicy, service: str, exc: BaseException) -> float:
    """``wait``, or RateLimitedError when it is longer than the policy lets a try wait."""
    if wait > policy.max_wait:
        raise RateLimitedError(
            f"the {service} rate limit resets in {wait:.0f}s, beyond the "
            f"{policy.max_wait:.0f}s the orchestrator waits; the next sweep retries"
        ) from exc
    return wait


def with_backoff(
    fn: Callable[[], T],
    policy: BackoffPolicy,
    what: str,
    retry_delay: RetryDelay,
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
                    f"{what} failed after {attempt} tries: {redact(describe(exc))}"
                ) from exc
            log.warning(
                "%s: %s; retrying in %.1fs (try %d of %d)",
                what,
                redact(describe(exc)),
                delay,
                attempt + 1,
                policy.max_tries,
            )
            sleep(delay)


def describe(exc: BaseException) -> str:
    """One line about an error: its HTTP status or its type, and the start of its message."""
    status = status_of(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"HTTP {status}: {text[:200]}" if status else f"{type(exc).__name__}: {text[:200]}"
