"""# Sweep: open sessions for failed runs of the watched repositories

Every ten minutes, for each repository and branch listed in `watched_repositories` of the
`cicd_orchestrator_config` Variable, finds the newest failed run that has no session yet and
triggers attempt 1 for it, the most urgent branches first (hotfix, default branch, release,
others). A run that already has a session is never opened twice.
"""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_sweep_dag

dag = build_sweep_dag(doc_md=__doc__)
