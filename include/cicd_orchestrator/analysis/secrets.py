"""Evidence of a missing secret, from the workflow and the log together.

A job whose secret is not configured often fails with words no pattern knows (a ``KeyError``
in a test, "token is empty" from a script, a 401 from ``curl``). The workflow says which
secrets the failing step reads (``${{ secrets.NAME }}`` in its ``env``, ``with`` or ``run``,
or in the job's and workflow's ``env`` that the step inherits), and the log says whether
they had a value: GitHub Actions prints the step's ``with:`` and ``env:`` in the
``##[group]Run ...`` section that opens the step, a secret that is set as ``***`` and one
that is not set as nothing at all. GitLab masks the value of a set variable as ``[MASKED]``;
a variable that the job's script reads, that ``.gitlab-ci.yml`` does not define and that
the log shows empty (``NAME=`` or ``NAME:`` with nothing after it) is not set.

A referenced secret that is empty in the section of the failing step (or, for the local CI,
not configured at all) is evidence that only a person can remove: the failure becomes a
``configuration`` failure with the recipe ``escalate-secret``, naming the secret, the line
of the workflow that reads it and the line of the log that shows it empty.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cicd_orchestrator.analysis.secret_refs import (
    AUTOMATIC_SECRETS,
    SecretRef,
    github_refs,
    gitlab_refs,
    is_gitlab,
    secret_names,
    step_header,
    workflow_refs,
)
from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import LogAnalysis
from cicd_orchestrator.logs.normalize import clean_line
from cicd_orchestrator.models import Failure

__all__ = [
    "AUTOMATIC_SECRETS",
    "SecretEvidence",
    "SecretRef",
    "apply_secret_evidence",
    "apply_to_analysis",
    "find_missing_secrets",
    "github_refs",
    "github_sections",
    "gitlab_refs",
    "log_lines",
    "step_header",
    "workflow_refs",
]

RECIPE = "escalate-secret"
PATTERN = "missing-secret"
CONFIDENCE = 0.95
#: how CI systems print the value of a set secret
MASKS = ("***", "[MASKED]")
MAX_SECTION_LINES = 2000
MAX_LOG_LINE = 4000
MAX_LOG_LINE_BYTES = 64 * 1024

_EXPR = re.compile(r"\$\{\{(.*?)\}\}")
_GROUP = re.compile(r"^##\[group\](?P<header>.*)$")
_ENDGROUP = re.compile(r"^##\[endgroup\]")
_ERROR = re.compile(r"^##\[error\]|^::error\b")
_BLOCK = re.compile(r"^(?P<block>env|with):\s*$")
_BLOCK_ITEM = re.compile(r"^ {2}(?P<key>[^\s:][^:]*?):(?: (?P<value>.*))?$")


@dataclass(frozen=True)
class SecretEvidence:
    """A secret the failing step reads that had no value when it ran."""

    names: tuple[str, ...]
    where: str
    log_line: str
    reason: str

    def describe(self) -> str:
        names = ", ".join(self.names)
        return f"secret {names} ({self.where}) {self.reason}: {self.log_line!r}"


# --------------------------------------------------------------------------- the log
@dataclass
class Section:
    """A ``##[group]`` section of a GitHub Actions log: the step's header, what the group
    shows (script, ``with:``, ``env:``), and whether the step reported an error."""

    header: str
    shown: list[str] = dataclasses.field(default_factory=list)
    blocks: dict[str, dict[str, tuple[str, str]]] = dataclasses.field(default_factory=dict)
    failed: bool = False
    open: bool = True


def _feed(section: Section, line: str, block: list[str]) -> None:
    """One line of a group: the script, or an item of its ``with:``/``env:`` block."""
    if len(section.shown) >= MAX_SECTION_LINES:
        return
    section.shown.append(line)
    m = _BLOCK.match(line)
    if m:
        block[:] = [m["block"]]
        section.blocks.setdefault(m["block"], {})
        return
    item = _BLOCK_ITEM.match(line) if block else None
    if item and block:
        section.blocks[block[0]][item["key"]] = ((item["value"] or "").strip(), line)
    elif not line.startswith("  "):
        block.clear()


def github_sections(lines: Iterable[str]) -> list[Section]:
    """The step sections of a GitHub Actions log (lines of any length, ANSI and all)."""
    sections: list[Section] = []
    block: list[str] = []
    for raw in lines:
        line = clean_line(raw, MAX_LOG_LINE)
        m = _GROUP.match(line)
        if m:
            sections.append(Section(m["header"].strip()))
            block.clear()
            continue
        if not sections:
            continue
        current = sections[-1]
        if _ENDGROUP.match(line):
            current.open = False
        elif current.open:
            _feed(current, line, block)
        elif _ERROR.match(line):
            current.failed = True
    return sections


def log_lines(stream: BinaryIO) -> Iterator[str]:
    """The lines of a log stream, each cut to a bounded length (a log may be huge or
    binary): the rest of an over-long line is skipped."""
    while True:
        raw = stream.readline(MAX_LOG_LINE_BYTES)
        if not raw:
            return
        if not raw.endswith(b"\n"):
            while (more := stream.readline(MAX_LOG_LINE_BYTES)) and not more.endswith(b"\n"):
                pass
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _template(value: str) -> tuple[re.Pattern[str], list[tuple[str, ...]]] | None:
    """A regex of how ``value`` prints once its expressions are evaluated, and the secrets
    each of its groups reads."""
    parts = _EXPR.split(value.strip())
    if len(parts) < 3:
        return None
    rx, groups = "", []
    for i, part in enumerate(parts):
        if i % 2:
            rx += "(.*?)"
            groups.append(secret_names("${{" + part + "}}"))
        else:
            rx += re.escape(part)
    return re.compile(rx), groups


def _empty_names(template: str, shown: str) -> tuple[str, ...] | None:
    """The secrets of ``template`` that ``shown`` (the printed value) shows empty; None when
    ``shown`` is not ``template`` printed."""
    compiled = _template(template)
    if compiled is None:
        return None
    rx, groups = compiled
    m = rx.fullmatch(shown.strip())
    if m is None:
        return None
    empty = [n for value, names in zip(m.groups(), groups, strict=True) if not value for n in names]
    return tuple(dict.fromkeys(empty))


def _in_section(ref: SecretRef, section: Section) -> SecretEvidence | None:
    if ref.kind in ("env", "with"):
        shown = section.blocks.get(ref.kind, {}).get(ref.key or "")
        candidates = [shown] if shown else []
    else:
        candidates = [(ln, ln) for ln in [section.header.removeprefix("Run "), *section.shown]]
    for value, line in candidates:
        empty = _empty_names(ref.template, value)
        if empty:
            return SecretEvidence(empty, ref.where, line.strip(), "is empty in the failing step")
    return None


def _same_header(expected: str, shown: str) -> bool:
    """``shown`` is the header ``expected`` printed (its expressions evaluated)."""
    if expected == shown:
        return True
    compiled = _template(expected)
    return compiled is not None and compiled[0].fullmatch(shown) is not None


def _failing_sections(sections: list[Section], header: str | None) -> list[Section]:
    """The sections of the step ``header`` that failed (the last one when the log marks no
    error at all)."""
    mine = [s for s in sections if header is None or _same_header(header, s.header)]
    failed = [s for s in mine if s.failed]
    if failed or any(s.failed for s in sections):
        return failed
    return mine[-1:]


def github_evidence(refs: list[SecretRef], lines: Iterable[str]) -> list[SecretEvidence]:
    """Secrets of ``refs`` shown empty in the log section of the step that failed."""
    sections = github_sections(lines)
    out: list[SecretEvidence] = []
    for ref in refs:
        for section in _failing_sections(sections, ref.header):
            found = _in_section(ref, section)
            if found is not None:
                out.append(found)
                break
    return out


def gitlab_evidence(refs: list[SecretRef], lines: Iterable[str]) -> list[SecretEvidence]:
    """Variables of ``refs`` that the GitLab job log shows empty (``NAME=`` or ``NAME:`` at
    the end of a line that is not the echo of a command); a masked one is set."""
    wanted = {n for ref in refs for n in ref.names}
    if not wanted:
        return []
    alternation = "|".join(re.escape(n) for n in sorted(wanted))
    shown = re.compile(rf"(?:^|[\s\"'])(?P<name>{alternation})\s*[=:]\s*(?P<value>\S*)\s*$")
    empty: dict[str, str] = {}
    masked: set[str] = set()
    for raw in lines:
        line = clean_line(raw, MAX_LOG_LINE)
        m = shown.search(line)
        if m is None or line.lstrip().startswith("$ "):
            continue
        if m["value"] in MASKS or m["value"].strip("'\"") in MASKS:
            masked.add(m["name"])
        elif not m["value"].strip("'\""):
            empty.setdefault(m["name"], line.strip())
    out = []
    for ref in refs:
        names = tuple(n for n in ref.names if n in empty and n not in masked)
        if names:
            out.append(SecretEvidence(names, ref.where, empty[names[0]], "is empty in the job"))
    return out


def unconfigured(refs: list[SecretRef], configured: Collection[str]) -> list[SecretEvidence]:
    """Secrets of ``refs`` that the CI does not configure at all (``configured``: the names
    it does; GitHub matches them without regard to case)."""
    known = {n.upper() for n in configured}
    out = []
    for ref in refs:
        names = tuple(n for n in ref.names if n.upper() not in known)
        if names:
            reason = "is not configured in the CI"
            out.append(SecretEvidence(names, ref.where, ref.template, reason))
    return out


def find_missing_secrets(
    workflow_text: str,
    workflow_path: str,
    job: str | None,
    step: str | None,
    log_lines: Iterable[str],
    configured: Collection[str] | None = None,
) -> list[SecretEvidence]:
    """What the workflow and the job's log together say of the failing step's secrets.

    ``configured``: the names of the secrets the CI sets, when it is known (the local CI);
    a secret of the failing step outside them is evidence even when the log shows no
    section for the step.
    """
    refs = workflow_refs(workflow_text, workflow_path, job, step)
    if not refs:
        return []
    if is_gitlab(workflow_path):
        found = gitlab_evidence(refs, log_lines)
    else:
        found = github_evidence(refs, log_lines)
    if not found and configured is not None and step:
        found = unconfigured(
            workflow_refs(workflow_text, workflow_path, job, step, strict=True), configured
        )
    return found


# --------------------------------------------------------------------------- the failure
def _unique_names(evidence: Iterable[SecretEvidence]) -> list[str]:
    return list(dict.fromkeys(n for e in evidence for n in e.names))


def apply_secret_evidence(failure: Failure, evidence: list[SecretEvidence]) -> Failure:
    """``failure`` as a missing secret when there is evidence (a new object; the original
    category stays in its notes); unchanged without evidence or when it already asks a
    person for a secret or a permission."""
    if not evidence:
        return failure
    names = _unique_names(evidence)
    captures = {
        **failure.captures,
        "secret": names[0],
        "secrets": ",".join(names),
        "secret_line": evidence[0].where,
    }
    if failure.recipe and failure.recipe.startswith("escalate"):
        kept = {k: v for k, v in captures.items() if k not in failure.captures}
        return dataclasses.replace(failure, captures={**failure.captures, **kept})
    was = (
        f"{failure.category.value} (pattern {failure.pattern or 'none'}, "
        f"recipe {failure.recipe or 'none'})"
    )
    lines = [e.log_line for e in evidence if e.log_line]
    return dataclasses.replace(
        failure,
        category=FailureCategory.CONFIGURATION,
        confidence=max(failure.confidence, CONFIDENCE),
        recipe=RECIPE,
        pattern=PATTERN,
        message=f"Secret {', '.join(names)} is missing or empty: a person must add it",
        evidence=list(dict.fromkeys([*lines, *failure.evidence])),
        captures=captures,
        notes=[
            *failure.notes,
            f"classified from the log as {was}; the workflow and the log show a missing secret",
            *(e.describe() for e in evidence),
            "only a person can fix this (secret or permission)",
        ],
    )


def apply_to_analysis(analysis: LogAnalysis, evidence: list[SecretEvidence]) -> LogAnalysis:
    """The log's analysis with the verdict of the evidence (as :func:`apply_secret_evidence`
    gives a failure): what ``cicd analyze`` prints when it is given the workflow too. What
    the log alone said stays in the capture ``classified_from_log``."""
    if not evidence or (analysis.recipe or "").startswith("escalate"):
        return analysis
    names = _unique_names(evidence)
    was = f"{analysis.category.value}/{analysis.pattern or 'none'}/{analysis.recipe or 'none'}"
    lines = [e.log_line for e in evidence if e.log_line]
    return dataclasses.replace(
        analysis,
        category=FailureCategory.CONFIGURATION,
        confidence=max(analysis.confidence, CONFIDENCE),
        recipe=RECIPE,
        pattern=PATTERN,
        message=f"Secret {', '.join(names)} is missing or empty: a person must add it",
        needs_person=True,
        evidence=list(dict.fromkeys([*lines, *analysis.evidence])),
        captures={
            **analysis.captures,
            "secret": names[0],
            "secrets": ",".join(names),
            "secret_line": evidence[0].where,
            "classified_from_log": was,
        },
    )
