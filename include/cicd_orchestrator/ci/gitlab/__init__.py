"""The GitLab provider: GitLab CI pipelines and a GitLab project behind ``CIProvider``.

``provider.GitLabProvider`` is the provider; ``auth`` builds the python-gitlab client from the
Airflow connection and gives git its token through the environment; ``ratelimit`` holds the
bounded back-off; ``reasons`` maps GitLab's ``failure_reason`` of a job into the orchestrator's
failure categories.
"""
