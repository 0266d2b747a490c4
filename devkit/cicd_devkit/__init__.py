"""Development-only tools of the CI/CD Failure Orchestrator: test servers, scenario
materialisation, the Airflow stacks of the tests, demo and benchmarks, canary scans.

Installed in the development environment only (``make`` installs it editable); it is not part
of the ``cicd-orchestrator`` package, its wheel or its image.
"""
