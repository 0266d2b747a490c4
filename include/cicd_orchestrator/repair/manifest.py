"""Deployment repairs: safe, mechanical fixes of YAML manifests (tab indentation, trailing
whitespace); duplicated keys and schema problems are reported with their location."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import yaml

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    Change,
    RepairContext,
    WorkspaceFixer,
    change_repair,
    evidence_of,
)

log = logging.getLogger(__name__)

_YAML = (".yaml", ".yml")


def indent_unit(lines: list[str]) -> int:
    """The file's usual indentation step (2 when it cannot be told)."""
    steps: Counter[int] = Counter()
    previous = 0
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("\t"):
            continue
        width = len(line) - len(line.lstrip(" "))
        if width > previous:
            steps[width - previous] += 1
        previous = width
    return steps.most_common(1)[0][0] if steps else 2


def fix_whitespace(text: str) -> str:
    """Leading tabs become the file's indentation unit; trailing whitespace goes."""
    lines = text.split("\n")
    unit = indent_unit(lines)
    out = []
    for line in lines:
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in lead:
            width = sum(unit if ch == "\t" else 1 for ch in lead)
            line = " " * width + line[len(lead) :]
        out.append(line.rstrip(" \t"))
    return "\n".join(out)


def parse_error(text: str) -> str | None:
    try:
        list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        return str(exc).replace("\n", " ")
    return None


def duplicate_keys(text: str) -> list[str]:
    """Keys repeated in one mapping, as 'line N: key' (YAML loaders keep the last silently)."""
    found: list[str] = []

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                found.append(f"line {key_node.start_mark.line + 1}: duplicated key {key!r}")
            seen.add(key)
        return loader.construct_mapping(node)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct)
    try:
        list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError:
        return []
    return found


class ManifestFixer(WorkspaceFixer):
    """Repairs the whitespace of manifests that do not parse; reports what it cannot fix."""

    name = "manifest"
    categories = frozenset({FailureCategory.DEPLOYMENT})

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        fixed: list[str] = []
        for path in self._candidates(ws.path, set(ctx.changed_files)):
            rel = str(path.relative_to(ws.path))
            if self._repair_file(ws.path, rel, result):
                fixed.append(rel)
        patch = ws.diff()
        if patch:
            result.repairs.append(
                change_repair(
                    self.name,
                    FailureCategory.DEPLOYMENT,
                    Change(patch, fixed),
                    failures,
                    description="replace tab indentation and trailing whitespace in "
                    f"{', '.join(fixed)}",
                    commit_message="Fix the whitespace of manifests that do not parse",
                    confidence=0.9,
                    evidence=evidence_of(failures, 2),
                )
            )

    @staticmethod
    def _repair_file(root: Path, rel: str, result: FixerResult) -> bool:
        """Reports the file's duplicated keys; repairs its whitespace when that makes it
        parse (True), else reports the parse error."""
        text = files.read_text(root, rel, errors="replace")
        error = parse_error(text)
        for dup in duplicate_keys(text):
            result.unrepaired.append(f"{rel} {dup}")
        if error is None:
            return False
        repaired = fix_whitespace(text)
        if repaired != text and parse_error(repaired) is None:
            files.write_text(root, rel, repaired)
            return True
        result.unrepaired.append(f"{rel}: does not parse: {error[:300]}")
        return False

    @staticmethod
    def _candidates(root: Path, changed: set[str]) -> list[Path]:
        manifests = [
            folder / name
            for folder, _, names in files.walk(root, (".git", ".github"), _is_yaml)
            for name in names
            if _is_yaml(name)
        ]
        recent = [p for p in manifests if str(p.relative_to(root)) in changed]
        return recent or manifests


def _is_yaml(name: str) -> bool:
    return name.endswith(_YAML)
