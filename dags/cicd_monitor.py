"""# Monitor: watch CI on what an attempt published

Triggered by every attempt DAG with conf `session_id` and `attempt`.

- **load_target**: what to watch: the fix branch head, the re-run of the failed jobs, or
  nothing (an issue, or no repair: the result is known at once);
- **watch_ci**: a deferrable sensor; the `CIStatusTrigger` polls the CI provider in the
  triggerer, so no worker slot is held while CI runs;
- **decide**: records the result in the session, learns the failure signatures, and closes the
  session (green, escalated, or failed after the last attempt) or schedules the next attempt;
- **escalation_delay**: waits out the escalation delay (30, 45, 60, 90, 120 s by default,
  scaled by `delay_scale`) deferred, without a worker slot;
- **trigger_next_attempt**: triggers the next strategy's attempt DAG.
"""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_monitor_dag

dag = build_monitor_dag(doc_md=__doc__)
