"""Names of the Airflow objects the orchestrator uses: Variables and DAG run ids
(importable without Airflow)."""

from __future__ import annotations

CONFIG_VARIABLE = "cicd_orchestrator_config"
SESSION_PREFIX = "cicd_session__"
LEARNED_PREFIX = "cicd_learned__"
MAINTENANCE_DAG_ID = "cicd_maintenance"
#: the first task of an attempt DAG: its XCom is the attempt's ticket
OPEN_TASK = "open_session"


def attempt_run_id(session_id: str, attempt: int) -> str:
    """The DAG run of attempt ``attempt`` (one per session and attempt: a second trigger of
    the same attempt is skipped)."""
    return f"{session_id}__attempt{attempt}"


def monitor_run_id(session_id: str, attempt: int, rerun: int = 0) -> str:
    """The monitor's DAG run watching attempt ``attempt`` (and its ``rerun``-th CI re-run)."""
    suffix = f"-rerun{rerun}" if rerun else ""
    return f"{session_id}__monitor{attempt}{suffix}"
