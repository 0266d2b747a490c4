"""A Jenkins-compatible server on loopback, backed by the local CI provider."""

from __future__ import annotations

from cicd_devkit.servers.jenkins.server import Fault, JenkinsServer, RequestRecord

__all__ = ["Fault", "JenkinsServer", "RequestRecord"]
