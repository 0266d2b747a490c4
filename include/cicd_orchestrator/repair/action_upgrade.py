"""Deprecated or removed GitHub Actions versions move to the supported major version.

The supported majors are a curated table (:data:`SUPPORTED_ACTIONS`); only the version of
the ``uses:`` line changes, the rest of the workflow stays byte-for-byte as it was (the text
is edited line by line, never re-dumped). An action name one typo away from a known action
is corrected too, with low confidence.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    failure_lines,
    pending_change,
)
from cicd_orchestrator.repair.workflows import workflow_files


@dataclass(frozen=True)
class ActionMajor:
    """The supported major version of an action; majors below ``deprecated_below`` are moved."""

    supported: int
    deprecated_below: int | None = None
    companions: tuple[str, ...] = ()
    note: str = ""

    @property
    def floor(self) -> int:
        return self.deprecated_below or self.supported


_ARTIFACT_NOTE = (
    "artifacts of v4 are immutable: two uploads of the same name in one run fail, and "
    "upload-artifact and download-artifact must both be v4"
)

SUPPORTED_ACTIONS: dict[str, ActionMajor] = {
    "actions/checkout": ActionMajor(4),
    "actions/upload-artifact": ActionMajor(4, None, ("actions/download-artifact",), _ARTIFACT_NOTE),
    "actions/download-artifact": ActionMajor(4, None, ("actions/upload-artifact",), _ARTIFACT_NOTE),
    "actions/cache": ActionMajor(4),
    "actions/setup-python": ActionMajor(5),
    "actions/setup-node": ActionMajor(4),
    "actions/setup-java": ActionMajor(4),
    "actions/setup-go": ActionMajor(5),
    "actions/setup-dotnet": ActionMajor(4),
    "actions/github-script": ActionMajor(7),
    "actions/upload-pages-artifact": ActionMajor(3),
    "actions/configure-pages": ActionMajor(5),
    "actions/deploy-pages": ActionMajor(4),
    "actions/labeler": ActionMajor(5),
    "actions/stale": ActionMajor(9),
    "actions/dependency-review-action": ActionMajor(4),
    "github/codeql-action": ActionMajor(3),
    "docker/setup-buildx-action": ActionMajor(3),
    "docker/setup-qemu-action": ActionMajor(3),
    "docker/login-action": ActionMajor(3),
    "docker/metadata-action": ActionMajor(5),
    "docker/build-push-action": ActionMajor(6, deprecated_below=5),
}

_USES = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?uses:\s*[\"']?)(?P<action>[\w.-]+/[\w.-]+)(?P<sub>/[\w./-]*)?"
    r"@(?P<ref>[\w.-]+)"
)
_ACTION_REF = re.compile(r"`?(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]*)?(?:@|: ?)(?P<ref>v[\w.]+)")
_MAJOR = re.compile(r"^v(?P<major>\d+)(?:\.\d+)*$")


def _major(ref: str) -> int | None:
    m = _MAJOR.match(ref)
    return int(m.group("major")) if m else None


def upgrade_line(line: str, targets: set[str] | None) -> tuple[str, str | None]:
    """``line`` with a deprecated action version moved to the supported major, and what moved."""
    m = _USES.match(line)
    if not m:
        return line, None
    action, ref = m.group("action"), m.group("ref")
    known = SUPPORTED_ACTIONS.get(action)
    if known is None or (targets is not None and action not in targets):
        return line, None
    major = _major(ref)
    if major is None or major >= known.floor:
        return line, None
    new = f"v{known.supported}"
    return line[: m.start("ref")] + new + line[m.end("ref") :], f"{action} {ref} -> {new}"


def _named_in_log(failure: Failure) -> list[tuple[str, str]]:
    """The actions (with their version) the failure's log lines name."""
    named: list[tuple[str, str]] = []
    for line in failure_lines([failure]):
        for m in _ACTION_REF.finditer(line):
            if "/" in m.group("action") and not m.group("action").startswith("http"):
                named.append((m.group("action"), m.group("ref")))
    return named


