"""A local job's log (GitHub Actions' raw format) rendered as a GitLab job trace.

GitLab's runner writes a trace with ANSI colours and collapsible sections::

    section_start:1700000000:prepare_executor\\r\\e[0K\\e[0K\\e[36;1mPreparing the executor\\e[0;m
    ...
    section_end:1700000000:prepare_executor\\r\\e[0K
    section_start:1700000001:step_script\\r\\e[0K\\e[0K\\e[36;1mExecuting "step_script" stage...
    \\e[32;1m$ ruff check .\\e[0;m
    ...
    \\e[31;1mERROR: Job failed: exit code 1\\e[0;m

The local job's "Set up job" and checkout steps become the runner's preparation and
``get_sources`` sections; every other step becomes a custom collapsible section (named after
the step, as a project's script would name it) inside ``step_script``; the step's command is
echoed as ``$ command``; workflow-command markers (``##[group]``, ``##[error]``) are not
GitLab's and do not appear. The last line is GitLab's verdict: ``Job succeeded``,
``ERROR: Job failed: exit code N``, ``... execution took longer than ...``, ``... canceled``, or
``ERROR: Job failed (system failure): ...`` for a runner failure.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from cicd_orchestrator.constants import Conclusion

ESC = "\x1b"
_TS = re.compile(r"^\ufeff?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z ?")
_TOP = re.compile(r"^(?:Set up job|Run |Post |Complete job)")
_EXIT = re.compile(r"##\[error\]Process completed with exit code (\d+)")
_TIMEOUT = re.compile(r"exceeded the maximum execution time of (\d+) minutes")
_CANCEL = re.compile(r"##\[error\]The operation was canceled")
_SLUG = re.compile(r"[^\w.-]+")
_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@\S+$")
SCRIPT_HEADER = 'Executing "step_script" stage of the job script'
RUNNER_VERSION = "17.11.0"

_SYSTEM_FAILURES = {
    "runner_system_failure": "failed to pull image: runner system failure",
    "api_failure": "the runner could not reach GitLab's API",
    "stuck_or_timeout_failure": "the job was stuck or timed out",
    "scheduler_failure": "the job could not be scheduled",
    "data_integrity_failure": "the job's data is inconsistent",
}


@dataclass
class _Segment:
    title: str
    ts: int
    head: list[str] = field(default_factory=list)  # inside ##[group] ... ##[endgroup]
    body: list[str] = field(default_factory=list)
    in_group: bool = True


def _unix(stamp: str | None, default: int) -> int:
    if not stamp:
        return default
    try:
        parsed = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.UTC)
    except ValueError:
        return default
    return int(parsed.timestamp())


def _split(text: str) -> tuple[list[_Segment], int | None, str | None]:
    """Top-level steps of a GitHub-format log, the exit code, and a timeout/cancel verdict."""
    segments: list[_Segment] = []
    exit_code: int | None = None
    verdict: str | None = None
    last_ts = 0
    for raw in text.splitlines():
        match = _TS.match(raw)
        line = raw[match.end() :] if match else raw
        last_ts = _unix(match.group(1), last_ts) if match else last_ts
        if line.startswith("##[group]") and (_TOP.match(line[9:]) or not segments):
            segments.append(_Segment(line[9:].strip(), last_ts))
            continue
        if line.startswith("##[group]"):  # a group a step prints itself: its title is output
            line = line[9:].strip()
        if line.startswith("Post job cleanup") and segments:
            segments.append(_Segment("Post job cleanup", last_ts, in_group=False))
            continue
        if not segments:
            segments.append(_Segment("Set up job", last_ts, in_group=False))
        seg = segments[-1]
        if line.startswith("##[endgroup]"):
            seg.in_group = False
            continue
        if code := _EXIT.search(line):
            exit_code = int(code.group(1))
            continue
        if minutes := _TIMEOUT.search(line):
            verdict = f"execution took longer than {int(minutes.group(1))}m0s seconds"
            continue
        if _CANCEL.search(line):
            verdict = "canceled"
            continue
        (seg.head if seg.in_group else seg.body).append(_plain(line))
    return segments, exit_code, verdict


def _plain(line: str) -> str:
    """Workflow-command markers as GitLab shows such lines (coloured, no marker)."""
    if line.startswith("##[error]"):
        return f"{ESC}[31;1m{line[9:]}{ESC}[0;m"
    if line.startswith("##[warning]"):
        return f"{ESC}[0;33m{line[11:]}{ESC}[0;m"
    if line.startswith(("##[notice]", "##[debug]")):
        return line.split("]", 1)[1]
    return line


def _start(ts: int, name: str, header: str, collapsed: bool = False) -> str:
    flag = "[collapsed=true]" if collapsed else ""
    return f"section_start:{ts}:{name}{flag}\r{ESC}[0K{ESC}[0K{ESC}[36;1m{header}{ESC}[0;m"


def _end(ts: int, name: str) -> str:
    return f"section_end:{ts}:{name}\r{ESC}[0K"


def _slug(name: str) -> str:
    return _SLUG.sub("_", name.lower()).strip("_.-")[:60] or "step"


def render_trace(
    log_text: str,
    step_names: list[str],
    conclusion: Conclusion | None,
    failure_reason: str | None = None,
    runner: str = "cicd-local",
) -> str:
    """The GitLab trace of a local job (see the module docstring). ``step_names``: the
    local job's step names, in order (they name the custom sections)."""
    segments, exit_code, verdict = _split(log_text)
    ts0 = segments[0].ts if segments else 0
    out = [
        f"{ESC}[0KRunning with gitlab-runner {RUNNER_VERSION} (local){ESC}[0;m",
        f"{ESC}[0K  on {runner} t3_local, system ID: s_{runner}{ESC}[0;m",
        _start(ts0, "prepare_executor", 'Preparing the "shell" executor'),
        f"{ESC}[0KUsing Shell (bash) executor...{ESC}[0;m",
        _end(ts0, "prepare_executor"),
        _start(ts0, "prepare_script", "Preparing environment"),
        f"Running on {runner}...",
        _end(ts0, "prepare_script"),
    ]
    system = _SYSTEM_FAILURES.get(failure_reason or "")
    if system is None:
        out.extend(_job_sections(segments, step_names))
    end = segments[-1].ts if segments else ts0
    out.append(
        _start(
            end, "cleanup_file_variables", "Cleaning up project directory and file based variables"
        )
    )
    out.append(_end(end, "cleanup_file_variables"))
    out.append(_verdict(conclusion, exit_code, verdict, system))
    return "\n".join(out) + "\n"


