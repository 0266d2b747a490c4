"""Pushing a fix branch over HTTPS, shared by the hosted providers: HEAD of a local clone to
one branch, never forced; git's answer classified into rejection, transient error, failure."""

from __future__ import annotations

import subprocess

from cicd_orchestrator.ci.base import GitRemote
from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.redact import redact

_TRANSIENT = (" 50", "timed out", "Connection reset", "early EOF")
_REJECTED = ("non-fast-forward", "[rejected]", "fetch first")


def head_sha(workdir: str) -> str:
    from cicd_orchestrator.repair.workspace import git

    try:
        return git(["rev-parse", "HEAD"], cwd=workdir).strip()
    except Exception as exc:
        raise ProviderError(f"{workdir} is not a git work tree with a commit: {exc}") from exc


def push_head(remote: GitRemote, workdir: str, repo: str, branch: str, sha: str) -> None:
    """One push attempt; ConnectionError for what a retry may cure, ProviderError otherwise."""
    from cicd_orchestrator.repair.workspace import git_env

    proc = subprocess.run(
        ["git", "push", "--porcelain", remote.url, f"HEAD:refs/heads/{branch}"],
        cwd=workdir,
        env=git_env(remote.env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode == 0:
        return
    detail = redact((proc.stdout + proc.stderr).strip())
    if any(s in detail for s in _REJECTED):
        raise ProviderError(
            f"push of {sha[:12]} to {repo}:{branch} was rejected (not a fast-forward; "
            f"the orchestrator never forces a push): {detail}"
        )
    if any(s in detail for s in _TRANSIENT):
        raise ConnectionError(f"push of {sha[:12]} to {repo}:{branch}: {detail}")
    raise ProviderError(f"push of {sha[:12]} to {repo}:{branch} failed: {detail}")
