"""# Sweep: open sessions for failed runs of the watched repositories

Every ten minutes, for each repository and branch listed in `watched_repositories` of the
`cicd_orchestrator_config` Variable, finds the failures that have no session yet and
triggers attempt 1 for each, the most urgent branches first (hotfix, default branch,
release, others). A workflow's failure counts only while it is the branch's newest run of
that workflow (a newer run, or the same run green again, supersedes it); the failed
workflows of one push make one session, and a push that has a session is never opened
twice.
"""

from __future__ import annotations

from cicd_orchestrator.airflow.factory import build_sweep_dag

dag = build_sweep_dag(doc_md=__doc__)
