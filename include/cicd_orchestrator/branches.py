"""The one branch-safety rule: which branches the orchestrator may push to.

Publishing checks it before it makes a fix branch, and every provider checks it again in
``push_branch`` (the last door before the hosting): never a malformed name or a ref, never
the default branch, never a branch the hosting protects or a configured pattern names.

Whether a fix may go onto a pull request's own branch (``pr_branch_refusal``: opt-in
``commit_to_pr_branch``, never a fork's, only as a fast-forward of the failing commit);
the push itself still passes ``check_push_allowed``.

And which runs are the orchestrator's own (``own_run``): those of its fix branches and of
the commits it authored (its git identity). No session is opened for them (webhooks, the
sweep, a DAG run's conf): the orchestrator never repairs its own repairs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from cicd_orchestrator import git
from cicd_orchestrator.exceptions import SafetyError
from cicd_orchestrator.models import PullHead

DEFAULT_PROTECTED_PATTERNS = ("main", "master", "release/*", "production")
_BAD_CHARACTERS = " ~^?*[\\"


def matches(branch: str, patterns: Iterable[str]) -> bool:
    """True when ``branch`` is one of ``patterns`` (exact names or shell globs)."""
    return any(branch == p or fnmatch.fnmatchcase(branch, p) for p in patterns)


def check_name(branch: str) -> None:
    """Raise SafetyError for a name git would read as an option, a refspec or a ref."""
    if not branch or branch.startswith(("+", "-", ":")) or ":" in branch or ".." in branch:
        raise SafetyError(f"refusing to push to the invalid branch name {branch!r}")
    if branch.startswith("refs/") or any(c in branch for c in _BAD_CHARACTERS):
        raise SafetyError(f"refusing to push to the invalid branch name {branch!r}")


def check_push_allowed(
    repo: str, branch: str, default_branch: str, protected: Iterable[str]
) -> None:
    """Raise SafetyError unless the orchestrator may push ``branch`` of ``repo``.

    ``protected``: the branches the hosting protects and the configured patterns, together.
    """
    check_name(branch)
    if branch == default_branch:
        raise SafetyError(f"refusing to push to the default branch {branch!r} of {repo}")
    patterns = sorted(set(protected))
    if matches(branch, patterns):
        raise SafetyError(
            f"refusing to push to the protected branch {branch!r} of {repo} "
            f"(protected: {', '.join(patterns)})"
        )


def pr_branch_refusal(
    pull: PullHead | None, branch: str, failing_sha: str, current_sha: str | None
) -> str | None:
    """Why the fix may not be committed onto the pull request's own branch ``branch``
    (None: it may, as a fast-forward of ``failing_sha``). ``pull``: the pull request of
    the failed run (None: the run is of no pull request, or the provider cannot tell);
    ``current_sha``: where the branch points now."""
    if pull is None:
        return "the failed run is of no pull request the hosting names"
    if not pull.same_repository:
        return f"pull request #{pull.number} comes from a fork: its branch is never pushed to"
    if pull.branch != branch:
        return f"pull request #{pull.number} has another head branch than the failed run"
    if current_sha != failing_sha:
        now = (current_sha or "nothing")[:12]
        return (
            f"{branch!r} moved since the failure ({failing_sha[:12]} -> {now}): only a "
            "fast-forward of the failing commit is pushed"
        )
    return None


def own_branch(branch: str, fix_branch_prefix: str) -> bool:
    """Whether ``branch`` is one of the orchestrator's fix branches."""
    return bool(fix_branch_prefix) and branch.startswith(fix_branch_prefix)


def own_commit(author_email: str) -> bool:
    """Whether a commit with this author's e-mail was made by the orchestrator."""
    return author_email.strip().casefold() == git.BOT_EMAIL.casefold()


def own_run(branch: str, author_email: str, fix_branch_prefix: str) -> str | None:
    """Why a run of ``branch`` whose head commit ``author_email`` authored is the
    orchestrator's own, or None when it is not."""
    if own_branch(branch, fix_branch_prefix):
        return f"{branch!r} is a fix branch of the orchestrator ({fix_branch_prefix}...)"
    if own_commit(author_email):
        return f"its commit was authored by the orchestrator ({git.BOT_EMAIL})"
    return None
