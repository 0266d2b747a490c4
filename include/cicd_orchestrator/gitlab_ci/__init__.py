"""GitLab CI pipelines replayed locally, in their own format (``.gitlab-ci.yml``).

:mod:`~cicd_orchestrator.gitlab_ci.loader` reads the YAML (``!reference``, local includes,
``extends``), :mod:`~cicd_orchestrator.gitlab_ci.config` turns it into jobs,
:mod:`~cicd_orchestrator.gitlab_ci.rules` and :mod:`~cicd_orchestrator.gitlab_ci.plan` decide
which jobs run and in which order, :mod:`~cicd_orchestrator.gitlab_ci.engine` runs them in
the command sandbox through the GitHub engine's process runner.
"""
