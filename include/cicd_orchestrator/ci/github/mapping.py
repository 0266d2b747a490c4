"""GitHub's payloads as the orchestrator's objects (pure functions over the REST API's JSON and
PyGithub's objects): workflow runs and jobs, check runs and commit statuses, pull requests,
and the members of a run's log archive."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cicd_orchestrator.constants import FAILED_CONCLUSIONS, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.models import Job, PullRequest, Run, Step

if TYPE_CHECKING:
    from github.PullRequest import PullRequest as GhPullRequest

_CONCLUSIONS = {
    "startup_failure": Conclusion.FAILURE,
    "action_required": Conclusion.FAILURE,
    "stale": Conclusion.NEUTRAL,
}
_QUEUED = {"queued", "waiting", "requested", "pending"}
_MEMBER_INDEX = re.compile(r"^\d+_")


def run_status(value: Any) -> RunStatus:
    if value in _QUEUED:
        return RunStatus.QUEUED
    try:
        return RunStatus(value)
    except ValueError:
        return RunStatus.IN_PROGRESS


def conclusion(value: Any) -> Conclusion | None:
    if not value:
        return None
    try:
        return Conclusion(value)
    except ValueError:
        return _CONCLUSIONS.get(str(value), Conclusion.NEUTRAL)


def to_run(repo: str, data: Mapping[str, Any]) -> Run:
    path = str(data.get("path") or "").split("@", 1)[0]
    return Run(
        id=int(data["id"]),
        repository=repo,
        workflow=str(data.get("name") or path),
        workflow_path=path,
        head_branch=str(data.get("head_branch") or ""),
        head_sha=str(data.get("head_sha") or ""),
        event=str(data.get("event") or ""),
        status=run_status(data.get("status")),
        conclusion=conclusion(data.get("conclusion")),
        run_number=int(data.get("run_number") or 0),
        run_attempt=int(data.get("run_attempt") or 1),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        html_url=str(data.get("html_url") or ""),
        pull_request_number=_pull_request_number(data),
    )


def _pull_request_number(data: Mapping[str, Any]) -> int | None:
    """The pull request of a pull request run (GitHub lists it in ``pull_requests``; a run
    of a fork's pull request lists none)."""
    if data.get("event") not in ("pull_request", "pull_request_target"):
        return None
    pulls = data.get("pull_requests") or []
    first = pulls[0] if isinstance(pulls, list) and pulls else None
    number = first.get("number") if isinstance(first, Mapping) else None
    return number if isinstance(number, int) else None


def to_job(run: Run, data: Mapping[str, Any], needs: Mapping[str, list[str]]) -> Job:
    steps = [
        Step(
            number=int(s.get("number") or i + 1),
            name=str(s.get("name") or ""),
            status=run_status(s.get("status")),
            conclusion=conclusion(s.get("conclusion")),
            started_at=s.get("started_at"),
            completed_at=s.get("completed_at"),
        )
        for i, s in enumerate(data.get("steps") or [])
    ]
    name = str(data.get("name") or "")
    return Job(
        id=int(data["id"]),
        run_id=run.id,
        name=name,
        status=run_status(data.get("status")),
        conclusion=conclusion(data.get("conclusion")),
        run_attempt=int(data.get("run_attempt") or run.run_attempt),
        steps=steps,
        needs=list(needs.get(name, [])),
        started_at=data.get("started_at"),
        completed_at=data.get("completed_at"),
        html_url=str(data.get("html_url") or ""),
    )


def check_state(check: Mapping[str, Any]) -> CombinedState:
    """A check run as a combined state."""
    if check.get("status") != "completed":
        return CombinedState.PENDING
    value = check.get("conclusion")
    if conclusion(value) in FAILED_CONCLUSIONS or value in ("startup_failure", "action_required"):
        return CombinedState.FAILURE
    return CombinedState.SUCCESS


def status_state(status: Mapping[str, Any]) -> CombinedState:
    """A commit status as a combined state."""
    state = status.get("state")
    if state in ("failure", "error"):
        return CombinedState.FAILURE
    return CombinedState.PENDING if state == "pending" else CombinedState.SUCCESS


def is_fork(repo: str, pull: Mapping[str, Any]) -> bool:
    """Whether a pull request's payload comes from a fork of ``repo``."""
    head_repo = (pull.get("head") or {}).get("repo")
    if not head_repo:
        return True  # the fork was deleted
    return str(head_repo.get("full_name", "")).lower() != repo.lower()


def to_pull(pull: GhPullRequest) -> PullRequest:
    return PullRequest(
        number=int(pull.number),
        head=str(pull.head.ref),
        base=str(pull.base.ref),
        title=str(pull.title),
        url=str(pull.html_url),
        state=str(pull.state),
        draft=bool(pull.draft),
    )


def archive_member_of(member: str, job_name: str) -> bool:
    """Whether ``member`` of a run's log archive is the whole log of the job ``job_name``
    (``<n>_<job name>.txt`` at the top; GitHub replaces some characters of the name)."""
    if "/" in member or not member.endswith(".txt") or not _MEMBER_INDEX.match(member):
        return False
    stem = _MEMBER_INDEX.sub("", member[: -len(".txt")], count=1)

    def key(text: str) -> str:
        return "".join(c for c in text.lower() if c.isalnum())

    return bool(key(job_name)) and key(stem) == key(job_name)
