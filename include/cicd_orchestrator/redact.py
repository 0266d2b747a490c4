"""Masking of credentials in everything the orchestrator writes (reports, state, comments,
logs)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

_lock = threading.Lock()
_secrets: set[str] = set()

#: credentials with a recognisable shape, masked even when nobody registered them
_SHAPES = (
    r"gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens (personal, OAuth, user, server, refresh)
    r"github_pat_[A-Za-z0-9_]{20,}",  # GitHub fine-grained tokens
    r"gl(?:pat|dt|rt|ptt|ft|imt|soat|cbt|oas|ffct|agent)-[A-Za-z0-9_-]{20,}",  # GitLab tokens
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}",  # AWS access key ids
    r"(?i:aws_secret_access_key)[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}",  # AWS secret keys
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+",  # Slack webhooks
    r"npm_[A-Za-z0-9]{36}",  # npm tokens
    r"pypi-AgE[A-Za-z0-9_-]{50,}",  # PyPI API tokens
    r"(?i:authorization:\s*(?:basic|bearer|token)\s+)[A-Za-z0-9._~+/=-]{8,}",  # HTTP headers
    r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",  # user:password in a URL
)
_TOKEN_SHAPES = re.compile("|".join(f"(?:{shape})" for shape in _SHAPES))
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret value so that ``redact`` masks it (short values are ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Masks registered secrets in log records (HTTP client libraries log URLs, headers and
    response bodies at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = ()
        return True


_FILTER = RedactingFilter()


def install_log_filter(logger_names: Iterable[str]) -> None:
    """Mask secrets in the records of the named loggers (idempotent: one filter, added once)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
