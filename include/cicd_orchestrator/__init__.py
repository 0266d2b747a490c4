"""CI/CD Failure Orchestrator: the domain package (no Airflow imports outside ``airflow/``)."""

from __future__ import annotations

__version__ = "0.1.0"
