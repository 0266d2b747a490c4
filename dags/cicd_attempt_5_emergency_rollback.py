"""# Attempt strategy 5: emergency rollback preparation

Reverts exactly the culprit commit on a fix branch (`git revert`, never a history rewrite),
validates the revert with the local job runner, and opens a pull request into the failing
branch. With `rollback_policy: plan` the revert is only prepared and reported."""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_attempt_dag
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.strategies import load_strategies

dag = build_attempt_dag(load_strategies()[Strategy.EMERGENCY_ROLLBACK], doc_md=__doc__)