def _job_sections(segments: list[_Segment], step_names: list[str]) -> list[str]:
    out: list[str] = []
    sources = [s for s in segments if s.title == "Set up job" or "actions/checkout" in s.title]
    if sources:
        out.append(_start(sources[0].ts, "get_sources", "Getting source from Git repository"))
        for seg in sources:
            out.extend(seg.head + seg.body)
        out.append(_end(sources[-1].ts, "get_sources"))
    script = [
        (index, seg)
        for index, seg in enumerate(segments)
        if seg not in sources
        and seg.title not in ("Post job cleanup", "Complete job")
        and not seg.title.startswith("Post ")
    ]
    if not script:
        return out
    out.append(_start(script[0][1].ts, "step_script", SCRIPT_HEADER))
    for index, seg in script:
        name = step_names[index] if index < len(step_names) else seg.title
        slug = _slug(name)
        out.append(_start(seg.ts, slug, name, collapsed=True))
        command = seg.title[4:] if seg.title.startswith("Run ") else seg.title
        if _ACTION.match(command):  # a setup action of the workflow: no command of its own
            out.append(f"{ESC}[0;33mUsing the host's tools for {command}{ESC}[0;m")
        else:
            out.append(f"{ESC}[32;1m$ {command}{ESC}[0;m")
        out.extend(seg.body)
        out.append(_end(seg.ts, slug))
    out.append(_end(script[-1][1].ts, "step_script"))
    return out


def _verdict(
    conclusion: Conclusion | None, exit_code: int | None, verdict: str | None, system: str | None
) -> str:
    if system is not None:
        return f"{ESC}[31;1mERROR: Job failed (system failure): {system}{ESC}[0;m"
    if conclusion is Conclusion.SUCCESS or conclusion is None:
        return f"{ESC}[32;1mJob succeeded{ESC}[0;m"
    if conclusion is Conclusion.TIMED_OUT or (verdict and verdict != "canceled"):
        text = verdict or "execution took longer than the job's timeout"
        return f"{ESC}[31;1mERROR: Job failed: {text}{ESC}[0;m"
    if conclusion is Conclusion.CANCELLED or verdict == "canceled":
        return f"{ESC}[31;1mERROR: Job failed: canceled{ESC}[0;m"
    return f"{ESC}[31;1mERROR: Job failed: exit code {exit_code or 1}{ESC}[0;m"
