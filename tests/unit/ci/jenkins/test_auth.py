"""The provider's client made from an Airflow connection (``AirflowClients.jenkins``): host =
the controller's URL, login and password = the user and an API token; and the provider
``make_provider`` builds, publishing through its hosting."""

from __future__ import annotations

import json

import pytest
from cicd_devkit.worlds import JENKINS_TOKEN as TOKEN
from cicd_devkit.worlds import JENKINS_USER as USER
from cicd_devkit.worlds import REPO, JenkinsWorld

from cicd_orchestrator.airflow.connections import AirflowClients
from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.ci.registry import make_provider
from cicd_orchestrator.config import load_config
from cicd_orchestrator.exceptions import ConfigError


def test_the_airflow_connection(
    jenkins_world: JenkinsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {
        "conn_type": "http",
        "host": jenkins_world.jenkins.url,
        "login": USER,
        "password": TOKEN,
    }
    monkeypatch.setenv("AIRFLOW_CONN_JENKINS_TEST", json.dumps(conn))
    client = AirflowClients().jenkins("jenkins_test")
    assert client.get_whoami()["id"] == USER
    config = load_config(
        {
            "jenkins_conn_id": "jenkins_test",
            "jenkins_hosting": "local",
            "local_ci_root": str(jenkins_world.tmp / "ci"),
        }
    )
    jk = make_provider("jenkins", config, AirflowClients())
    assert isinstance(jk, JenkinsProvider) and isinstance(jk.hosting, LocalProvider)
    assert jenkins_world.head_run_id in [r.id for r in jk.list_failed_runs(REPO, "main")]
    with pytest.raises(ConfigError):
        AirflowClients().jenkins("jenkins_missing")
