"""Rate limits and transient errors of the GitLab API: when to back off.

GitLab answers ``429 Too Many Requests`` with ``Retry-After`` (seconds) and
``RateLimit-Reset`` (a Unix time) when a user or IP limit is hit. The back-off
(``ci.retry``) retries one operation on what ``retry_delay`` classifies:

- 429 with ``Retry-After``: wait that long; with ``RateLimit-Reset``: wait until then;
- 5xx answers, timeouts, connection resets and truncated bodies: exponential back-off;

every wait bounded by ``max_wait`` (a limit resetting later fails at once with
RateLimitedError) and the number of tries by ``max_tries``. python-gitlab's own retries are
switched off (``auth``) so that the waits stay bounded and the sleep can be injected.
"""

from __future__ import annotations

from collections.abc import Mapping

from cicd_orchestrator.ci import retry
from cicd_orchestrator.ci.retry import BackoffPolicy


def _is_transport_error(exc: BaseException) -> bool:
    from gitlab.exceptions import GitlabConnectionError, GitlabParsingError

    # python-gitlab wraps the transport's errors; a body cut short does not parse
    transport = (*retry.transport_errors(), GitlabConnectionError, GitlabParsingError)
    return isinstance(exc, transport) or isinstance(exc.__cause__, transport)


def retry_delay(
    exc: BaseException,
    attempt: int,
    policy: BackoffPolicy,
    headers: Mapping[str, str] | None = None,
) -> float | None:
    """Seconds to wait before retrying after ``exc`` (try number ``attempt``, from 1), or
    None when the error is not worth retrying. ``headers``: those of the failed answer."""
    status = retry.status_of(exc)
    if status == 429:
        retry_after = retry.header(headers, "Retry-After")
        if retry_after is not None and retry_after.strip().isdigit():
            wait = float(retry_after)
        else:
            wait = retry.seconds_until(
                retry.header(headers, "RateLimit-Reset")
            ) or retry.exponential(policy, attempt)
        return retry.within_bound(wait, policy, "GitLab", exc)
    if status is not None and 500 <= status < 600:
        return retry.exponential(policy, attempt)
    if status is None and _is_transport_error(exc):
        return retry.exponential(policy, attempt)
    return None
