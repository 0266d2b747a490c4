"""# Attempt strategy 4: manual intervention preparation

Prepares the hand-over to a person: an issue with the full context package (failing jobs,
category, excerpts, culprit commit and its diff, what each attempt tried and why it failed,
how to reproduce locally). When only a person can fix the cause (a missing secret or
permission), or no culprit is known, the session ends escalated."""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_attempt_dag
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.strategies import load_strategies

dag = build_attempt_dag(load_strategies()[Strategy.MANUAL_INTERVENTION], doc_md=__doc__)
