"""Masking of credentials in everything the orchestrator writes (reports, state, comments)."""

from __future__ import annotations

import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()

# Tokens with a recognisable shape are masked even when nobody registered them.
_TOKEN_SHAPES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)
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
