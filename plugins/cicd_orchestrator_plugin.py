"""Airflow plugin of the CI/CD orchestrator: the webhook receiver, the sessions and Metrics
pages (a FastAPI app at /cicd), their entries in the UI's Browse menu (external views: the
pages open inside Airflow's UI), and operator extra links."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from cicd_orchestrator.airflow.links import FailedRunLink, IssueLink, PullRequestLink
from cicd_orchestrator.airflow.plugin_app import create_app


class CicdOrchestratorPlugin(AirflowPlugin):
    name = "cicd_orchestrator"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/cicd", "name": "CI/CD orchestrator"}]
    external_views = [
        {
            "name": "CI/CD sessions",
            "href": "/cicd/sessions",
            "destination": "nav",
            "category": "browse",
            "url_route": "cicd-sessions",
        },
        {
            "name": "CI/CD metrics",
            "href": "/cicd/metrics",
            "destination": "nav",
            "category": "browse",
            "url_route": "cicd-metrics",
        },
    ]
    operator_extra_links = [FailedRunLink(), PullRequestLink(), IssueLink()]
