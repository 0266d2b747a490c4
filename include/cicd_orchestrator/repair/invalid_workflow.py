"""An invalid GitHub Actions workflow is reported, never changed.

The report names the file, the line and the message the log gives, adds what the YAML parser
(or, when the YAML parses, the workflow parser) says and shows the offending line, so a
person can fix the workflow file by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from cicd_orchestrator.actions.workflow import InvalidWorkflowError, parse_workflow
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    failure_lines,
    matching_failures,
)

_INVALID = (
    re.compile(
        r"Invalid workflow file:?\s*(?P<file>[\w./-]+\.ya?ml)(?:#L(?P<line>\d+))?"
        r"(?::\s*(?P<msg>.+))?"
    ),
    re.compile(
        r"The workflow is not valid\.\s*(?P<file>[\w./-]+\.ya?ml)\s*"
        r"(?:\(Line: (?P<line>\d+), Col: (?P<col>\d+)\))?:?\s*(?P<msg>.*)"
    ),
)


def yaml_problem(text: str) -> tuple[int | None, int | None, str] | None:
    """Where and why PyYAML cannot parse ``text`` (1-based line and column), or None."""
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        return line, col, ", ".join(parts) or str(exc)
    except yaml.YAMLError as exc:
        return None, None, str(exc).replace("\n", " ")
    return None


@dataclass
class InvalidWorkflow:
    file: str
    line: int | None = None
    message: str = ""


def _from_log(found: dict[str, InvalidWorkflow], text: str) -> None:
    """Adds what one log line says of an invalid workflow to ``found``."""
    for rx in _INVALID:
        m = rx.search(text)
        if not m:
            continue
        entry = found.setdefault(m["file"], InvalidWorkflow(m["file"]))
        entry.line = entry.line or (int(m["line"]) if m["line"] else None)
        entry.message = entry.message or (m["msg"] or "").strip()


def invalid_workflows(failures: list[Failure], default: str) -> list[InvalidWorkflow]:
    """The files, lines and messages the failures' logs give for invalid workflows."""
    found: dict[str, InvalidWorkflow] = {}
    for failure in failures:
        for text in failure_lines([failure]):
            _from_log(found, text)
        file = failure.captures.get("file")
        if file and file not in found:
            line = failure.captures.get("line")
            found[file] = InvalidWorkflow(file, int(line) if line and line.isdigit() else None)
    if not found and default:
        found[default] = InvalidWorkflow(default)
    return list(found.values())


def _structure_error(path: str, text: str) -> tuple[int | None, str] | None:
    try:
        parse_workflow(text, path)
    except InvalidWorkflowError as exc:
        return exc.line, exc.message
    return None


def _parser_says(entry: InvalidWorkflow, text: str) -> tuple[int | None, str]:
    """The line to show and what the YAML or the workflow parser says of ``text``."""
    problem = yaml_problem(text)
    if problem:
        p_line, p_col, p_msg = problem
        where = f"line {p_line}, column {p_col}" if p_line else "unknown position"
        return entry.line or p_line, f"; YAML parser: {p_msg} ({where})"
    if not entry.message:
        wf_error = _structure_error(entry.file, text)
        if wf_error:
            return entry.line or wf_error[0], f"; workflow parser: {wf_error[1]}"
    return entry.line, ""


def describe(root: Path, entry: InvalidWorkflow) -> str:
    """The report of one invalid workflow: file, line, messages and the offending line."""
    if not files.is_file(root, entry.file):
        return f"invalid workflow {entry.file}: {entry.message or 'see the log'} (file not found)"
    lines = files.read_lines(root, entry.file)
    line, parser = _parser_says(entry, "".join(lines))
    source = lines[line - 1].rstrip("\r\n").strip() if line and line <= len(lines) else ""
    shown = f": `{source}`" if source else ""
    message = entry.message or "the workflow is not valid"
    return (
        f"invalid workflow {entry.file}:{line or '?'}: {message}{parser}{shown}; "
        "fix the workflow file by hand (no automatic change)"
    )


class InvalidWorkflowFixer(WorkspaceFixer):
    """An invalid workflow is reported with file, line and the parser's message (no change)."""

    name = "invalid-workflow"
    categories = frozenset({FailureCategory.CONFIGURATION})
    patterns = frozenset({"gha-invalid-workflow"})

    def relevant(self, failures: list[Failure]) -> list[Failure]:
        return matching_failures(failures, self.categories, patterns=self.patterns)

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        for entry in invalid_workflows(failures, ctx.workflow_path):
            result.unrepaired.append(describe(ws.path, entry))
