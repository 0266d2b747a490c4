"""Hidden markers: what the orchestrator writes carries one, so a retry updates, not duplicates.

A marker names what it marks (``kind``), the session and the attempt, and carries an HMAC of
that content with a key only the deployment holds::

    <!-- cicd-orchestrator:pull-request:<session>:attempt=2:sig=<32 hex digits> -->

Everything in a marker but the signature can be read from public data (the session id comes
from the repository and the run), so the signature is what tells a marker the orchestrator
wrote from one somebody else wrote for it to find. The providers look a write up by the exact
marker (signature included), among the objects the orchestrator itself authored, and never by
an unsigned one.

The key: the configuration's ``marker_key`` (set by the deployment only), else one derived
from a secret of the deployment that the Airflow glue passes (the Fernet key). Without either,
the markers are unsigned, a warning says so, and nothing is ever adopted again: a retried write
makes a new object.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re

from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.constants import MARKER_PREFIX, MARKER_SIGNATURE
from cicd_orchestrator.redact import register_secret

log = logging.getLogger(__name__)

#: hex digits of the signature kept in a marker (128 bits)
SIGNATURE_DIGITS = 32
#: what a key derived from a deployment secret is derived for
_DERIVATION = b"cicd-orchestrator/marker-key/v1"
_MARKER = re.compile(
    re.escape(MARKER_PREFIX)
    + r"(?P<content>[A-Za-z0-9_.:=-]+?)(?:"
    + re.escape(MARKER_SIGNATURE)
    + r"(?P<sig>[0-9a-f]+))? -->"
)


def signing_key(configured: str | None, deployment_secret: str | None = None) -> bytes | None:
    """The key markers are signed with: ``configured`` (the configuration's ``marker_key``),
    else one derived from ``deployment_secret``, else None (unsigned markers)."""
    if configured:
        register_secret(configured)
        return configured.encode("utf-8")
    if deployment_secret:
        register_secret(deployment_secret)
        return hmac.new(deployment_secret.encode("utf-8"), _DERIVATION, hashlib.sha256).digest()
    return None


def key_of(attempt: Attempt) -> bytes | None:
    """The key of an attempt's markers: the one the glue gave it (the configuration's, or one
    derived from the deployment's secret), else the configuration's; None warns, once."""
    key = attempt.marker_key or signing_key(attempt.config.marker_key)
    if key is None:
        _warn_unsigned()
    return key


@functools.cache
def _warn_unsigned() -> None:
    log.warning(
        "no marker key: set marker_key in the deployment's configuration (or give Airflow a "
        "Fernet key). What the orchestrator writes carries an unsigned marker and is never "
        "adopted again: a retried task opens a new pull request, comment or issue"
    )


def _content(session_id: str, kind: str, attempt: int | None) -> str:
    suffix = f":attempt={attempt}" if attempt is not None else ""
    return f"{kind}:{session_id}{suffix}"


def _signature(key: bytes, content: str) -> str:
    return hmac.new(key, content.encode("utf-8"), hashlib.sha256).hexdigest()[:SIGNATURE_DIGITS]


def marker(key: bytes | None, session_id: str, kind: str, attempt: int | None = None) -> str:
    """The marker of a write: signed with ``key``, unsigned without one."""
    content = _content(session_id, kind, attempt)
    if key is None:
        return f"{MARKER_PREFIX}{content} -->"
    return f"{MARKER_PREFIX}{content}{MARKER_SIGNATURE}{_signature(key, content)} -->"


def verify(key: bytes | None, text: str) -> bool:
    """Whether ``text`` is a marker signed with ``key`` (an unsigned marker, one signed with
    another key or a forged signature is not)."""
    match = _MARKER.fullmatch(text.strip())
    if key is None or match is None or not match.group("sig"):
        return False
    expected = _signature(key, match.group("content"))
    return hmac.compare_digest(expected, match.group("sig"))
