"""Deployment checks: a light structural schema check of Kubernetes manifests.

The schema is data (``k8s_schema.yaml`` beside this module, loaded as ``SCHEMA``): the
fields every object needs, the fields of the common kinds and their types, and the selectors
that must match their pod template's labels.
Each problem is reported with the file and the offending path
(``deploy/app.yaml: spec.template.spec.containers[0].image: missing``); only safe mechanical
repairs become a change: a quoted integer where an integer is required (``replicas: "3"``)
and an unquoted number or boolean where a string is required (ConfigMap data, labels, env
values), both as edits of that one scalar so the rest of the file stays byte-identical.
No cluster and no network are involved.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import (
    RepairContext,
    WorkspaceFixer,
    change_repair,
    evidence_of,
    pending_change,
)

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().with_name("k8s_schema.yaml")
SCHEMA: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))

_TAG = "tag:yaml.org,2002:"
_YAML = (".yaml", ".yml")
_SKIP_DIRS = frozenset({".git", ".github", "node_modules", ".venv", "venv", "charts"})
_QUANTITY = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "a boolean",
    "int-or-string": "an integer or a string",
    "quantity": "a quantity (e.g. 500m, 128Mi)",
    "map": "a mapping",
    "list": "a list",
}


@dataclass
class Problem:
    """One schema problem: where, what, and the one-scalar edit that fixes it (if safe)."""

    path: str
    message: str
    line: int
    fix: tuple[int, int, str] | None = None


# --------------------------------------------------------------------------- checking
def _spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": spec} if isinstance(spec, str) else spec


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        kind = node.tag.removeprefix(_TAG)
        return {"str": "string", "int": "integer", "bool": "boolean"}.get(kind, kind)
    return "mapping" if isinstance(node, yaml.MappingNode) else "list"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return f"the {_kind(node)} {node.value!r}" if node.value else "empty"
    return f"a {_kind(node)}"


def _tag_fits(kind: str, tag: str, value: str) -> bool:
    """Whether a scalar of YAML tag ``tag`` is a value of the schema type ``kind``."""
    if kind in ("string", "int-or-string") and tag == "str":
        return True
    if kind in ("integer", "int-or-string") and tag == "int":
        return True
    if kind == "boolean" and tag == "bool":
        return True
    return kind == "quantity" and (tag in ("int", "float") or bool(_QUANTITY.match(value)))


def _scalar_fix(
    node: yaml.ScalarNode, kind: str, tag: str, text: str
) -> tuple[int, int, str] | None:
    """The one-scalar edit that gives ``node`` the type ``kind`` (None when none is safe)."""
    start, end = node.start_mark.index, node.end_mark.index
    if kind == "integer" and tag == "str" and node.style in ('"', "'"):
        return (start, end, str(int(node.value))) if _INTEGER.match(node.value) else None
    if kind == "string" and tag in ("int", "float", "bool") and node.style is None:
        source = text[start:end]
        if '"' not in source and "\\" not in source and "\n" not in source:
            return start, end, f'"{source}"'
    return None


def _scalar_problem(node: yaml.Node, kind: str, path: str, text: str) -> Problem | None:
    """A problem with a scalar of type ``kind`` (None when it is fine)."""
    if kind == "any":
        return None
    wrong = Problem(path, f"must be {_TYPE_WORDS[kind]}, not {_describe(node)}", _line(node))
    if not isinstance(node, yaml.ScalarNode):
        return wrong
    tag = node.tag.removeprefix(_TAG)
    if _tag_fits(kind, tag, node.value):
        return None
    wrong.fix = _scalar_fix(node, kind, tag, text)
    if wrong.fix is not None and kind == "integer":
        wrong.message = f"must be an integer, not the quoted string {node.value!r}"
    return wrong


def _enum_problem(node: yaml.ScalarNode, allowed: list[str], path: str) -> Problem | None:
    if node.value in allowed:
        return None
    return Problem(path, f"must be one of {', '.join(allowed)}, not {node.value!r}", _line(node))


def _mapping(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    return {str(k.value): v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Checker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.problems: list[Problem] = []

    def value(self, node: yaml.Node, spec: str | dict[str, Any], path: str) -> None:
        spec = _spec(spec)
        kind = spec["type"]
        if kind in SCHEMA["types"]:
            self.fields(node, SCHEMA["types"][kind], path)
        elif kind == "map":
            self.map(node, spec, path)
        elif kind == "list":
            self.list(node, spec, path)
        else:
            problem = _scalar_problem(node, kind, path, self.text)
            enum = spec.get("enum")
            if problem is None and enum and isinstance(node, yaml.ScalarNode):
                problem = _enum_problem(node, enum, path)
            if problem is not None:
                self.problems.append(problem)

    def fields(self, node: yaml.Node, fields: dict[str, Any], path: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            what = "a mapping" if path else "a mapping (a Kubernetes object)"
            self.problems.append(
                Problem(path, f"must be {what}, not {_describe(node)}", _line(node))
            )
            return
        present = _mapping(node)
        for name, field_spec in fields.items():
            spec = _spec(field_spec)
            child = present.get(name)
            if child is None or (isinstance(child, yaml.ScalarNode) and child.tag == _TAG + "null"):
                if spec.get("required"):
                    self.problems.append(Problem(_join(path, name), "missing", _line(node)))
                continue
            self.value(child, spec, _join(path, name))

    def map(self, node: yaml.Node, spec: dict[str, Any], path: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            self.problems.append(
                Problem(path, f"must be a mapping, not {_describe(node)}", _line(node))
            )
            return
        for key, child in _mapping(node).items():
            self.value(child, spec.get("values", "any"), _join(path, key))

    def list(self, node: yaml.Node, spec: dict[str, Any], path: str) -> None:
        if not isinstance(node, yaml.SequenceNode):
            self.problems.append(
                Problem(path, f"must be a list, not {_describe(node)}", _line(node))
            )
            return
        if len(node.value) < spec.get("min_items", 0):
            self.problems.append(
                Problem(path, f"must have at least {spec['min_items']} item(s)", _line(node))
            )
        for i, child in enumerate(node.value):
            self.value(child, spec.get("items", "any"), f"{path}[{i}]")


def _at(node: yaml.Node, dotted: str) -> yaml.Node | None:
    for key in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return None
        child = _mapping(node).get(key)
        if child is None:
            return None
        node = child
    return node


def _selector_problems(doc: yaml.MappingNode, selector: str, labels: str) -> list[Problem]:
    """The selector's labels that the pod template does not carry (with the same value)."""
    sel, tpl = _at(doc, selector), _at(doc, labels)
    if not isinstance(sel, yaml.MappingNode) or not isinstance(tpl, yaml.MappingNode):
        return []
    have = {k: v.value for k, v in _mapping(tpl).items() if isinstance(v, yaml.ScalarNode)}
    out = []
    for key, node in _mapping(sel).items():
        want = node.value if isinstance(node, yaml.ScalarNode) else None
        if key not in have:
            message = f"missing (the selector {selector} requires {key}: {want})"
            out.append(Problem(_join(labels, key), message, _line(tpl)))
        elif have[key] != want:
            message = f"{have[key]!r} does not match the selector {selector}.{key} ({want!r})"
            out.append(Problem(_join(labels, key), message, _line(tpl)))
    return out


