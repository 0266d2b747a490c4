"""The little of Groovy a declarative ``Jenkinsfile`` is written in: statements, calls with
arguments, closures, assignments and string literals.

:func:`parse` turns the text into :class:`Node` statements: ``name args { body }``
(``stage('Build') { ... }``, ``sh 'make'``, ``sh(script: '...', label: 'x')``) and
``NAME = value`` assignments (``environment { K = 'v' }``). What is not such a statement
(Groovy code: ``if``, loops, operators) becomes a node named ``<groovy>`` holding its text;
a ``script { ... }`` block is kept as text, never parsed or run. Unbalanced braces or an
unterminated string raise :class:`JenkinsfileError` with the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.exceptions import WorkflowError

#: blocks whose contents are Groovy code, kept as text
OPAQUE_BLOCKS = frozenset({"script"})
GROOVY = "<groovy>"


class JenkinsfileError(WorkflowError):
    """A Jenkinsfile that cannot be read."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        where = f"{path}#L{line}" if line else path
        super().__init__(f"{where}: {message}")


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f]+|\\\n)
    |(?P<nl>\n)
    |(?P<comment>//[^\n]*|/\*.*?\*/)
    |(?P<str>'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
    |(?P<bad>['"])
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<ident>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)
    |(?P<punct>[{}()\[\],:;=])
    |(?P<other>==|!=|<=|>=|&&|\|\||->|\?:|[^\s])
    """,
    re.X | re.S,
)


@dataclass(frozen=True)
class Token:
    kind: str  # str, num, ident, punct, other, nl
    text: str
    line: int


@dataclass(frozen=True)
class Str:
    """A string literal: its value (escapes processed) and whether it is a GString
    (double-quoted: ``${...}`` is interpolated)."""

    value: str
    gstring: bool


@dataclass(frozen=True)
class Call:
    """A call used as a value: ``credentials('id')``."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Raw:
    """A value that is Groovy code (not a literal)."""

    text: str


Value = Str | Call | Raw | bool | int | float | list[Any]


@dataclass
class Node:
    """One statement: ``name args kwargs { body }`` or an assignment (``value``)."""

    name: str
    line: int
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    body: list[Node] | None = None
    value: Any = None
    text: str = ""

    def arg(self) -> Any:
        """The first positional argument, or None."""
        return self.args[0] if self.args else None


def tokenize(text: str, path: str) -> list[Token]:
    out: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # an unterminated string or comment
            raise JenkinsfileError(path, line, "unterminated string or comment")
        kind = m.lastgroup or "other"
        chunk = m.group(0)
        if kind == "bad":
            raise JenkinsfileError(path, line, "unterminated string")
        if kind == "nl":
            out.append(Token("nl", "\n", line))
        elif kind not in ("ws", "comment"):
            out.append(Token(kind, chunk, line))
        line += chunk.count("\n")
        pos = m.end()
    return out


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "\\": "\\", "'": "'", '"': '"'}


def string_value(token: str) -> Str:
    """The value of a string literal token."""
    quote = 3 if token[:3] in ("'''", '"""') else 1
    body = token[quote:-quote]
    gstring = token[0] == '"'
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if nxt == "$" and gstring:
                out.append("\\$")  # kept escaped for the interpolation
            else:
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return Str("".join(out), gstring)


class _Parser:
    def __init__(self, tokens: list[Token], path: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path

    def error(self, why: str, token: Token | None = None) -> JenkinsfileError:
        token = token or self.peek()
        return JenkinsfileError(self.path, token.line if token else None, why)

    def peek(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise JenkinsfileError(self.path, None, "the file ends inside a block")
        self.pos += 1
        return token

    def skip_separators(self) -> None:
        while (tok := self.peek()) is not None and tok.text in ("\n", ";"):
            self.pos += 1

    # ------------------------------------------------------------------ blocks
    def block(self, closing: bool, opened: int | None = None) -> list[Node]:
        nodes: list[Node] = []
        while True:
            self.skip_separators()
            tok = self.peek()
            if tok is None:
                if closing:
                    raise JenkinsfileError(self.path, opened, "this '{' is never closed")
                return nodes
            if tok.text == "}":
                if not closing:
                    raise self.error("unexpected '}'")
                self.pos += 1
                return nodes
            nodes.append(self.statement())

    def statement(self) -> Node:
        start = self.pos
        tok = self.take()
        if tok.kind != "ident":
            return self.groovy(start)
        nxt = self.peek()
        if nxt is not None and nxt.text == "=":
            self.pos += 1
            return Node(tok.text, tok.line, value=self.value_until_end(), text=self.text(start))
        node = Node(tok.text, tok.line)
        if nxt is not None and nxt.text == "(":
            self.pos += 1
            self.arguments(node, ")")
        elif (nxt is not None and nxt.kind in ("str", "num", "ident")) or (nxt and nxt.text == "["):
            self.arguments(node, None)
        elif nxt is not None and nxt.text not in ("{", "\n", ";", "}"):
            return self.groovy(start)
        brace = self.peek()
        if brace is not None and brace.text == "{":
            self.pos += 1
            if node.name in OPAQUE_BLOCKS:
                node.text = self.skip_balanced(brace.line)
                node.body = []
            else:
                node.body = self.block(closing=True, opened=brace.line)
        if not self.at_end():
            return self.groovy(start)
        node.text = node.text or self.text(start)
        return node

    def at_end(self) -> bool:
        tok = self.peek()
        return tok is None or tok.text in ("\n", ";", "}")

    def text(self, start: int) -> str:
        return " ".join(t.text for t in self.tokens[start : self.pos] if t.kind != "nl")

    def groovy(self, start: int) -> Node:
        """A statement that is Groovy code: up to the end of its line, braces balanced."""
        self.pos = start
        depth = 0
        line = self.tokens[start].line
        while (tok := self.peek()) is not None:
            if depth == 0 and (tok.text in ("\n", ";") or tok.text == "}"):
                break
            self.pos += 1
            if tok.text in ("{", "(", "["):
                depth += 1
            elif tok.text in ("}", ")", "]"):
                depth -= 1
        return Node(GROOVY, line, text=self.text(start))

    def skip_balanced(self, opened: int) -> str:
        """The text of a block's contents up to its closing brace (consumed)."""
        start, depth = self.pos, 1
        while True:
            tok = self.peek()
            if tok is None:
                raise JenkinsfileError(self.path, opened, "this '{' is never closed")
            self.pos += 1
            if tok.text == "{":
                depth += 1
            elif tok.text == "}":
                depth -= 1
                if depth == 0:
                    return " ".join(t.text for t in self.tokens[start : self.pos - 1])

    # ------------------------------------------------------------------ arguments
    def arguments(self, node: Node, closer: str | None) -> None:
        while True:
            if closer is not None:
                while (tok := self.peek()) is not None and tok.text == "\n":
                    self.pos += 1
            tok = self.peek()
            if tok is None:
                raise self.error("arguments are not closed")
            if closer is not None and tok.text == closer:
                self.pos += 1
                return
            if closer is None and (tok.text in ("{", "\n", ";", "}")):
                return
            self.argument(node, closer)
            tok = self.peek()
            if tok is not None and tok.text == ",":
                self.pos += 1
            elif closer is None:
                return

    def argument(self, node: Node, closer: str | None) -> None:
        tok, nxt = self.peek(), self.peek(1)
        if tok is not None and tok.kind in ("ident", "str") and nxt is not None and nxt.text == ":":
            self.pos += 2
            key = string_value(tok.text).value if tok.kind == "str" else tok.text
            node.kwargs[key] = self.value(closer)
        else:
            node.args.append(self.value(closer))

    def value(self, closer: str | None) -> Any:
        start = self.pos
        tok = self.take()
        single = self.value_ends(closer)
        if tok.kind == "str" and single:
            return string_value(tok.text)
        if tok.kind == "num" and single:
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.text in ("true", "false") and single:
            return tok.text == "true"
        if tok.kind == "ident" and self.peek() is not None and self.peek().text == "(":  # type: ignore[union-attr]
            self.pos += 1
            call = Node(tok.text, tok.line)
            self.arguments(call, ")")
            if self.value_ends(closer):
                return Call(call.name, call.args, call.kwargs)
        if tok.text == "[":
            self.pos = start
        return self.raw_value(start, closer)

    def value_ends(self, closer: str | None) -> bool:
        tok = self.peek()
        ends = {",", closer} if closer else {",", "{", "\n", ";", "}"}
        return tok is None or tok.text in ends

    def raw_value(self, start: int, closer: str | None) -> Raw:
        self.pos = start
        depth = 0
        while (tok := self.peek()) is not None:
            if depth == 0 and self.value_ends(closer):
                break
            self.pos += 1
            if tok.text in ("{", "(", "["):
                depth += 1
            elif tok.text in ("}", ")", "]"):
                depth -= 1
        return Raw(" ".join(t.text for t in self.tokens[start : self.pos] if t.kind != "nl"))

    def value_until_end(self) -> Any:
        """The value of an assignment: a literal or call alone on its line, else Groovy."""
        start = self.pos
        value = self.value(None)
        if isinstance(value, Raw) or not self.at_end():
            self.pos = start
            self.groovy(start)
            return Raw(self.text(start))
        return value


def parse(text: str, path: str) -> list[Node]:
    """The statements of a Jenkinsfile (JenkinsfileError when its blocks do not balance)."""
    return _Parser(tokenize(text, path), path).block(closing=False)
