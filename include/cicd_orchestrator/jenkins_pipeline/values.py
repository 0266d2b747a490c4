"""What a declarative pipeline's values are at run time: GString interpolation over the
environment, and whether a stage's ``when`` holds.

A double-quoted string interpolates ``$NAME``, ``${NAME}`` and ``${env.NAME}`` from the
stage's environment (``\\$`` is a literal ``$``); any other expression (``${params.X}``,
``${a + b}``) is Groovy code: :class:`NotReplayable`. ``when`` knows ``branch``,
``environment``, ``not``, ``allOf``, ``anyOf``, ``tag``, ``buildingTag`` and
``changeRequest``; ``expression { ... }`` is Groovy code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cicd_orchestrator.jenkins_pipeline.groovy import Call, Node, Raw, Str

_INTERPOLATION = re.compile(r"\\\$|\$\{\s*([^}]*?)\s*\}|\$([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
_NAME = re.compile(r"^(?:env\.)?([A-Za-z_]\w*)$")
_IGNORED_WHEN = frozenset({"beforeAgent", "beforeInput", "beforeOptions"})


class NotReplayable(Exception):
    """Something only Jenkins' Groovy runtime can compute."""


def interpolate(value: Any, env: Mapping[str, str]) -> str:
    """A value as a string: a literal, a GString interpolated from ``env``."""
    if isinstance(value, Str):
        if not value.gstring:
            return value.value
        return _INTERPOLATION.sub(lambda m: _one(m, env), value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Call):
        raise NotReplayable(f"{value.name}(...) needs Jenkins (credentials or a plugin)")
    if isinstance(value, Raw):
        raise NotReplayable(f"the value {value.text[:60]} is Groovy code")
    raise NotReplayable(f"the value {value!r} is not a literal")


def _one(m: re.Match[str], env: Mapping[str, str]) -> str:
    if m.group(0) == "\\$":
        return "$"
    expr = m.group(1) if m.group(1) is not None else m.group(2)
    name = _NAME.match(expr)
    if name is None or name.group(1) not in env:
        raise NotReplayable(f"${{{expr}}} is a Groovy expression the replay cannot compute")
    return env[name.group(1)]


def ant_match(name: str, pattern: str) -> bool:
    """Jenkins' branch glob (Ant style): ``*`` within a path segment, ``**`` across, ``?``."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.fullmatch("".join(out), name) is not None


def _compare(value: str, node: Node, env: Mapping[str, str]) -> bool:
    pattern_value = node.kwargs.get("pattern", node.arg())
    if pattern_value is None:
        return bool(value)
    pattern = interpolate(pattern_value, env)
    comparator = node.kwargs.get("comparator")
    how = interpolate(comparator, env) if comparator is not None else "GLOB"
    if how == "EQUALS":
        return value == pattern
    if how == "REGEXP":
        return re.fullmatch(pattern, value) is not None
    return ant_match(value, pattern)


def when_holds(when: Node, env: Mapping[str, str], notes: list[str]) -> bool:
    """Whether every condition of a ``when`` block holds (NotReplayable for Groovy)."""
    return all(_condition(c, env, notes) for c in when.body or [] if c.name not in _IGNORED_WHEN)


def _condition(node: Node, env: Mapping[str, str], notes: list[str]) -> bool:
    name = node.name
    if name == "branch":
        return _compare(env.get("BRANCH_NAME", ""), node, env)
    if name == "tag":
        return bool(env.get("TAG_NAME")) and _compare(env.get("TAG_NAME", ""), node, env)
    if name == "environment":
        key = interpolate(node.kwargs.get("name", Str("", False)), env)
        return env.get(key) == interpolate(node.kwargs.get("value", Str("", False)), env)
    if name in ("buildingTag", "changeRequest", "isRestartedRun", "triggeredBy"):
        return name == "buildingTag" and bool(env.get("TAG_NAME"))
    if name in ("changelog", "changeset"):
        notes.append(f"when: {name} cannot be known locally; counted as true")
        return True
    if name == "not":
        return not when_holds(node, env, notes)
    if name == "allOf":
        return when_holds(node, env, notes)
    if name == "anyOf":
        return any(_condition(c, env, notes) for c in node.body or [])
    if name == "expression":
        raise NotReplayable("when { expression { ... } } is Groovy code")
    raise NotReplayable(f"the when condition {name} is not replayed")
