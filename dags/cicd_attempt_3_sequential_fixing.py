"""# Attempt strategy 3: sequential fixing with validation

The fixers propose their repairs in parallel; the gate then applies them one at a time in the
order of the dependency mapping (root causes first), validates each one alone on top of the
previous ones and keeps it as its own commit only if the jobs it targets pass."""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_attempt_dag
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.strategies import load_strategies

dag = build_attempt_dag(load_strategies()[Strategy.SEQUENTIAL_FIXING], doc_md=__doc__)
