"""# Attempt strategy 2: extended analysis with context

Like attempt 1, with more context in discovery: a bisect between the last green commit and the
failing one with the local job runner names the culprit, and the runner environment of the
failing run is compared with the last green run's. The specialised fixers then run in parallel
and their merged change is validated before it is published."""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_attempt_dag
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.strategies import load_strategies

dag = build_attempt_dag(load_strategies()[Strategy.EXTENDED_ANALYSIS], doc_md=__doc__)
