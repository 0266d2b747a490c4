"""Airflow's local settings for the orchestrator (Airflow imports this module at the start of
every component, from ``PYTHONPATH``: the project's ``include/``).

The scheduler and the Celery worker import the package here, once, so that the task processes
they fork have it (``cicd_orchestrator.airflow.preload``). A deployment with local settings of
its own calls ``preload(sys.argv)`` from them instead.
"""

import sys

from cicd_orchestrator.airflow.preload import preload

__all__: list[str] = []  # no settings or cluster policies of its own

preload(sys.argv)
