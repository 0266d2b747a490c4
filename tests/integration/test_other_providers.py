"""Whole sessions through GitLab and Jenkins, in the real Airflow, against their compatible
servers (backed by the local provider): failure, analysis, repair, merge/pull request, green."""

from __future__ import annotations

import secrets

import pytest
from cicd_devkit import sessions
from cicd_devkit.airflow_stack import EXAMPLES, TEST_CONFIG
from cicd_devkit.scenarios import materialize
from cicd_devkit.servers.gitlab import GitLabServer
from cicd_devkit.servers.jenkins import JenkinsServer

from cicd_orchestrator.session import session_id_of_run

pytestmark = pytest.mark.integration


def _connection(env, body):
    resp = env.client.request("POST", "/api/v2/connections", json=body)
    assert resp.status_code in (200, 201), resp.text


def _session(env, repo, provider, remote):
    """Materialise the example, find its failed run as the remote CI names it, open a session."""
    made = materialize(EXAMPLES / "lint-failure", env.provider, repo)
    failed = remote.list_failed_runs(repo, "main")
    assert failed, f"{provider} shows no failed run of {repo}"
    conf = {"repository": repo, "run_id": failed[0].id, "provider": provider}
    resp = env.client.trigger("cicd_attempt_1_standard_parallel_fixing", conf)
    assert resp.status_code in (200, 201), resp.text
    return made, session_id_of_run(provider, failed[0])


def test_a_session_through_gitlab(airflow_env):
    token = "glpat-" + secrets.token_hex(12)
    server = GitLabServer(airflow_env.provider, token)
    server.start()
    try:
        _connection(
            airflow_env,
            {
                "connection_id": "gitlab_default",
                "conn_type": "http",
                "password": token,
                "host": server.url,
            },
        )
        from cicd_orchestrator.ci.gitlab.provider import GitLabProvider

        remote = GitLabProvider(url=server.url, token=token)
        made, sid = _session(airflow_env, "gl/shipping", "gitlab", remote)
        state = airflow_env.wait(sid)
        assert state.outcome.value == "fixed", state.report
        assert len(airflow_env.provider.list_pull_requests("gl/shipping")) == 1
        assert airflow_env.provider.branch_sha("gl/shipping", "main") == made.head_sha
        assert token not in state.report
    finally:
        server.stop()


def test_a_session_through_jenkins_publishing_through_the_hosting(airflow_env):
    token = secrets.token_hex(16)
    server = JenkinsServer(airflow_env.provider, {"orchestrator": token})
    server.start()
    try:
        _connection(
            airflow_env,
            {
                "connection_id": "jenkins_default",
                "conn_type": "http",
                "login": "orchestrator",
                "password": token,
                "host": server.url,
            },
        )
        from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider

        remote = JenkinsProvider(
            url=server.url, user="orchestrator", token=token, hosting=airflow_env.provider
        )
        # where Jenkins' repositories live is the deployment's setting, not a run's
        sessions.configure(airflow_env.client, {**TEST_CONFIG, "jenkins_hosting": "local"})
        try:
            made, sid = _session(airflow_env, "jk/shipping", "jenkins", remote)
            state = airflow_env.wait(sid)
        finally:
            sessions.configure(airflow_env.client, TEST_CONFIG)
        assert state.outcome.value == "fixed", state.report
        assert len(airflow_env.provider.list_pull_requests("jk/shipping")) == 1
        assert airflow_env.provider.branch_sha("jk/shipping", "main") == made.head_sha
        assert token not in state.report
    finally:
        server.stop()
