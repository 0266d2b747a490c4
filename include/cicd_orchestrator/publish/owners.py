"""Who a fix pull request or an escalation issue goes to: the people the configuration names
for the repository (``owners``), and, unless it says not to, the owners that the repository's
CODEOWNERS (at the failing commit, read defensively: ``codeowners``) names for the files the
fix changes. They are assigned, and on a pull request asked for review; the orchestrator itself
is never one, and at most ``max_owners`` users (and as many teams) are named. Best effort: a
hosting that refuses is a note."""

from __future__ import annotations

import logging
from pathlib import Path

from cicd_orchestrator import codeowners
from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.exceptions import CicdError, WorkspaceError
from cicd_orchestrator.git import git, succeeds
from cicd_orchestrator.people import owners_for

log = logging.getLogger(__name__)

#: the largest CODEOWNERS file read at all (a bigger one is ignored, as GitHub does at 3 MB)
MAX_FILE = 1024 * 1024


def read_codeowners(git_dir: Path, sha: str) -> codeowners.CodeOwners | None:
    """The first CODEOWNERS of commit ``sha`` (``codeowners.LOCATIONS``), or None."""
    for path in codeowners.LOCATIONS:
        spec = f"{sha}:{path}"
        if not succeeds(["cat-file", "-e", spec], git_dir):
            continue
        try:
            if git(["cat-file", "-t", spec], git_dir).strip() != "blob":
                continue
            if int(git(["cat-file", "-s", spec], git_dir).strip()) > MAX_FILE:
                log.warning("%s of %s is too big to read: ignored", path, sha[:12])
                return None
            return codeowners.parse(git(["cat-file", "blob", spec], git_dir))
        except (WorkspaceError, ValueError) as exc:
            log.warning("cannot read %s of %s: %s", path, sha[:12], exc)
            return None
    return None


def owners_of(attempt: Attempt, paths: list[str]) -> tuple[list[str], list[str]]:
    """The users and teams a change of ``paths`` goes to (capped, never the orchestrator)."""
    configured = owners_for(attempt.config.owners, attempt.repository)
    users, teams = list(configured.users), list(configured.teams)
    if configured.codeowners and paths:
        try:
            found = read_codeowners(attempt.mirror(attempt.head_sha), attempt.head_sha)
        except CicdError as exc:
            log.warning("no CODEOWNERS read: %s", exc)
            found = None
        if found is not None:
            more_users, more_teams = found.owners_of(paths)
            users += more_users
            teams += more_teams
    me = attempt.provider.identity().casefold()
    users = [u for u in dict.fromkeys(users) if u.casefold() != me]
    cap = attempt.config.max_owners
    return users[:cap], list(dict.fromkeys(teams))[:cap]


def assign_owners(attempt: Attempt, number: int, paths: list[str], *, review: bool) -> list[str]:
    """Assign the owners of ``paths`` to ``number`` (and ask them for review when
    ``review``); what was done or could not be, as notes."""
    users, teams = owners_of(attempt, paths)
    if not users and not (review and teams):
        return []
    try:
        attempt.provider.set_owners(
            attempt.repository,
            number,
            users,
            users if review else [],
            teams if review else [],
        )
    except CicdError as exc:
        log.warning("could not assign owners to #%s: %s", number, exc)
        return [f"owners not assigned: {exc}"]
    named = ", ".join([*users, *teams])
    return [f"owners: {named}"]