def _is_object(doc: yaml.Node) -> bool:
    """A Kubernetes object (or one missing a required top-level field), not a config file."""
    if not isinstance(doc, yaml.MappingNode):
        return False
    top = _mapping(doc)
    kind = top.get("kind")
    api = top.get("apiVersion")
    if kind is None and not (api is not None and "metadata" in top):
        return False
    skip = SCHEMA["not_objects"]
    if isinstance(kind, yaml.ScalarNode) and kind.value in skip["kinds"]:
        return False
    group = api.value.split("/")[0] if isinstance(api, yaml.ScalarNode) else ""
    return group not in skip["api_groups"]


def check_document(doc: yaml.Node, text: str) -> tuple[str, list[Problem]]:
    """(``Kind/name``, problems) of one document that is a Kubernetes object."""
    checker = _Checker(text)
    checker.fields(doc, SCHEMA["common"], "")
    if not isinstance(doc, yaml.MappingNode):
        return "?", checker.problems
    top = _mapping(doc)
    kind_node = top.get("kind")
    kind = kind_node.value if isinstance(kind_node, yaml.ScalarNode) else "?"
    name_node = _at(doc, "metadata.name")
    name = name_node.value if isinstance(name_node, yaml.ScalarNode) else "?"
    rules = SCHEMA["kinds"].get(kind) or {}
    checker.fields(doc, rules.get("fields") or {}, "")
    problems = checker.problems
    if rules.get("selector_matches"):
        problems += _selector_problems(doc, *rules["selector_matches"])
    return f"{kind}/{name}", problems


