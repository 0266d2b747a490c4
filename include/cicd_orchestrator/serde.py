"""Plain-JSON conversion of the package's dataclasses and enums.

Tasks exchange results through XCom and keep session state in Variables; both hold JSON.
``to_json_obj`` turns a dataclass tree into JSON-able values and ``from_json_obj`` builds it
back from its type hints, so every model needs no hand-written (de)serialiser.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_json_obj(value: Any) -> Any:
    """Convert dataclasses, enums, tuples and mappings into JSON-able values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_obj(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_obj(v) for v in value]
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def from_json_obj(cls: type[T], data: Any) -> T:
    """Build ``cls`` (a dataclass) from what ``to_json_obj`` produced; unknown keys are ignored."""
    return typing.cast(T, _convert(cls, data))


#: types whose JSON value is already the value (no conversion, the fast path)
_PLAIN = frozenset({str, int, float, bool, Any})


def _convert(tp: Any, data: Any) -> Any:
    if data is None or tp in _PLAIN:
        return data
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(members[0], data) if len(members) == 1 else data
    if origin in (list, tuple, set, frozenset):
        inner = (typing.get_args(tp) or (Any,))[0]
        items = [_convert(inner, v) for v in data]
        return items if origin is list else origin(items)
    if origin is dict:
        _, vt = typing.get_args(tp) or (str, Any)
        return {k: _convert(vt, v) for k, v in data.items()}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {
            f.name: _convert(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in data
        }
        return tp(**kwargs)
    return data
