"""One exception base, one-line subclasses."""

from __future__ import annotations


class CicdError(Exception):
    """Base of every error the orchestrator raises on purpose."""


class ConfigError(CicdError):
    """The configuration (Variable, params or conf) is invalid."""


class ConfError(CicdError):
    """A DAG run conf or webhook payload is malformed."""


class ProviderError(CicdError):
    """A CI provider call failed."""


class NotFoundError(ProviderError):
    """The provider does not know the repository, run or job (or no longer does)."""


class UnknownRepositoryError(NotFoundError):
    """The repository is not known to the provider."""


class UnknownRunError(NotFoundError):
    """The run is not known to the provider."""


class NotAFailedRunError(CicdError):
    """A session was asked for a run that did not fail (still running, or green)."""


class StaleStateError(CicdError):
    """A shared state (a session, learned patterns) was saved by another writer since it was
    read: read it again and apply the change anew."""


class OwnRunError(NotAFailedRunError):
    """The run is the orchestrator's own (its fix branch, a commit it authored): no session,
    or it would repair its own repairs."""


class WorkflowError(CicdError):
    """A workflow file does not parse or is invalid."""


class SafetyError(CicdError):
    """An action would break a safety rule (protected branch, force push, ...)."""


class WorkspaceError(CicdError):
    """A git worktree or sandboxed command failed."""


class RepairError(CicdError):
    """A repair could not be produced or applied."""
