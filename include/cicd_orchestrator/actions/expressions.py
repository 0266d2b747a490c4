"""GitHub Actions ``${{ }}`` expressions: a tokenizer, a recursive-descent parser, an evaluator.

Semantics follow GitHub's documentation: loose equality (operands of different types are
compared as numbers, strings case-insensitively), ``&&`` and ``||`` return one of their
operands, property access on a missing value gives ``null``, and the status functions
(``success()``, ``failure()``, ``always()``, ``cancelled()``) ask the caller.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator.exceptions import WorkflowError

log = logging.getLogger(__name__)

StatusFn = Callable[[str], bool]
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
_EXPR_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class ExpressionError(WorkflowError):
    """An expression does not parse or cannot be evaluated."""


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class Token:
    kind: str  # str, num, ident, op, punct, end
    value: Any
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>(?:0x[0-9a-fA-F]+)|(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)|(?:\.[0-9]+))
  | (?P<op>==|!=|<=|>=|&&|\|\||<|>|!)
  | (?P<punct>[()\[\].,*])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens; raises ExpressionError on an unexpected character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ExpressionError(f"unexpected character {text[pos]!r} at {pos} in {text!r}")
        kind = m.lastgroup or ""
        raw = m.group(0)
        if kind == "str":
            tokens.append(Token("str", raw[1:-1].replace("''", "'"), pos))
        elif kind == "num":
            tokens.append(Token("num", _parse_number_literal(raw), pos))
        elif kind != "ws":
            tokens.append(Token(kind, raw, pos))
        pos = m.end()
    tokens.append(Token("end", None, pos))
    return tokens


def _parse_number_literal(raw: str) -> float:
    if raw.lower().startswith("0x"):
        return float(int(raw, 16))
    return float(raw)


# --------------------------------------------------------------------------- AST
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Node:
    kind: str  # lit, ctx, prop, index, not, bin, and, or, call
    value: Any = None
    args: tuple[Node, ...] = ()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind: str, value: str | None = None) -> Token:
        tok = self.take()
        if tok.kind != kind or (value is not None and tok.value != value):
            want = value or kind
            raise ExpressionError(
                f"expected {want!r} at {tok.pos} in {self.text!r}, got {tok.value!r}"
            )
        return tok

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {tok.value!r} at {tok.pos} in {self.text!r}")
        return node

    def parse_or(self) -> Node:
        return self.parse_left_assoc(("||",), self.parse_and, "or")

    def parse_and(self) -> Node:
        return self.parse_left_assoc(("&&",), self.parse_cmp, "and")

    def parse_cmp(self) -> Node:
        return self.parse_left_assoc(_COMPARISONS, self.parse_unary)

    def parse_left_assoc(
        self, ops: tuple[str, ...], operand: Callable[[], Node], kind: str | None = None
    ) -> Node:
        """``operand (op operand)*``, grouped from the left: a node ``kind`` (``and``,
        ``or``) or, without one, a ``bin`` node that names its operator."""
        node = operand()
        while self.peek().kind == "op" and self.peek().value in ops:
            op = self.take().value
            right = operand()
            node = Node(kind, args=(node, right)) if kind else Node("bin", op, (node, right))
        return node

    def parse_unary(self) -> Node:
        if self.peek().kind == "op" and self.peek().value == "!":
            self.take()
            return Node("not", args=(self.parse_unary(),))
        return self.parse_postfix(self.parse_primary())

    def parse_primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("str", "num"):
            return Node("lit", tok.value)
        if tok.kind == "punct" and tok.value == "(":
            node = self.parse_or()
            self.expect("punct", ")")
            return node
        if tok.kind == "ident":
            return self.parse_identifier(tok)
        raise ExpressionError(f"unexpected {tok.value!r} at {tok.pos} in {self.text!r}")

    def parse_identifier(self, tok: Token) -> Node:
        name = str(tok.value)
        low = name.lower()
        if low in ("true", "false"):
            return Node("lit", low == "true")
        if low == "null":
            return Node("lit", None)
        if self.peek().kind == "punct" and self.peek().value == "(":
            self.take()
            args: list[Node] = []
            if not (self.peek().kind == "punct" and self.peek().value == ")"):
                args.append(self.parse_or())
                while self.peek().kind == "punct" and self.peek().value == ",":
                    self.take()
                    args.append(self.parse_or())
            self.expect("punct", ")")
            return Node("call", low, tuple(args))
        return Node("ctx", low)

    def parse_postfix(self, node: Node) -> Node:
        while self.peek().kind == "punct" and self.peek().value in (".", "["):
            if self.take().value == ".":
                tok = self.take()
                if tok.kind == "punct" and tok.value == "*":
                    node = Node("star", args=(node,))
                elif tok.kind == "ident":
                    node = Node("prop", str(tok.value), (node,))
                else:
                    raise ExpressionError(f"bad property at {tok.pos} in {self.text!r}")
            else:
                index = self.parse_or()
                self.expect("punct", "]")
                node = Node("index", args=(node, index))
        return node


def parse(text: str) -> Node:
    """Parse an expression (without the ``${{ }}``) into a tree."""
    return _Parser(text).parse()


def calls_status_function(node: Node) -> bool:
    """Whether the expression calls success(), failure(), always() or cancelled()."""
    if node.kind == "call" and node.value in STATUS_FUNCTIONS:
        return True
    return any(calls_status_function(a) for a in node.args)


# --------------------------------------------------------------------------- values
def truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, '', null and NaN are falsy."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return not (value == 0 or math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True


def to_number(value: Any) -> float:
    """Coerce a value to a number as GitHub does (NaN when it cannot)."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return _parse_number_literal(text)
        except ValueError:
            return math.nan
    return math.nan


