"""Deployment repairs: safe, mechanical fixes of YAML manifests (tab indentation, trailing
whitespace); duplicated keys and schema problems are reported with their location."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path

import yaml

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import FixerResult, Repair
from cicd_orchestrator.repair.base import Fixer, RepairContext

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
        lead = re.match(r"^[ \t]*", line).group(0)  # type: ignore[union-attr]
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
            seen.add(key)  # type: ignore[arg-type]
        return loader.construct_mapping(node)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct)
    try:
        list(yaml.load_all(text, Loader=Loader))
    except yaml.YAMLError:
        return []
    return found


class ManifestFixer(Fixer):
    """Repairs the whitespace of manifests that do not parse; reports what it cannot fix."""

    name = "manifest"
    categories = frozenset({FailureCategory.DEPLOYMENT})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or "manifest" not in ctx.config.enabled_fixers:
            return result
        changed = set(ctx.context.changed_files) if ctx.context else set()
        with ctx.workspace() as ws:
            fixed: list[str] = []
            for path in self._candidates(ws.path, changed):
                rel = str(path.relative_to(ws.path))
                text = path.read_text(errors="replace")
                error = parse_error(text)
                for dup in duplicate_keys(text):
                    result.unrepaired.append(f"{rel} {dup}")
                if error is None:
                    continue
                repaired = fix_whitespace(text)
                if repaired != text and parse_error(repaired) is None:
                    path.write_text(repaired)
                    fixed.append(rel)
                else:
                    result.unrepaired.append(f"{rel}: does not parse: {error[:300]}")
            patch = ws.diff()
        if patch:
            result.repairs.append(
                Repair(
                    fixer=self.name,
                    kind=RepairKind.CHANGE,
                    category=FailureCategory.DEPLOYMENT,
                    description=f"replace tab indentation and trailing whitespace in "
                    f"{', '.join(fixed)}",
                    jobs=sorted({f.job for f in relevant}),
                    patch=patch,
                    files=fixed,
                    commit_message="Fix the whitespace of manifests that do not parse",
                    confidence=0.9,
                    evidence=[e for f in relevant for e in f.evidence[:2]],
                )
            )
        result.seconds = round(time.monotonic() - start, 3)
        return result

    @staticmethod
    def _candidates(root: Path, changed: set[str]) -> list[Path]:
        files = [
            p
            for p in root.rglob("*")
            if p.suffix in _YAML
            and p.is_file()
            and ".git" not in p.parts
            and ".github" not in p.parts
        ]
        recent = [p for p in files if str(p.relative_to(root)) in changed]
        return recent or files
