"""A minimal text edit of ``package.json``: one entry added to a dependencies object, the
rest of the file (indentation, key order, line endings) kept byte for byte."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")


class PackageJsonError(ValueError):
    """The file is not a JSON object that can be edited safely."""


@dataclass
class Member:
    key: str
    key_start: int
    value_start: int
    value_end: int
    value: Any


def _skip(text: str, i: int) -> int:
    m = _WS.match(text, i)
    return m.end() if m else i


def members(text: str, start: int) -> tuple[list[Member], int]:
    """The members of the JSON object opening at ``start`` and the index of its ``}``."""
    if text[start : start + 1] != "{":
        raise PackageJsonError("not a JSON object")
    found: list[Member] = []
    i = _skip(text, start + 1)
    if text[i : i + 1] == "}":
        return found, i
    while True:
        key_start = i
        try:
            key, after = _DECODER.raw_decode(text, i)
            i = _skip(text, after)
            if text[i : i + 1] != ":" or not isinstance(key, str):
                raise PackageJsonError(f"a key without a value at character {i}")
            value_start = _skip(text, i + 1)
            value, value_end = _DECODER.raw_decode(text, value_start)
        except json.JSONDecodeError as exc:
            raise PackageJsonError(f"not valid JSON: {exc}") from exc
        found.append(Member(key, key_start, value_start, value_end, value))
        i = _skip(text, value_end)
        if text[i : i + 1] == "}":
            return found, i
        if text[i : i + 1] != ",":
            raise PackageJsonError(f"not valid JSON at character {i}")
        i = _skip(text, i + 1)


def _line_indent(text: str, index: int) -> str:
    begin = text.rfind("\n", 0, index) + 1
    return re.match(r"[ \t]*", text[begin:]).group(0)  # type: ignore[union-attr]


def _unit(text: str) -> str:
    """The file's indentation unit (two spaces when it cannot be told)."""
    m = re.search(r"\n([ \t]+)\S", text)
    return m.group(1) if m else "  "


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _entry(key: str, value: str) -> str:
    return f"{json.dumps(key)}: {json.dumps(value)}"


def add_dependency(text: str, section: str, name: str, version: str) -> str:
    """``text`` with ``"name": "version"`` in the object ``section`` (created at the end of
    the file's top object when missing); sorted in when the object's keys are sorted."""
    top_start = _skip(text, 0)
    top, top_end = members(text, top_start)
    nl, unit = _newline(text), _unit(text)
    current = next((m for m in top if m.key == section), None)
    if current is None:
        body = f"{unit}{json.dumps(section)}: {{{nl}{unit}{unit}{_entry(name, version)}{nl}{unit}}}"
        if not top:
            new = text[: top_start + 1] + nl + body + nl + text[top_end:]
        else:
            last = top[-1].value_end
            new = text[:last] + "," + nl + body + text[last:]
    else:
        new = _insert(text, current, name, version, nl, unit)
    check = json.loads(new)
    if check.get(section, {}).get(name) != version:
        raise PackageJsonError(f"the edit of {section} did not take")
    return new


def _insert(text: str, obj: Member, name: str, version: str, nl: str, unit: str) -> str:
    if not isinstance(obj.value, dict):
        raise PackageJsonError(f"{obj.key} is not an object")
    inner, close = members(text, obj.value_start)
    entry = _entry(name, version)
    if not inner:
        outer = _line_indent(text, obj.key_start)
        return text[: obj.value_start] + "{" + nl + outer + unit + entry + nl + outer + text[close:]
    keys = [m.key for m in inner]
    at = len(inner)
    if keys == sorted(keys):
        at = next((i for i, k in enumerate(keys) if k > name), len(inner))
    one_line = "\n" not in text[obj.value_start : close]
    if one_line:
        if at < len(inner):
            pos = inner[at].key_start
            return text[:pos] + entry + ", " + text[pos:]
        pos = inner[-1].value_end
        return text[:pos] + ", " + entry + text[pos:]
    indent = _line_indent(text, inner[0].key_start)
    if at < len(inner):
        pos = inner[at].key_start
        return text[:pos] + entry + "," + nl + indent + text[pos:]
    pos = inner[-1].value_end
    return text[:pos] + "," + nl + indent + entry + text[pos:]
