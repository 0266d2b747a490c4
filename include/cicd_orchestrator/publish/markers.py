"""Hidden markers: what the orchestrator writes carries one, so a retry updates, not duplicates."""

from __future__ import annotations

from cicd_orchestrator.constants import MARKER_PREFIX


def marker(session_id: str, kind: str, attempt: int | None = None) -> str:
    suffix = f":attempt={attempt}" if attempt is not None else ""
    return f"{MARKER_PREFIX}{kind}:{session_id}{suffix} -->"
