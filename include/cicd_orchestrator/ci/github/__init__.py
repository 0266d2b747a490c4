"""The GitHub provider: GitHub Actions and a GitHub repository behind ``CIProvider``.

``provider.GitHubProvider`` is the provider; ``auth`` builds the API client from the Airflow
connection and gives git its token through the environment; ``ratelimit`` holds the ETag cache
and the bounded back-off; ``archive`` extracts a run's log archive within limits.
"""
