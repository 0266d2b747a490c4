"""Names of the Airflow objects the orchestrator uses (importable without Airflow)."""

from __future__ import annotations

from cicd_orchestrator.config import CONFIG_VARIABLE

SESSION_PREFIX = "cicd_session__"
LEARNED_PREFIX = "cicd_learned__"

__all__ = ["CONFIG_VARIABLE", "LEARNED_PREFIX", "SESSION_PREFIX"]
