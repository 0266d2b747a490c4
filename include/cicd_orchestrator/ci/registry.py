"""Providers by name, built from the configuration (the edge where the provider is chosen)."""

from __future__ import annotations

from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.config import OrchestratorConfig
from cicd_orchestrator.exceptions import ConfigError

PROVIDERS = ("local", "github")


def make_provider(name: str, config: OrchestratorConfig) -> CIProvider:
    if name == "local":
        from cicd_orchestrator.ci.local.provider import LocalProvider

        return LocalProvider(config.local_root(), secrets=dict(config.local_ci_secrets) or None)
    if name == "github":
        from cicd_orchestrator.ci.github.provider import GitHubProvider

        return GitHubProvider(getattr(config, "github_conn_id", "github_default"))
    raise ConfigError(f"unknown CI provider {name!r}; known: {', '.join(PROVIDERS)}")
