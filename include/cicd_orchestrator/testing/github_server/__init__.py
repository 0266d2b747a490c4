"""A GitHub-compatible server on loopback, backed by the local CI provider."""

from __future__ import annotations

from cicd_orchestrator.testing.github_server.server import Fault, GitHubServer, RequestRecord

__all__ = ["Fault", "GitHubServer", "RequestRecord"]
