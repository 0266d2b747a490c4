"""Providers by name, built from the configuration (the edge where the provider is chosen)."""

from __future__ import annotations

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.exceptions import ConfigError

PROVIDERS = ("local", "github", "gitlab", "jenkins")
HOSTINGS = ("github", "gitlab", "local")


def make_provider(name: str, config: OrchestratorConfig) -> CIProvider:
    if name == "local":
        from cicd_orchestrator.ci.local.provider import LocalProvider

        return LocalProvider(config.local_root(), secrets=dict(config.local_ci_secrets) or None)
    if name == "github":
        from cicd_orchestrator.ci.github.provider import GitHubProvider

        return GitHubProvider(config.github_conn_id)
    if name == "gitlab":
        from cicd_orchestrator.ci.gitlab.provider import GitLabProvider

        return GitLabProvider(config.gitlab_conn_id)
    if name == "jenkins":
        from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider

        if config.jenkins_hosting not in HOSTINGS:
            raise ConfigError(f"jenkins_hosting must be one of {HOSTINGS}")
        return JenkinsProvider(
            config.jenkins_conn_id,
            hosting=make_provider(config.jenkins_hosting, config),
            jobs=dict(config.jenkins_jobs) or None,
            script_path=config.jenkins_script_path,
        )
    raise ConfigError(f"unknown CI provider {name!r}; known: {', '.join(PROVIDERS)}")
