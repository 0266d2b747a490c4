"""Jenkins builds as the orchestrator's runs, attempts and jobs (pure functions over the JSON
of Jenkins' REST API and console text).

The mapping (the orchestrator's ids are integers that must be unique per repository and grow
with time, and a Jenkins build number is only unique within one job):

- a repository is one Jenkins job: a multibranch Pipeline project (each branch a child job,
  ``/job/<project>/job/<branch>/``; ``acme/shipping`` is the project ``shipping`` in the
  organization folder ``acme``) or a single Pipeline job whose builds name their branch in
  ``lastBuiltRevision``;
- a *run* is a chain of builds of one branch job: a fresh build (pushed, indexed, started by
  a user) and the builds that rebuild or replay it (their cause names the original build);
  ``Run.id`` is the ``queueId`` of the chain's first build: Jenkins' queue ids are unique on
  the controller and grow with time, so they order runs across branches like GitHub's run ids
  and serve as the sweep's cursor;
- an *attempt* is the n-th build of a chain (``Run.run_attempt``); ``Run.run_number`` is the
  number of the chain's first build, ``Run.html_url`` the URL of the attempt's build;
- a *job* is a stage of the Pipeline stage view (``wfapi/describe``), its *steps* the stage's
  flow nodes; ``Job.id`` is ``queueId * JOB_ID_FACTOR + stage node id`` of the build, so a log
  request names its build; node ``0`` is the whole build (a build that failed outside every
  stage gets one such job);
- the commit of a build is ``lastBuiltRevision.SHA1`` of its git ``BuildData`` action.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from cicd_orchestrator.constants import FAILED_CONCLUSIONS, Conclusion, RunStatus
from cicd_orchestrator.models import Job, Run, Step

log = logging.getLogger(__name__)

JOB_ID_FACTOR = 1_000_000
WHOLE_BUILD_NODE = 0
MULTIBRANCH_CLASSES = (
    "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
    "jenkins.branch.MultiBranchProject",
)
FOLDER_CLASSES = ("jenkins.branch.OrganizationFolder", "com.cloudbees.hudson.plugins.folder.Folder")
SYNTHETIC_STAGE = re.compile(r"^Declarative: ")
_BUILD_RESULTS = {
    "SUCCESS": Conclusion.SUCCESS,
    "FAILURE": Conclusion.FAILURE,
    "UNSTABLE": Conclusion.FAILURE,
    "ABORTED": Conclusion.CANCELLED,
    "NOT_BUILT": Conclusion.SKIPPED,
}
_STAGE_RESULTS = {
    "SUCCESS": Conclusion.SUCCESS,
    "FAILED": Conclusion.FAILURE,
    "UNSTABLE": Conclusion.FAILURE,
    "ABORTED": Conclusion.CANCELLED,
    "NOT_EXECUTED": Conclusion.SKIPPED,
}
_RUNNING_STAGES = {"IN_PROGRESS", "PAUSED_PENDING_INPUT"}
_ORIGIN_TEXT = re.compile(r"^(?:Replayed|Rebuilds|Restarted from build|Restarted from) #(\d+)")
_STAGE_OPEN = re.compile(r"^\[Pipeline\] \{ \((.+)\)\s*$")

BUILD_TREE = (
    "number,queueId,url,result,building,inProgress,timestamp,duration,displayName,"
    "actions[causes[shortDescription,upstreamBuild,upstreamProject,originalNumber,userId],"
    "lastBuiltRevision[SHA1,branch[name]]]"
)


# --------------------------------------------------------------------------- builds
@dataclass(frozen=True)
class BuildRef:
    """One build of a branch job, from the job's ``builds`` list."""

    job: str  # python-jenkins full name of the branch job ("acme/shipping/main")
    branch: str
    number: int
    queue_id: int
    url: str
    result: str | None
    building: bool
    timestamp: int
    duration: int
    sha: str
    origin: int | None  # the build this one rebuilds or replays
    cause: str = ""

    @property
    def done(self) -> bool:
        return not self.building and self.result is not None


