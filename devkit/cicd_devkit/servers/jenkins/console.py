"""A local run's attempt rendered as a Jenkins Pipeline build: its console log and its stage
view (``wfapi``), from the same layout so that node ids agree.

Each job of the attempt is a stage, in the workflow's order, wrapped in ``catchError`` (as a
Pipeline that runs every stage and fails the build at the end, which is how the local
runner's independent jobs behave); each executed step of a job is a flow node of the stage:
a ``run:`` step an ``sh`` step (its command echoed with ``+ ``, as ``sh`` does), a ``uses:``
step an ``echo`` of what the local runner did instead. The job's raw GitHub Actions log
(timestamps, ``##[group]``, ``##[error]``) becomes the plain console text Jenkins shows:
``ERROR: script returned exit code N`` after a failing ``sh``, ``Stage "x" skipped due to
earlier failure(s)`` for a job that did not run, ``Finished: RESULT`` at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.models import Job, Run, Step

CHECKOUT_STAGE = "Declarative: Checkout SCM"
CHECKOUT_NODE = 5
FIRST_STAGE_NODE = 100
STAGE_STRIDE = 100
_TS = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_EXIT = re.compile(r"##\[error\]Process completed with exit code (\d+)")
_TIMEOUT = re.compile(r"##\[error\].*(?:exceeded the maximum execution time|timed out)", re.I)
_USES = re.compile(r"^Run [\w.-]+/[\w./-]+@\S+$")
_AUX_STEPS = ("Set up job", "Complete job")
RESULTS = {
    Conclusion.SUCCESS: "SUCCESS",
    Conclusion.FAILURE: "FAILURE",
    Conclusion.CANCELLED: "ABORTED",
    Conclusion.TIMED_OUT: "ABORTED",
    Conclusion.SKIPPED: "NOT_BUILT",
    Conclusion.NEUTRAL: "SUCCESS",
}
_STAGE_STATUS = {
    Conclusion.SUCCESS: "SUCCESS",
    Conclusion.FAILURE: "FAILED",
    Conclusion.CANCELLED: "ABORTED",
    Conclusion.TIMED_OUT: "ABORTED",
    Conclusion.SKIPPED: "NOT_EXECUTED",
    Conclusion.NEUTRAL: "SUCCESS",
}


@dataclass
class FlowNode:
    id: int
    name: str
    status: str
    description: str
    start_ms: int
    duration_ms: int


@dataclass
class StageView:
    id: int
    name: str
    status: str
    start_ms: int
    duration_ms: int
    nodes: list[FlowNode] = field(default_factory=list)


@dataclass
class Rendered:
    text: str
    stages: list[StageView]
    result: str | None


@dataclass
class _Group:
    title: str
    lines: list[str] = field(default_factory=list)
    exit_code: int | None = None
    timed_out: bool = False


def millis(iso: str | None) -> int:
    """Milliseconds since the epoch of an ISO timestamp (0 when unknown)."""
    from datetime import datetime

    if not iso:
        return 0
    try:
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def status_of(status: RunStatus, conclusion: Conclusion | None) -> str:
    if status is RunStatus.IN_PROGRESS:
        return "IN_PROGRESS"
    if status is not RunStatus.COMPLETED or conclusion is None:
        return "NOT_EXECUTED"
    return _STAGE_STATUS.get(conclusion, "SUCCESS")


def parse_groups(log_text: str) -> list[_Group]:
    """The steps' ``##[group]`` sections of a GitHub Actions job log (``Set up job``,
    ``Run ...``) with their output lines; a group a step prints itself (an action's
    ``Installed versions``) is output of that step."""
    groups: list[_Group] = []
    in_header = False
    for raw in log_text.splitlines():
        line = _TS.sub("", raw, count=1)
        title = line[len("##[group]") :].strip() if line.startswith("##[group]") else None
        if title is not None and (title.startswith("Run ") or title in _AUX_STEPS):
            groups.append(_Group(title))
            in_header = True
        elif title is not None:
            if groups:
                groups[-1].lines.append(title)
        elif line.startswith("##[endgroup]"):
            in_header = False
        elif groups and not in_header:  # the step's header (command, shell, with:) is no output
            _add_output(groups[-1], line)
    return groups


def _add_output(group: _Group, line: str) -> None:
    """One output line of a step: its exit code, a timeout, or a line of the console."""
    exit_match = _EXIT.search(line)
    if exit_match:
        group.exit_code = int(exit_match.group(1))
    elif _TIMEOUT.search(line):
        group.timed_out = True
    elif line.startswith(("Post job cleanup.", "Cleaning up orphan processes")):
        return
    elif line.startswith("##[error]"):
        group.lines.append("ERROR: " + line[len("##[error]") :])
    elif line.startswith("##[warning]"):
        group.lines.append("WARNING: " + line[len("##[warning]") :])
    elif line.startswith("##["):
        group.lines.append(re.sub(r"^##\[\w+\]", "", line))
    else:
        group.lines.append(line)


def _executed_steps(job: Job) -> list[Step]:
    return [
        s
        for s in job.steps
        if s.name not in _AUX_STEPS
        and s.status is not RunStatus.QUEUED
        and s.conclusion is not Conclusion.SKIPPED
    ]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, *lines: str) -> None:
        self.lines.extend(lines)


def _render_stage(
    out: _Writer, job: Job, stage_id: int, log_text: str, any_failed: bool
) -> StageView:
    start = millis(job.started_at)
    end = millis(job.completed_at) or start
    view = StageView(
        stage_id, job.name, status_of(job.status, job.conclusion), start, max(0, end - start)
    )
    if job.status is RunStatus.QUEUED:
        return view  # not reached yet: in the stage view, not in the console
    out("[Pipeline] stage", f"[Pipeline] {{ ({job.name})")
    if job.conclusion is Conclusion.SKIPPED:
        reason = "earlier failure(s)" if any_failed else "when conditional"
        out(f'Stage "{job.name}" skipped due to {reason}', "[Pipeline] }", "[Pipeline] // stage")
        return view
    out("[Pipeline] catchError", "[Pipeline] {")
    groups = [g for g in parse_groups(log_text) if g.title != "Set up job"]
    failure: str | None = None
    for i, step in enumerate(_executed_steps(job)):
        group = groups[i] if i < len(groups) else _Group(step.name)
        command = group.title[4:] if group.title.startswith("Run ") else group.title
        uses = bool(_USES.match(group.title))
        out("[Pipeline] echo" if uses else "[Pipeline] sh")
        if not uses:
            out(*("+ " + c for c in command.splitlines() or [command]))
        out(*group.lines)
        s_start = millis(step.started_at)
        s_end = millis(step.completed_at) or s_start
        view.nodes.append(
            FlowNode(
                stage_id + 3 + i,
                step.name,
                status_of(step.status, step.conclusion),
                command,
                s_start,
                max(0, s_end - s_start),
            )
        )
        if group.timed_out:
            failure = "Timeout has been exceeded"
        elif group.exit_code:
            failure = f"ERROR: script returned exit code {group.exit_code}"
    out("[Pipeline] }")
    if failure is None and job.conclusion in (Conclusion.FAILURE, Conclusion.TIMED_OUT):
        failure = "ERROR: the stage failed"
    if failure:
        out(failure)
    out("[Pipeline] // catchError", "[Pipeline] }", "[Pipeline] // stage")
    return view


def render(
    run: Run,
    log_of: Callable[[Job], str],
    *,
    cause: str,
    script_path: str,
    remote: str,
    workspace: str,
) -> Rendered:
    """The console and stage view of one attempt (``run`` with its jobs)."""
    out = _Writer()
    building = run.status is not RunStatus.COMPLETED
    start = millis(run.created_at)
    out(
        cause,
        f"Obtained {script_path} from git {remote}",
        "[Pipeline] Start of Pipeline",
        "[Pipeline] node",
        f"Running on Jenkins in {workspace}",
        "[Pipeline] {",
        "[Pipeline] stage",
        f"[Pipeline] {{ ({CHECKOUT_STAGE})",
        "[Pipeline] checkout",
        "The recommended git tool is: NONE",
        "No credentials specified",
        f"Checking out Revision {run.head_sha} ({run.head_branch})",
        "[Pipeline] }",
        "[Pipeline] // stage",
        "[Pipeline] withEnv",
        "[Pipeline] {",
    )
    stages = [StageView(CHECKOUT_NODE, CHECKOUT_STAGE, "SUCCESS", start, 0)]
    any_failed = False
    for k, job in enumerate(run.jobs):
        view = _render_stage(out, job, FIRST_STAGE_NODE + k * STAGE_STRIDE, log_of(job), any_failed)
        any_failed = any_failed or view.status in ("FAILED", "ABORTED")
        stages.append(view)
    result = None
    if not building:
        result = RESULTS.get(run.conclusion or Conclusion.FAILURE, "FAILURE")
        out(
            "[Pipeline] }",
            "[Pipeline] // withEnv",
            "[Pipeline] }",
            "[Pipeline] // node",
            "[Pipeline] End of Pipeline",
            f"Finished: {result}",
        )
    return Rendered("\n".join(out.lines) + "\n", stages, result)
