"""Helpers of the Jenkins provider tests: a lint-failure repository built by the Jenkins server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.scenarios import MaterializedScenario, materialize
from cicd_orchestrator.testing.jenkins_server import JenkinsServer
from cicd_orchestrator.tools.airflow_stack import PROJECT_ROOT

USER = "orchestrator"
TOKEN = "11" + "a7c0ffee5ecret0f7heJenkinsApiT0ken"
REPO = "acme/shipping"
STANDALONE = "shipping-main"


@dataclass
class World:
    local: LocalProvider
    server: JenkinsServer
    made: MaterializedScenario
    tmp: Path

    def provider(self, **kwargs: object) -> JenkinsProvider:
        options: dict[str, object] = {
            "hosting": self.local,
            "url": self.server.url,
            "user": USER,
            "token": TOKEN,
            "timeout": 5.0,
            "poll_interval": 0.05,
        }
        options.update(kwargs)
        return JenkinsProvider(**options)  # type: ignore[arg-type]


def start_world(tmp: Path) -> tuple[World, JenkinsServer]:
    local = LocalProvider(tmp / "ci")
    made = materialize(PROJECT_ROOT / "examples" / "lint-failure", local, REPO)
    server = JenkinsServer(local, {USER: TOKEN}, standalone={STANDALONE: (REPO, "main")}).start()
    return World(local, server, made, tmp), server
