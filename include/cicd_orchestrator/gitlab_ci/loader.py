"""Reading GitLab CI files: YAML with GitLab's ``!reference`` tag, local ``include:`` files
merged as GitLab merges them, and the deep merge of ``extends``.

Only local files are included (``include: local:`` or a plain path); a remote, project,
template or component include cannot be read on this machine: it is left out with a note.
An invalid file raises :class:`InvalidWorkflowError` naming the file and the line.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from cicd_orchestrator.actions.workflow import InvalidWorkflowError

#: how many files one configuration may include (GitLab's limit is 150)
MAX_INCLUDES = 150
#: how deep ``extends`` may nest (GitLab's limit)
MAX_EXTENDS_DEPTH = 11
_NOT_LOCAL = ("remote", "project", "template", "component")

#: the text of a file of the commit, by path (WorkflowError when it is not there)
ReadFile = Callable[[str], str]


@dataclass(frozen=True)
class Reference:
    """``!reference [job, key, ...]``: a value of another part of the configuration."""

    path: tuple[str, ...]
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that knows GitLab's ``!reference`` tag."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> Reference:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!reference takes a list of keys", node.start_mark
        )
    keys = tuple(str(loader.construct_object(item)) for item in node.value)
    return Reference(keys, node.start_mark.line + 1)


_Loader.add_constructor("!reference", _reference)


def load(text: str, path: str) -> dict[str, Any]:
    """One GitLab CI file as a mapping (InvalidWorkflowError with its line when invalid)."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        parts = [p for p in (exc.context, exc.problem) if p]
        raise InvalidWorkflowError(path, line, ", ".join(parts) or str(exc)) from exc
    except yaml.YAMLError as exc:
        raise InvalidWorkflowError(path, None, str(exc)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidWorkflowError(path, 1, "the configuration must be a mapping of keys")
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """GitLab's merge: mappings merge key by key, anything else (lists too) is replaced."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- include
def _include_items(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _local_path(item: Any, notes: list[str]) -> str | None:
    """The local file an include item names, or None (with a note) when it is not local."""
    if isinstance(item, str):
        if re.match(r"^[a-z][a-z0-9+.-]*://", item):
            notes.append(f"include: remote {item} cannot replay locally; it is left out")
            return None
        return item
    if isinstance(item, dict):
        if "local" in item:
            return str(item["local"])
        kind = next((k for k in _NOT_LOCAL if k in item), None)
        if kind is not None:
            notes.append(
                f"include: {kind} {item[kind]} cannot replay locally "
                "(only local files are read); it is left out"
            )
            return None
    notes.append(f"include: {item!r} is not understood; it is left out")
    return None


def _expand_local(pattern: str, files: Callable[[], list[str]]) -> list[str]:
    path = pattern.lstrip("/")
    if not any(ch in path for ch in "*?["):
        return [path]
    return [f for f in files() if fnmatch.fnmatchcase(f, path)]


@dataclass
class _Includes:
    read: ReadFile
    files: Callable[[], list[str]]
    notes: list[str]
    seen: list[str]

    def resolve(self, data: dict[str, Any], path: str) -> dict[str, Any]:
        """``data`` with its includes merged under it (the including file wins)."""
        merged: dict[str, Any] = {}
        for item in _include_items(data.get("include")):
            local = _local_path(item, self.notes)
            if local is None:
                continue
            for name in _expand_local(local, self.files):
                merged = deep_merge(merged, self._one(name, path))
        own = {k: v for k, v in data.items() if k != "include"}
        return deep_merge(merged, own)

    def _one(self, name: str, parent: str) -> dict[str, Any]:
        if len(self.seen) >= MAX_INCLUDES:
            raise InvalidWorkflowError(parent, None, f"more than {MAX_INCLUDES} included files")
        if name in self.seen:
            raise InvalidWorkflowError(parent, None, f"include: {name} is included twice")
        self.seen.append(name)
        if not name.endswith((".yml", ".yaml")):
            raise InvalidWorkflowError(parent, None, f"include: {name} is not a YAML file")
        text = self.read(name)
        return self.resolve(load(text, name), name)


def resolve_includes(
    data: dict[str, Any],
    path: str,
    read: ReadFile,
    files: Callable[[], list[str]],
    notes: list[str],
) -> dict[str, Any]:
    """The configuration with its local includes merged in (notes say what was left out)."""
    return _Includes(read, files, notes, [path]).resolve(data, path)


# --------------------------------------------------------------------------- extends
def resolve_extends(config: Mapping[str, Any], name: str, path: str) -> dict[str, Any]:
    """The job ``name`` with what it extends merged under it (a cycle, an unknown parent or
    a chain deeper than GitLab allows raises InvalidWorkflowError)."""
    return _extend(config, name, path, ())


def _extend(
    config: Mapping[str, Any], name: str, path: str, chain: tuple[str, ...]
) -> dict[str, Any]:
    if name in chain:
        cycle = " -> ".join([*chain, name])
        raise InvalidWorkflowError(path, None, f"circular extends: {cycle}")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise InvalidWorkflowError(
            path, None, f"{chain[0]}: extends nests deeper than {MAX_EXTENDS_DEPTH} levels"
        )
    body = config.get(name)
    if not isinstance(body, dict):
        where = f"{chain[-1]}: extends " if chain else ""
        raise InvalidWorkflowError(path, None, f"{where}unknown job or template {name!r}")
    parents = body.get("extends")
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else list(parents or []):
        merged = deep_merge(merged, _extend(config, str(parent), path, (*chain, name)))
    return deep_merge(merged, {k: v for k, v in body.items() if k != "extends"})


# --------------------------------------------------------------------------- !reference
def resolve_references(value: Any, config: Mapping[str, Any], path: str, depth: int = 0) -> Any:
    """``value`` with each ``!reference`` replaced by what it names (nested up to 10)."""
    if depth > 10:
        raise InvalidWorkflowError(path, None, "!reference nests deeper than 10 levels")
    if isinstance(value, Reference):
        target: Any = config
        for key in value.path:
            if not isinstance(target, dict) or key not in target:
                joined = ", ".join(value.path)
                raise InvalidWorkflowError(path, value.line, f"!reference [{joined}] not found")
            target = target[key]
        return resolve_references(target, config, path, depth + 1)
    if isinstance(value, dict):
        return {k: resolve_references(v, config, path, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, config, path, depth) for v in value]
    return value
