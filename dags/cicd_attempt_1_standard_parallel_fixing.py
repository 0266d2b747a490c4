"""# Attempt strategy 1: standard parallel fixing

Opens the session for a failed CI run (conf `repository`, `run_id`; a duplicate request is
answered by the existing session and its tasks are skipped), then:

1. **discovery**: detect failures (logs, excerpts, signatures) | analyse context (commits,
   manifests and dependency versions since the last green run);
2. **classification**: classify patterns (pattern library, learned signatures, flakiness) |
   map dependencies (root causes and symptoms, repair order);
3. **fixing**: one fixer task per category group in parallel; the merge gate combines their
   changes and reports conflicts;
4. **validation**: validate fixes (reproduce the failing jobs, then run them with the repair) |
   regression run (the rest of the workflow);

then publishes (fix branch + pull request + commit status, or a re-run of the failed jobs) and
hands over to `cicd_monitor`."""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_attempt_dag
from cicd_orchestrator.constants import Strategy
from cicd_orchestrator.strategies import load_strategies

dag = build_attempt_dag(load_strategies()[Strategy.STANDARD_PARALLEL_FIXING], doc_md=__doc__)