def check_text(text: str) -> list[tuple[str, Problem]]:
    """Every problem of the Kubernetes objects in a YAML text (empty when it does not parse)."""
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return []
    out: list[tuple[str, Problem]] = []
    for doc in docs:
        if doc is not None and _is_object(doc):
            label, problems = check_document(doc, text)
            out += [(label, p) for p in problems]
    return out


def apply_fixes(text: str, fixes: list[tuple[int, int, str]]) -> str:
    """The text with each one-scalar edit applied (from the end, so offsets hold)."""
    for start, end, replacement in sorted(set(fixes), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


# --------------------------------------------------------------------------- the fixer
def _is_yaml(name: str) -> bool:
    return name.endswith(_YAML)


def _yaml_files(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, _, names in files.walk(root, _SKIP_DIRS, _is_yaml):
        out += [folder / f for f in names if _is_yaml(f)]
    return out


def candidate_files(root: Path, changed: set[str], named: set[str]) -> list[Path]:
    """The YAML files the failure names or that changed; every manifest when none did."""
    files = _yaml_files(root)
    rel = {p: p.relative_to(root).as_posix() for p in files}
    wanted = [p for p in files if rel[p] in changed or any(n.endswith(rel[p]) for n in named if n)]
    return wanted or files


def _named_files(failures: list[Failure]) -> set[str]:
    names: set[str] = set()
    for failure in failures:
        names.add(failure.captures.get("file", ""))
        names.update(failure.captures.get("files", "").split(","))
    return {n.strip() for n in names if n.strip().endswith(_YAML)}


class KubernetesSchemaFixer(WorkspaceFixer):
    """Checks Kubernetes manifests against a light schema; fixes only mechanical type slips."""

    name = "k8s-schema"
    categories = frozenset({FailureCategory.DEPLOYMENT})

    def repair_in(
        self, ctx: RepairContext, ws: Workspace, failures: list[Failure], result: FixerResult
    ) -> None:
        fixed: list[str] = []
        for path in candidate_files(ws.path, set(ctx.changed_files), _named_files(failures)):
            rel = path.relative_to(ws.path).as_posix()
            fixed += self._check_file(ws.path, rel, result)
        change = pending_change(ws)
        if change is None:
            return
        result.repairs.append(
            change_repair(
                self.name,
                FailureCategory.DEPLOYMENT,
                change,
                failures,
                description="fix value types in Kubernetes manifests: " + "; ".join(fixed),
                commit_message="Fix value types in Kubernetes manifests\n\n"
                + "\n".join(f"- {line}" for line in fixed),
                confidence=0.75,
                evidence=evidence_of(failures, 2),
            )
        )

    @staticmethod
    def _check_file(root: Path, rel: str, result: FixerResult) -> list[str]:
        """Reports the file's problems, applies its safe fixes; the fixes, described."""
        text = files.read_text(root, rel, errors="replace")
        if "{{" in text:  # a template (Helm, Jinja): not a manifest until rendered
            return []
        found = check_text(text)
        fixes = [p.fix for _, p in found if p.fix is not None]
        repaired = apply_fixes(text, fixes) if fixes else text
        if fixes and len(check_text(repaired)) >= len(found):
            log.warning("k8s: the fixes of %s did not help; not applied", rel)
            repaired = text
        fixed: list[str] = []
        for label, problem in found:
            line = f"{rel}: {problem.path}: {problem.message} ({label}, line {problem.line})"
            if problem.fix is not None and repaired != text:
                start, end, replacement = problem.fix
                fixed.append(f"{rel}: {problem.path}: {text[start:end]} -> {replacement}")
            else:
                result.unrepaired.append(line)
        if repaired != text:
            files.write_text(root, rel, repaired)
        return fixed
