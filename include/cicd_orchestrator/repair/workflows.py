"""Reading GitHub Actions workflow files for the configuration fixers.

The workflow files of a checkout, their lines with their own line endings (an edit rewrites
one line and keeps every other byte), and the lines of the failing job (:class:`JobBlock`)
with its parsed and raw forms, found by the job's key, display name or matrix form.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator.actions.workflow import parse_workflow
from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.repair import files

WORKFLOW_DIR = ".github/workflows"
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})


def workflow_files(root: Path) -> list[str]:
    """The workflow files (and local composite actions) of a checkout, repository-relative
    (a link is not one: it is reported and left alone)."""
    found = [
        *files.glob(root, f"{WORKFLOW_DIR}/*.yml"),
        *files.glob(root, f"{WORKFLOW_DIR}/*.yaml"),
        *files.glob(root, ".github/actions/**/action.y*ml"),
    ]
    return [p.relative_to(root).as_posix() for p in found]


@dataclass
class JobBlock:
    """The lines of one job of a workflow file (1-based inclusive), with its parsed form."""

    path: str
    first: int
    last: int
    lines: list[str]
    key: str | None = None
    raw: dict[str, Any] | None = None
    spec: Any = None  # actions.workflow.JobSpec when the workflow parses

    def numbered(self) -> Iterator[tuple[int, str]]:
        for number in range(self.first, self.last + 1):
            yield number, self.lines[number - 1].rstrip("\r\n")

    @property
    def text(self) -> str:
        return "".join(self.lines[self.first - 1 : self.last])


def _parse(path: str, text: str) -> Any:
    try:
        return parse_workflow(text, path)
    except WorkflowError:
        return None


def match_job(jobs: dict[str, Any], job: str) -> str | None:
    """The key of the job named ``job`` (key, display name, matrix or reusable forms)."""
    names = [job, re.sub(r"\s*\(.*\)$", "", job), job.split(" / ")[0].strip()]
    for name in names:
        for key, spec in jobs.items():
            display = getattr(spec, "name", None) or ""
            if name in (key, display):
                return str(key)
            prefix = display.split("${{")[0].strip()
            if "${{" in display and prefix and name.startswith(prefix):
                return str(key)
    return None


def _block_end(lines: list[str], first: int, starts: list[int]) -> int:
    later = [s for s in starts if s > first]
    end = (min(later) - 1) if later else len(lines)
    for number in range(first + 1, end + 1):
        line = lines[number - 1]
        if line.strip() and not line.startswith((" ", "\t", "#")):
            return number - 1  # a top-level key after the jobs
    return end


def _job_block(rel: str, lines: list[str], job: str) -> JobBlock | None:
    """The block of ``job`` in one workflow file (None when the file does not have it)."""
    wf = _parse(rel, "".join(lines))
    if wf is None:
        return None
    key = match_job(wf.jobs, job)
    if key is None or not wf.jobs[key].line:
        return None
    spec = wf.jobs[key]
    starts = [j.line for j in wf.jobs.values() if j.line]
    raw = raw_jobs("".join(lines)).get(key)
    return JobBlock(rel, spec.line, _block_end(lines, spec.line, starts), lines, key, raw, spec)


def job_blocks(root: Path, workflow_path: str, job: str) -> list[JobBlock]:
    """The failing job's lines in its workflow; the whole file(s) when it cannot be found."""
    paths = [workflow_path] if workflow_path and files.is_file(root, workflow_path) else []
    paths = paths or workflow_files(root)
    blocks: list[JobBlock] = []
    whole: list[JobBlock] = []
    for rel in paths:
        lines = files.read_lines(root, rel)
        whole.append(JobBlock(rel, 1, len(lines), lines))
        block = _job_block(rel, lines, job)
        if block is not None:
            blocks.append(block)
    return blocks or whole


def failing_job_text(root: Path, workflow_path: str, job: str) -> str:
    """The text of the failing job in its workflow (all workflows when it is not found)."""
    return "\n".join(block.text for block in job_blocks(root, workflow_path, job))


def raw_mapping(text: str) -> dict[str, Any]:
    """The YAML text as a mapping (empty when it does not parse or is not a mapping)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def raw_jobs(text: str) -> dict[str, Any]:
    jobs = raw_mapping(text).get("jobs")
    return (
        {str(k): v for k, v in jobs.items() if isinstance(v, dict)}
        if isinstance(jobs, dict)
        else {}
    )


def step_at(spec: Any, line: int) -> Any:
    """The step of a parsed job that holds ``line``."""
    found = None
    for step in getattr(spec, "steps", []):
        if step.line and step.line <= line:
            found = step
    return found


def step_label(step: Any) -> str:
    if step is None:
        return "a step"
    return f"step '{step.name or step.default_name}'"
