"""Jenkins declarative pipelines replayed locally, in their own format (``Jenkinsfile``).

:mod:`~cicd_orchestrator.jenkins_pipeline.groovy` reads the Groovy statements,
:mod:`~cicd_orchestrator.jenkins_pipeline.model` turns them into stages and steps,
:mod:`~cicd_orchestrator.jenkins_pipeline.values` interpolates strings and evaluates ``when``,
:mod:`~cicd_orchestrator.jenkins_pipeline.engine` and
:mod:`~cicd_orchestrator.jenkins_pipeline.steps` run the stages in the command sandbox
through the GitHub engine's process runner.
"""
