"""# Maintenance: archive old sessions

Daily, archives the closed sessions that ended more than `session_retention_days` days ago
(default 90, in the `cicd_orchestrator_config` Variable): their full states go, one per
line, into a gzipped JSON-lines file under `session_archive_dir` (default: `cicd-archive`
beside the local CI provider's root), and then their Variables are deleted. Open sessions
are never touched; a session saved again meanwhile stays. Read an archive with
`zcat sessions-*.jsonl.gz | jq`. The task lists the session Variables through the Task SDK
(`Variable.keys`), as tasks read Variables in Airflow 3.
"""

from __future__ import annotations

from cicd_orchestrator.airflow.maintenance import build_maintenance_dag

dag = build_maintenance_dag(doc_md=__doc__)
