"""GitLab's payloads as the orchestrator's objects (pure functions over the REST API's JSON).

- A run is a pipeline (``id``; ``iid`` is the run number, ``ref`` the branch, ``source`` the
  event, with ``merge_request_event`` read as ``pull_request``).
- A job is a job; its step is its stage (GitLab has no steps inside a job); a job needs every
  job of the stages before its own (GitLab's stage order), a failed job with
  ``allow_failure`` is neutral, and GitLab's ``failure_reason`` is kept on the job
  (``GitLabJob``; timeouts give a timed-out conclusion, see ``reasons``).
- Attempt ``n`` of a pipeline is, for each job name, its ``n``-th instance (or its last one
  when it was retried fewer times); the latest attempt is the highest number of instances of
  one job. A run's state is computed from the jobs of the attempt.
- Merge requests are pull requests (``number`` = ``iid``), issues are issues.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator.ci.gitlab.reasons import conclusion_of
from cicd_orchestrator.constants import (
    BROKEN_CONCLUSIONS,
    FAILED_CONCLUSIONS,
    CombinedState,
    Conclusion,
    RunStatus,
)
from cicd_orchestrator.models import Issue, Job, PullRequest, Run, Step

DEFAULT_CI_CONFIG = ".gitlab-ci.yml"
_QUEUED = {"created", "pending", "waiting_for_resource", "preparing", "scheduled"}
_RUNNING = {"running", "canceling"}
_DONE = {
    "success": Conclusion.SUCCESS,
    "failed": Conclusion.FAILURE,
    "canceled": Conclusion.CANCELLED,
    "skipped": Conclusion.SKIPPED,
    "manual": Conclusion.SKIPPED,  # a manual job nobody started (the pipeline is blocked)
}
_EVENTS = {"merge_request_event": "pull_request"}
_MR_REF = re.compile(r"refs/merge-requests/([1-9][0-9]{0,9})/(?:head|merge)")
_MR_STATES = {"opened": "open", "locked": "open"}
_ISSUE_STATES = {"opened": "open"}

Instances = dict[str, list[dict[str, Any]]]


@dataclass
class GitLabJob(Job):
    """A GitLab job: a ``Job`` with what GitLab says about it besides."""

    stage: str = ""
    failure_reason: str | None = None
    allow_failure: bool = False
    retried: bool = False


def job_state(
    status: Any, failure_reason: Any = None, allow_failure: bool = False
) -> tuple[RunStatus, Conclusion | None]:
    """(status, conclusion) of a GitLab job or pipeline status."""
    value = str(status or "")
    if value in _QUEUED:
        return RunStatus.QUEUED, None
    if value in _RUNNING:
        return RunStatus.IN_PROGRESS, None
    if value == "failed":
        if allow_failure:
            return RunStatus.COMPLETED, Conclusion.NEUTRAL
        return RunStatus.COMPLETED, conclusion_of(str(failure_reason or "") or None)
    if value in _DONE:
        return RunStatus.COMPLETED, _DONE[value]
    return RunStatus.IN_PROGRESS, None  # a status this version does not know: not done


def combine_jobs(jobs: list[Job]) -> tuple[RunStatus, Conclusion | None]:
    """The state of a run (one attempt) from its jobs."""
    if any(j.status is not RunStatus.COMPLETED for j in jobs):
        started = any(j.status is not RunStatus.QUEUED for j in jobs)
        return (RunStatus.IN_PROGRESS if started else RunStatus.QUEUED), None
    conclusions = {j.conclusion for j in jobs}
    if conclusions & BROKEN_CONCLUSIONS:
        return RunStatus.COMPLETED, Conclusion.FAILURE
    if Conclusion.CANCELLED in conclusions:
        return RunStatus.COMPLETED, Conclusion.CANCELLED
    return RunStatus.COMPLETED, Conclusion.SUCCESS


def status_state(entry: Mapping[str, Any]) -> CombinedState:
    """A commit status (a job or an external status) as a combined state."""
    status, conclusion = job_state(entry.get("status"), None, bool(entry.get("allow_failure")))
    if status is not RunStatus.COMPLETED:
        return CombinedState.PENDING
    return CombinedState.FAILURE if conclusion in FAILED_CONCLUSIONS else CombinedState.SUCCESS


def to_run(repo: str, data: Mapping[str, Any], workflow_path: str) -> Run:
    status, conclusion = job_state(data.get("status"))
    source = str(data.get("source") or "")
    ref = str(data.get("ref") or "")
    merge_request = merge_request_of_ref(ref)
    return Run(
        id=int(data["id"]),
        repository=repo,
        workflow=str(data.get("name") or "pipeline"),
        workflow_path=workflow_path,
        head_branch=ref,
        head_sha=str(data.get("sha") or ""),
        event="pull_request" if merge_request else _EVENTS.get(source, source),
        status=status,
        conclusion=conclusion,
        run_number=int(data.get("iid") or 0),
        run_attempt=1,
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        html_url=str(data.get("web_url") or ""),
        pull_request_number=merge_request,
    )


def merge_request_of_ref(ref: str) -> int | None:
    """The merge request (iid) of a merge request pipeline's ref
    (``refs/merge-requests/<iid>/head`` or ``.../merge``), or None for a branch or a tag."""
    match = _MR_REF.fullmatch(ref)
    return int(match.group(1)) if match else None


def job_instances(jobs: list[dict[str, Any]]) -> Instances:
    """Job name -> every instance of the job (a retry adds one), oldest first."""
    instances: Instances = {}
    for job in sorted(jobs, key=lambda j: int(j["id"])):
        instances.setdefault(str(job.get("name") or ""), []).append(job)
    return instances


def latest_attempt(instances: Instances) -> int:
    return max((len(v) for v in instances.values()), default=1)


def attempt_jobs(run: Run, instances: Instances, number: int) -> list[Job]:
    """The jobs of attempt ``number``: per name, its ``number``-th instance or its last."""
    stage_first: dict[str, int] = {}
    for versions in instances.values():
        stage = str(versions[0].get("stage") or "")
        stage_first[stage] = min(stage_first.get(stage, 1 << 62), int(versions[0]["id"]))
    order = sorted(stage_first, key=lambda s: stage_first[s])
    by_stage: dict[str, list[str]] = {}
    for name, versions in instances.items():
        by_stage.setdefault(str(versions[0].get("stage") or ""), []).append(name)
    out: list[Job] = []
    for versions in sorted(instances.values(), key=lambda v: int(v[0]["id"])):
        index = min(number, len(versions)) - 1
        stage = str(versions[index].get("stage") or "")
        earlier = order[: order.index(stage)] if stage in order else []
        needs = [n for s in earlier for n in by_stage.get(s, [])]
        out.append(to_job(run, versions[index], index + 1, needs))
    return out


def to_job(run: Run, data: Mapping[str, Any], attempt: int, needs: list[str]) -> GitLabJob:
    reason = data.get("failure_reason") or None
    allow = bool(data.get("allow_failure"))
    status, conclusion = job_state(data.get("status"), reason, allow)
    stage = str(data.get("stage") or "")
    started, finished = data.get("started_at"), data.get("finished_at")
    step = Step(1, stage or "script", status, conclusion, started, finished)
    return GitLabJob(
        id=int(data["id"]),
        run_id=run.id,
        name=str(data.get("name") or ""),
        status=status,
        conclusion=conclusion,
        run_attempt=attempt,
        steps=[step],
        needs=needs,
        started_at=started,
        completed_at=finished,
        html_url=str(data.get("web_url") or ""),
        stage=stage,
        failure_reason=str(reason) if reason else None,
        allow_failure=allow,
        retried=bool(data.get("retried")),
    )


DRAFT_PREFIX = "Draft: "


def draft_title(title: str) -> str:
    """The title that makes a merge request a draft."""
    return title if title.startswith(DRAFT_PREFIX) else DRAFT_PREFIX + title


_DRAFT_PREFIXES = re.compile(r"^\s*(?:draft:|\[draft\]|\(draft\))\s*", re.IGNORECASE)


def ready_title(title: str) -> str:
    """The title without the prefixes that make GitLab read a merge request as a draft."""
    while True:
        ready = _DRAFT_PREFIXES.sub("", title, count=1)
        if ready == title:
            return ready
        title = ready


def to_pull(data: Mapping[str, Any]) -> PullRequest:
    """A merge request (its title without the ``Draft:`` that makes it a draft)."""
    state = str(data.get("state") or "opened")
    title = str(data.get("title") or "")
    draft = bool(data.get("draft") or data.get("work_in_progress"))
    return PullRequest(
        number=int(data["iid"]),
        head=str(data.get("source_branch") or ""),
        base=str(data.get("target_branch") or ""),
        title=title.removeprefix(DRAFT_PREFIX) if draft else title,
        url=str(data.get("web_url") or ""),
        state=_MR_STATES.get(state, state),
        draft=draft,
    )


def to_issue(data: Mapping[str, Any]) -> Issue:
    state = str(data.get("state") or "opened")
    return Issue(
        number=int(data["iid"]),
        title=str(data.get("title") or ""),
        url=str(data.get("web_url") or ""),
        state=_ISSUE_STATES.get(state, state),
    )
