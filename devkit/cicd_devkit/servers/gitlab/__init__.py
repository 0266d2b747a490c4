"""A GitLab-compatible server on loopback, backed by the local CI provider."""

from __future__ import annotations

from cicd_devkit.servers.gitlab.server import Fault, GitLabServer, RequestRecord

__all__ = ["Fault", "GitLabServer", "RequestRecord"]