@dataclass
class BuildChain:
    """A run: a fresh build and the builds that rebuild it, in attempt order."""

    job: str
    branch: str
    builds: list[BuildRef] = field(default_factory=list)

    @property
    def run_id(self) -> int:
        return self.builds[0].queue_id

    @property
    def head_sha(self) -> str:
        return self.builds[0].sha

    def attempt(self, number: int | None) -> BuildRef:
        if number is None:
            return self.builds[-1]
        return self.builds[number - 1]


def branch_of_job(name: str) -> str:
    """A multibranch child job's name is its branch, URL-encoded (``fix%2Fx`` is ``fix/x``)."""
    return unquote(name)


def _causes(actions: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action in actions or []:
        if isinstance(action, dict):
            out.extend(c for c in action.get("causes") or [] if isinstance(c, dict))
    return out


def build_origin(build: dict[str, Any], job_url: str = "", job_name: str = "") -> int | None:
    """The number of the build this one rebuilds, replays or restarts, if any."""
    for cause in _causes(build.get("actions") or []):
        if cause.get("originalNumber"):
            return int(cause["originalNumber"])
        upstream = cause.get("upstreamBuild")
        project = str(cause.get("upstreamProject") or "")
        cls = str(cause.get("_class") or "")
        if upstream and ("Rebuild" in cls or project in (job_name, job_url) or not project):
            return int(upstream)
        match = _ORIGIN_TEXT.match(str(cause.get("shortDescription") or ""))
        if match:
            return int(match.group(1))
    return None


def build_revision(build: dict[str, Any]) -> tuple[str, str]:
    """(sha, branch) of the first git ``BuildData`` action (branch without remote prefix)."""
    for action in build.get("actions") or []:
        if not isinstance(action, dict):
            continue
        revision = action.get("lastBuiltRevision")
        if isinstance(revision, dict) and revision.get("SHA1"):
            branches = revision.get("branch") or []
            name = str(branches[0].get("name") or "") if branches else ""
            for prefix in ("refs/remotes/origin/", "refs/heads/", "origin/"):
                if name.startswith(prefix):
                    name = name[len(prefix) :]
                    break
            return str(revision["SHA1"]), name
    return "", ""


def build_refs(job: str, branch: str | None, builds: Iterable[dict[str, Any]]) -> list[BuildRef]:
    """BuildRefs of a job's ``builds`` (the branch from the job, or from each build's revision
    for a single Pipeline job)."""
    out = []
    for data in builds:
        if not isinstance(data, dict) or data.get("number") is None:
            continue
        sha, rev_branch = build_revision(data)
        causes = _causes(data.get("actions") or [])
        out.append(
            BuildRef(
                job=job,
                branch=branch if branch is not None else rev_branch,
                number=int(data["number"]),
                queue_id=int(data.get("queueId") or 0),
                url=str(data.get("url") or ""),
                result=data.get("result"),
                building=bool(data.get("building") or data.get("inProgress")),
                timestamp=int(data.get("timestamp") or 0),
                duration=int(data.get("duration") or 0),
                sha=sha,
                origin=build_origin(data, job_name=job),
                cause=str(causes[0].get("shortDescription") or "") if causes else "",
            )
        )
    return out


def chains(builds: Iterable[BuildRef]) -> list[BuildChain]:
    """Group builds into runs: a build that rebuilds an earlier build of the same job joins
    that build's run (in build-number order); every other build starts a run."""
    by_job: dict[tuple[str, str], list[BuildRef]] = {}
    for b in builds:
        by_job.setdefault((b.job, b.branch), []).append(b)
    out: list[BuildChain] = []
    for (job, branch), items in by_job.items():
        numbers = {b.number: b for b in items}
        root_of: dict[int, int] = {}
        by_root: dict[int, BuildChain] = {}
        for b in sorted(items, key=lambda x: x.number):
            root = b.number
            if b.origin is not None and b.origin in numbers and b.origin < b.number:
                root = root_of.get(b.origin, b.origin)
            root_of[b.number] = root
            by_root.setdefault(root, BuildChain(job, branch)).builds.append(b)
        out.extend(by_root.values())
    return sorted(out, key=lambda c: c.run_id, reverse=True)


def iso(millis: int | None) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_status(build: BuildRef) -> RunStatus:
    if build.building:
        return RunStatus.IN_PROGRESS
    return RunStatus.COMPLETED if build.result is not None else RunStatus.QUEUED


def build_conclusion(result: str | None) -> Conclusion | None:
    if not result:
        return None
    return _BUILD_RESULTS.get(str(result), Conclusion.NEUTRAL)


def to_run(
    repo: str, chain: BuildChain, attempt: int | None, workflow: str, workflow_path: str
) -> Run:
    build = chain.attempt(attempt)
    first = chain.builds[0]
    number = chain.builds.index(build) + 1
    event = "pull_request" if re.match(r"^(PR|MR)-\d+$", chain.branch) else "push"
    if first.cause.startswith("Started by user"):
        event = "workflow_dispatch"
    end = build.timestamp + build.duration if build.duration else build.timestamp
    return Run(
        id=chain.run_id,
        repository=repo,
        workflow=workflow,
        workflow_path=workflow_path,
        head_branch=chain.branch,
        head_sha=build.sha or first.sha,
        event=event,
        status=build_status(build),
        conclusion=build_conclusion(build.result) if build.done else None,
        run_number=first.number,
        run_attempt=number,
        created_at=iso(first.timestamp),
        updated_at=iso(end),
        html_url=build.url,
    )


# --------------------------------------------------------------------------- stages
def job_id(queue_id: int, node: int) -> int:
    return int(queue_id) * JOB_ID_FACTOR + int(node)


def split_job_id(value: int) -> tuple[int, int]:
    """(queue id of the build, stage node id) of a job id."""
    queue_id, node = divmod(int(value), JOB_ID_FACTOR)
    return queue_id, node


def _node_id(value: Any) -> int:
    text = str(value or "0")
    return int(text) if text.isdigit() and int(text) < JOB_ID_FACTOR else 0


def stage_state(status: str, building: bool) -> tuple[RunStatus, Conclusion | None]:
    """A stage view status as (status, conclusion) of a job (or step)."""
    if status in _RUNNING_STAGES:
        return RunStatus.IN_PROGRESS, None
    if status == "NOT_EXECUTED" and building:
        return RunStatus.QUEUED, None
    return RunStatus.COMPLETED, _STAGE_RESULTS.get(status, Conclusion.NEUTRAL)


def stage_steps(node: dict[str, Any] | None, building: bool) -> list[Step]:
    """The flow nodes of a stage (``execution/node/<id>/wfapi/describe``) as steps."""
    steps = []
    for i, flow in enumerate((node or {}).get("stageFlowNodes") or []):
        status, conclusion = stage_state(str(flow.get("status") or ""), building)
        start = int(flow.get("startTimeMillis") or 0)
        steps.append(
            Step(
                number=i + 1,
                name=str(flow.get("name") or flow.get("parameterDescription") or "step"),
                status=status,
                conclusion=conclusion,
                started_at=iso(start),
                completed_at=iso(start + int(flow.get("durationMillis") or 0))
                if status is RunStatus.COMPLETED
                else None,
            )
        )
    return steps


def stage_jobs(
    run: Run,
    build: BuildRef,
    describe: dict[str, Any] | None,
    nodes: dict[str, dict[str, Any]] | None = None,
) -> list[Job]:
    """The stages of a build as jobs. ``Declarative: ...`` stages (checkout, post actions)
    only when they did not succeed; a failed build without a failed stage gets one job for
    the whole build (its log is the whole console)."""
    jobs: list[Job] = []
    for stage in (describe or {}).get("stages") or []:
        name = str(stage.get("name") or "")
        raw = str(stage.get("status") or "")
        status, conclusion = stage_state(raw, build.building)
        if SYNTHETIC_STAGE.match(name) and conclusion in (Conclusion.SUCCESS, Conclusion.SKIPPED):
            continue
        node = _node_id(stage.get("id"))
        start = int(stage.get("startTimeMillis") or 0)
        jobs.append(
            Job(
                id=job_id(build.queue_id, node),
                run_id=run.id,
                name=name,
                status=status,
                conclusion=conclusion,
                run_attempt=run.run_attempt,
                steps=stage_steps((nodes or {}).get(str(stage.get("id"))), build.building),
                started_at=iso(start),
                completed_at=iso(start + int(stage.get("durationMillis") or 0))
                if status is RunStatus.COMPLETED
                else None,
                html_url=f"{build.url}execution/node/{node}/" if build.url else "",
            )
        )
    bad = FAILED_CONCLUSIONS
    if build.done and run.conclusion in bad and not any(j.conclusion in bad for j in jobs):
        jobs.append(
            Job(
                id=job_id(build.queue_id, WHOLE_BUILD_NODE),
                run_id=run.id,
                name=run.workflow_path or "build",
                status=RunStatus.COMPLETED,
                conclusion=run.conclusion,
                run_attempt=run.run_attempt,
                started_at=iso(build.timestamp),
                completed_at=iso(build.timestamp + build.duration),
                html_url=f"{build.url}console" if build.url else "",
            )
        )
    return jobs


def stage_occurrence(describe: dict[str, Any] | None, node: int) -> tuple[str, int] | None:
    """(name, n) of the stage with node id ``node``: it is the n-th stage of that name."""
    seen: dict[str, int] = {}
    for stage in (describe or {}).get("stages") or []:
        name = str(stage.get("name") or "")
        seen[name] = seen.get(name, 0) + 1
        if _node_id(stage.get("id")) == node:
            return name, seen[name]
    return None


# --------------------------------------------------------------------------- console
def stage_lines(lines: Iterable[bytes], name: str, occurrence: int = 1) -> Iterator[bytes]:
    """The lines of one stage of a Pipeline console log: from ``[Pipeline] { (name)`` to the
    ``[Pipeline] // stage`` that closes it (nested blocks counted), then what the console says
    after ``[Pipeline] End of Pipeline`` (the build's error and ``Finished:`` line)."""
    wanted = f"[Pipeline] {{ ({name})".encode()
    rest = iter(lines)
    seen = 0
    for raw in rest:
        if raw.rstrip(b"\r\n").rstrip() != wanted:
            continue
        seen += 1
        if seen == occurrence:
            yield b"[Pipeline] stage\n"
            yield _line(raw)
            yield from _stage_body(rest)
            yield from _epilogue(rest)
            return


def _line(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


def _stage_body(rest: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a stage after its opening line, through the ``// stage`` closing it."""
    depth = 1
    for raw in rest:
        text = raw.rstrip(b"\r\n")
        yield _line(raw)
        if text.startswith(b"[Pipeline] {"):
            depth += 1
        elif text == b"[Pipeline] }":
            depth -= 1
        elif text == b"[Pipeline] // stage" and depth <= 0:
            return


def _epilogue(rest: Iterator[bytes]) -> Iterator[bytes]:
    """The lines after ``[Pipeline] End of Pipeline``."""
    after_end = False
    for raw in rest:
        text = raw.rstrip(b"\r\n")
        if text == b"[Pipeline] End of Pipeline":
            after_end = True
        elif after_end:
            yield _line(raw)


def stage_names(lines: Iterable[str]) -> list[str]:
    """The stage names of a console log, in order (for tests and diagnostics)."""
    return [m.group(1) for line in lines if (m := _STAGE_OPEN.match(line.rstrip("\n")))]