def _targets(failures: list[Failure]) -> tuple[set[str], list[tuple[str, str]]]:
    """Actions the failures name (with their version): from captures, then evidence."""
    named: list[tuple[str, str]] = []
    for failure in failures:
        action = failure.captures.get("action")
        if action:
            named.append((action, failure.captures.get("version", "")))
        else:
            named.extend(_named_in_log(failure))
    actions = {a for a, _ in named}
    for action in list(actions):
        known = SUPPORTED_ACTIONS.get(action)
        actions.update(known.companions if known else ())
    return actions, named


def _rename_line(line: str, action: str, right: str) -> tuple[str, str] | None:
    """``line`` with the unknown ``action`` renamed to the known ``right`` (and its ref)."""
    m = _USES.match(line)
    if not m or m.group("action") != action:
        return None
    known = SUPPORTED_ACTIONS[right]
    major = _major(m.group("ref"))
    ok = major is not None and known.floor <= major <= known.supported
    ref = m.group("ref") if ok else f"v{known.supported}"
    new = f"{right}{m.group('sub') or ''}@{ref}"
    return line[: m.start("action")] + new + line[m.end("ref") :], f"{right}@{ref}"


def _rename_in(root: Path, rel: str, action: str, right: str) -> list[str]:
    """Renames ``action`` to ``right`` in one workflow file; what was renamed."""
    lines = files.read_lines(root, rel)
    renamed: list[str] = []
    for i, line in enumerate(lines):
        done = _rename_line(line, action, right)
        if done is not None:
            lines[i] = done[0]
            renamed.append(f"{rel}:{i + 1}: {action} -> {done[1]}")
    if renamed:
        files.write_lines(root, rel, lines)
    return renamed


class ActionUpgradeFixer(WorkspaceFixer):
    """Deprecated or removed action majors -> the supported major; nothing else changes."""

    name = "upgrade-action"
    categories = frozenset({FailureCategory.CONFIGURATION})
    recipes = frozenset({"upgrade-action"})

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        targets, named = _targets(failures)
        moved = self._upgrade(ws.path, targets or None)
        renamed = [] if moved else self._rename_unknown(ws.path, named, result)
        for action, version in named:
            if action not in SUPPORTED_ACTIONS and not renamed:
                result.unrepaired.append(
                    f"{action}@{version or '?'}: no supported major version is known for "
                    "this action; upgrade it by hand"
                )
        if not moved and not renamed and not result.unrepaired:
            result.unrepaired.append(
                "no deprecated action version found in the workflows"
                + (f" for {', '.join(sorted(targets))}" if targets else "")
            )
        self._propose(ws, failures, moved, renamed, targets, result)

    @staticmethod
    def _upgrade(root: Path, targets: set[str] | None) -> list[str]:
        moved: list[str] = []
        for rel in workflow_files(root):
            lines = files.read_lines(root, rel)
            changed = False
            for i, line in enumerate(lines):
                new, what = upgrade_line(line, targets)
                if what:
                    lines[i] = new
                    moved.append(f"{rel}:{i + 1}: {what}")
                    changed = True
            if changed:
                files.write_lines(root, rel, lines)
        return moved

    @staticmethod
    def _rename_unknown(root: Path, named: list[tuple[str, str]], result: FixerResult) -> list[str]:
        """An action name that does not exist but is one typo from a known one."""
        renamed: list[str] = []
        for action, _ in named:
            if action in SUPPORTED_ACTIONS:
                continue
            close = difflib.get_close_matches(action, list(SUPPORTED_ACTIONS), n=2, cutoff=0.85)
            if len(close) != 1:
                continue
            for rel in workflow_files(root):
                renamed += _rename_in(root, rel, action, close[0])
        return renamed

    def _propose(
        self,
        ws: Workspace,
        failures: list[Failure],
        moved: list[str],
        renamed: list[str],
        targets: set[str],
        result: FixerResult,
    ) -> None:
        change = pending_change(ws)
        if change is None:
            return
        notes = sorted(
            {SUPPORTED_ACTIONS[a].note for a in targets if a in SUPPORTED_ACTIONS} - {""}
        )
        what = "; ".join((moved + renamed)[:10])
        result.repairs.append(
            change_repair(
                self.name,
                FailureCategory.CONFIGURATION,
                change,
                failures,
                description=f"move deprecated action versions to the supported major: {what}",
                commit_message="Move deprecated GitHub Actions to their supported major version",
                confidence=0.9 if moved else 0.5,
                notes=[*moved, *renamed, *notes],
            )
        )
