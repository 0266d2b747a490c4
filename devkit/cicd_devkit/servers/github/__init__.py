"""A GitHub-compatible server on loopback, backed by the local CI provider."""

from __future__ import annotations

from cicd_devkit.servers.github.server import Fault, GitHubServer, RequestRecord

__all__ = ["Fault", "GitHubServer", "RequestRecord"]
