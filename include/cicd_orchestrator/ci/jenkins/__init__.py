"""The Jenkins provider: Jenkins Pipeline builds behind ``CIProvider``, git hosting delegated.

``provider.JenkinsProvider`` is the provider; ``client`` builds the python-jenkins client from
the Airflow connection (user and API token, never in a URL or a log); ``mapping`` turns the
JSON of Jenkins' REST API (builds, causes, the Pipeline stage view) into runs, attempts and
jobs, and cuts a stage out of a console log.
"""