def to_string(value: Any) -> str:
    """How a value is written into a string (interpolation, format, join)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    return to_json(value)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def _same_kind(a: Any, b: Any) -> bool:
    def kind(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            return "num"
        if isinstance(v, str):
            return "str"
        return "obj"

    return kind(a) == kind(b)


def loose_equal(a: Any, b: Any) -> bool:
    """``==``: strings case-insensitively, objects by identity, other mixes as numbers."""
    if _same_kind(a, b):
        if isinstance(a, str):
            return bool(a.casefold() == b.casefold())
        if isinstance(a, (dict, list)):
            return a is b
        return bool(a == b)
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return to_number(a) == to_number(b)


def _compare(a: Any, b: Any, op: str) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a.casefold()
        y: Any = b.casefold()
    else:
        x, y = to_number(a), to_number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


# --------------------------------------------------------------------------- functions
def _fn_contains(search: Any, item: Any) -> bool:
    if isinstance(search, list):
        return any(loose_equal(v, item) for v in search)
    return to_string(item).casefold() in to_string(search).casefold()


def _fn_format(template: Any, *args: Any) -> str:
    text = to_string(template)
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            out.append(ch)
            i += 2
            continue
        if ch == "{":
            end = text.find("}", i)
            key = text[i + 1 : end] if end > 0 else ""
            if not key.isdigit() or int(key) >= len(args):
                raise ExpressionError(f"format: bad placeholder in {text!r}")
            out.append(to_string(args[int(key)]))
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _fn_join(value: Any, sep: Any = ",") -> str:
    if isinstance(value, list):
        return to_string(sep).join(to_string(v) for v in value)
    return to_string(value)


def _fn_from_json(value: Any) -> Any:
    try:
        return json.loads(to_string(value))
    except json.JSONDecodeError as exc:
        raise ExpressionError(f"fromJSON: invalid JSON: {exc}") from exc


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": _fn_contains,
    "startswith": lambda s, p: to_string(s).casefold().startswith(to_string(p).casefold()),
    "endswith": lambda s, p: to_string(s).casefold().endswith(to_string(p).casefold()),
    "format": _fn_format,
    "join": _fn_join,
    "tojson": to_json,
    "fromjson": _fn_from_json,
    "hashfiles": lambda *_a: "",
}


# --------------------------------------------------------------------------- evaluation
def _lookup(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        if isinstance(key, str):
            if key in container:
                return container[key]
            low = key.casefold()
            for k, v in container.items():
                if isinstance(k, str) and k.casefold() == low:
                    return v
        return None
    if isinstance(container, list):
        n = to_number(key)
        if not math.isnan(n) and n.is_integer() and 0 <= int(n) < len(container):
            return container[int(n)]
    return None


class _Evaluator:
    def __init__(self, contexts: Mapping[str, Any], status_fn: StatusFn | None) -> None:
        self.contexts = contexts
        self.status_fn = status_fn
        self._by_kind: dict[str, Callable[[Node], Any]] = {
            "lit": lambda node: node.value,
            "ctx": lambda node: _lookup(self.contexts, node.value),
            "prop": lambda node: _lookup(self.eval(node.args[0]), node.value),
            "index": lambda node: _lookup(self.eval(node.args[0]), self.eval(node.args[1])),
            "star": self.star,
            "not": lambda node: not truthy(self.eval(node.args[0])),
            "and": self.and_,
            "or": self.or_,
            "bin": lambda node: self.binary(
                node.value, self.eval(node.args[0]), self.eval(node.args[1])
            ),
        }

    def eval(self, node: Node) -> Any:
        return self._by_kind.get(node.kind, self.call)(node)

    def star(self, node: Node) -> list[Any]:
        base = self.eval(node.args[0])
        if isinstance(base, Mapping):
            return list(base.values())
        return list(base) if isinstance(base, list) else []

    def and_(self, node: Node) -> Any:
        left = self.eval(node.args[0])
        return self.eval(node.args[1]) if truthy(left) else left

    def or_(self, node: Node) -> Any:
        left = self.eval(node.args[0])
        return left if truthy(left) else self.eval(node.args[1])

    @staticmethod
    def binary(op: str, a: Any, b: Any) -> bool:
        if op == "==":
            return loose_equal(a, b)
        if op == "!=":
            return not loose_equal(a, b)
        return _compare(a, b, op)

    def call(self, node: Node) -> Any:
        name = str(node.value)
        if name in STATUS_FUNCTIONS:
            if node.args:
                raise ExpressionError(f"{name}() takes no arguments")
            if name == "always":
                return True
            if self.status_fn is None:
                return name == "success"
            return bool(self.status_fn(name))
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise ExpressionError(f"unknown function {name}()")
        args = [self.eval(a) for a in node.args]
        try:
            return fn(*args)
        except TypeError as exc:
            raise ExpressionError(f"{name}(): wrong number of arguments") from exc


def evaluate(expr: str, contexts: Mapping[str, Any], status_fn: StatusFn | None = None) -> Any:
    """Evaluate an expression (with or without its ``${{ }}``) over the contexts."""
    text = strip_braces(expr)
    return _Evaluator(contexts, status_fn).eval(parse(text))


def strip_braces(expr: str) -> str:
    """``${{ x }}`` -> ``x`` when the whole text is one expression; otherwise unchanged."""
    text = expr.strip()
    m = _EXPR_RE.fullmatch(text)
    return m.group(1).strip() if m else text


def evaluate_condition(
    condition: str | bool | None, contexts: Mapping[str, Any], status_fn: StatusFn | None = None
) -> bool:
    """Evaluate an ``if:``: empty means ``success()``; without a status function the
    expression is implicitly ``success() && (<expr>)``."""
    if condition is None or (isinstance(condition, str) and condition.strip() == ""):
        condition = "success()"
    if isinstance(condition, bool):
        text = "true" if condition else "false"
    elif isinstance(condition, (int, float)):
        text = to_string(condition)
    else:
        text = str(condition)
    text = strip_braces(text)
    if "${{" in text:
        # a condition with embedded expressions: interpolate, then evaluate the result
        text = interpolate(text, contexts)
    node = parse(text)
    if not calls_status_function(node):
        node = Node("and", args=(Node("call", "success"), node))
    return truthy(_Evaluator(contexts, status_fn).eval(node))


def evaluate_flag(value: Any, contexts: Mapping[str, Any]) -> bool:
    """A boolean field of a workflow that may be an expression (``continue-on-error``)."""
    if isinstance(value, str):
        return truthy(evaluate(value, contexts))
    return bool(value)


def interpolate(text: str, contexts: Mapping[str, Any], status_fn: StatusFn | None = None) -> str:
    """Replace every ``${{ ... }}`` in ``text`` with its value (missing values become '')."""
    if "${{" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        return to_string(_Evaluator(contexts, status_fn).eval(parse(m.group(1).strip())))

    return _EXPR_RE.sub(repl, text)


def interpolate_value(value: Any, contexts: Mapping[str, Any]) -> Any:
    """Interpolate strings inside a YAML value (dicts and lists recursively)."""
    if isinstance(value, str):
        return interpolate(value, contexts)
    if isinstance(value, dict):
        return {k: interpolate_value(v, contexts) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_value(v, contexts) for v in value]
    return value
