"""Which events start a workflow: GitHub's filters of ``on.<event>``.

``push``
    ``branches``/``branches-ignore`` filter a pushed branch, ``tags``/``tags-ignore`` a pushed
    tag; a push of a branch does not start a workflow that filters tags only, and a push of a
    tag does not start one that filters branches only. ``paths``/``paths-ignore`` filter the
    files the push changed (not evaluated for tags); with branch and path filters both must
    pass.
``pull_request`` and ``pull_request_target``
    ``types`` (default ``opened``, ``synchronize``, ``reopened``) filter the activity,
    ``branches``/``branches-ignore`` the BASE branch of the pull request, ``paths`` and
    ``paths-ignore`` the files the pull request changes.
any other event (``workflow_dispatch``...)
    starts the workflow when it is listed.

Patterns follow GitHub's filter pattern rules: ``*`` matches anything but ``/``, ``**``
anything, ``**/`` zero or more folders, ``?`` and ``+`` quantify the preceding character,
``[...]`` is a character class, ``\\`` escapes, and a leading ``!`` turns a pattern into an
exclusion. The patterns are applied in order: the last one that matches a name decides.
Unknown values (no branch, no changed files) do not filter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator.exceptions import WorkflowError

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")
#: the activity types of a pull request that start a workflow whose trigger names none
DEFAULT_PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened")
#: filters that may not be used together for one event
_EXCLUSIVE = (("branches", "branches-ignore"), ("tags", "tags-ignore"), ("paths", "paths-ignore"))
_PATTERN_KEYS = ("branches", "branches-ignore", "tags", "tags-ignore", "paths", "paths-ignore")


@dataclass(frozen=True)
class TriggerEvent:
    """An event as the trigger filters see it (``None``: not known, does not filter)."""

    name: str
    branch: str | None = None  # the pushed branch, or the head branch of a pull request
    base_branch: str | None = None  # the base branch of a pull request
    tag: str | None = None  # the pushed tag
    changed_paths: Sequence[str] | None = None
    action: str | None = None  # the activity of a pull request: opened, synchronize...


def triggers(on: Mapping[str, Any], event: TriggerEvent) -> bool:
    """Whether ``event`` starts a workflow whose ``on`` is ``on``."""
    if event.name not in on:
        return False
    cfg = on.get(event.name)
    if not isinstance(cfg, Mapping):
        return True
    if event.name == "push":
        return _push_triggers(cfg, event)
    if event.name in PULL_REQUEST_EVENTS:
        return _pull_request_triggers(cfg, event)
    return True


def _push_triggers(cfg: Mapping[str, Any], event: TriggerEvent) -> bool:
    has_branches = "branches" in cfg or "branches-ignore" in cfg
    has_tags = "tags" in cfg or "tags-ignore" in cfg
    if event.tag is not None:  # path filters are not evaluated for tags
        if not has_tags:
            return not has_branches
        return _ref_passes(cfg, "tags", event.tag)
    if has_tags and not has_branches:
        return False
    if event.branch is not None and not _ref_passes(cfg, "branches", event.branch):
        return False
    return _paths_pass(cfg, event.changed_paths)


def _pull_request_triggers(cfg: Mapping[str, Any], event: TriggerEvent) -> bool:
    types = _patterns(cfg.get("types")) if "types" in cfg else list(DEFAULT_PULL_REQUEST_TYPES)
    if event.action is not None and event.action not in types:
        return False
    if event.base_branch is not None and not _ref_passes(cfg, "branches", event.base_branch):
        return False
    return _paths_pass(cfg, event.changed_paths)


def _ref_passes(cfg: Mapping[str, Any], key: str, name: str) -> bool:
    """A branch (``key`` = ``branches``) or a tag (``tags``) through the event's filters."""
    if key in cfg:
        return filter_names([name], _patterns(cfg.get(key)))
    if f"{key}-ignore" in cfg:
        return not filter_names([name], _patterns(cfg.get(f"{key}-ignore")))
    return True


def _paths_pass(cfg: Mapping[str, Any], changed: Sequence[str] | None) -> bool:
    """``paths``: some changed file is included; ``paths-ignore``: some changed file is not
    ignored. Unknown changes (``None``) pass, as GitHub runs the workflow when it cannot
    tell what changed."""
    if changed is None:
        return True
    if "paths" in cfg:
        return filter_names(changed, _patterns(cfg.get("paths")))
    if "paths-ignore" in cfg:
        ignore = _patterns(cfg.get("paths-ignore"))
        return any(not filter_names([p], ignore) for p in changed)
    return True


def filter_names(names: Iterable[str], patterns: Sequence[str]) -> bool:
    """Whether some name passes an ordered pattern list: a pattern includes the names it
    matches, a ``!pattern`` excludes them again; the last match decides."""
    for name in names:
        included = False
        for pattern in patterns:
            if pattern.startswith("!"):
                if included and glob_match(name, pattern[1:]):
                    included = False
            elif not included and glob_match(name, pattern):
                included = True
        if included:
            return True
    return False


def glob_match(name: str, pattern: str) -> bool:
    """Whether ``name`` matches one GitHub filter pattern (see the module docstring)."""
    return _compile(pattern).fullmatch(name) is not None


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.+/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char in "?+" and out and not out[-1].endswith(("*", "?", "+")):
            out.append(char)  # zero or one / one or more of the preceding character
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise WorkflowError(f"invalid pattern {pattern!r}: '[' is not closed")
            out.append(_char_class(pattern, pattern[i + 1 : end]))
            i = end + 1
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise WorkflowError(f"invalid pattern {pattern!r}: {exc}") from exc


def _char_class(pattern: str, body: str) -> str:
    """A ``[...]`` class: characters and ranges of ``a-z``, ``A-Z``, ``0-9``."""
    if not body or not re.fullmatch(r"(?:[A-Za-z0-9]-[A-Za-z0-9]|[^\]\\^])+", body):
        raise WorkflowError(f"invalid pattern {pattern!r}: bad character class [{body}]")
    return f"[{body}]"


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def check_trigger(event: str, cfg: Any) -> str | None:
    """What is wrong with the filters of ``on.<event>`` (None when nothing is)."""
    if not isinstance(cfg, Mapping):
        return None
    for first, second in _EXCLUSIVE:
        if first in cfg and second in cfg:
            return f"on.{event}: '{first}' and '{second}' cannot be used together"
    for key in _PATTERN_KEYS:
        value = cfg.get(key)
        if key in cfg and not _is_patterns(value):
            return f"on.{event}.{key} must be a pattern or a list of patterns"
        for pattern in _patterns(value):
            try:
                _compile(pattern[1:] if pattern.startswith("!") else pattern)
            except WorkflowError as exc:
                return f"on.{event}.{key}: {exc}"
    if "types" in cfg and not _is_patterns(cfg.get("types")):
        return f"on.{event}.types must be a name or a list of names"
    return None


def _is_patterns(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value)
    return isinstance(value, str)
