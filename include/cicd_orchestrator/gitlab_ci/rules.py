"""Whether a job is in the pipeline: ``rules`` (``if``, ``exists``, ``changes``, ``when``),
``only``/``except`` and ``workflow: rules``, as GitLab decides it.

``if`` expressions: variables (``$VAR``, ``${VAR}``; alone, true when set and not empty),
strings, ``null``, ``/regex/flags``, ``==``, ``!=``, ``=~``, ``!~``, ``&&``, ``||`` and
parentheses. ``exists`` is checked against the commit's files; ``changes`` cannot be known
without the pipeline's diff and counts as true, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.gitlab_ci.config import variables_of

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<var>\$(?:\{(?P<braced>[A-Za-z_]\w*)\}|(?P<plain>[A-Za-z_]\w*)))
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<re>/(?:[^/\\]|\\.)*/[a-z]*)
    |(?P<op>==|!=|=~|!~|&&|\|\||\(|\))
    |(?P<null>null\b)
    )""",
    re.X,
)
_BOOLEAN_OPS = ("&&", "||")
_COMPARE_OPS = ("==", "!=", "=~", "!~")


@dataclass(frozen=True)
class _Token:
    kind: str  # var, str, re, op, null
    text: str


class RegexValue(str):
    """A ``/pattern/flags`` literal."""

    __slots__ = ()

    def compile(self) -> re.Pattern[str]:
        body, _, flags = self[1:].rpartition("/")
        value = 0
        for flag in flags:
            value |= {"i": re.I, "m": re.M, "s": re.S}.get(flag, 0)
        return re.compile(body, value)


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise WorkflowError(f"invalid rules expression {text!r} at {text[pos:].strip()!r}")
        pos = m.end()
        if m.group("var"):
            out.append(_Token("var", m.group("braced") or m.group("plain")))
        elif m.group("str"):
            out.append(_Token("str", m.group("str")[1:-1]))
        elif m.group("re"):
            out.append(_Token("re", m.group("re")))
        elif m.group("op"):
            out.append(_Token("op", m.group("op")))
        elif m.group("null"):
            out.append(_Token("null", ""))
    return out


class _Parser:
    """Recursive descent over one expression; values are str, RegexValue or None."""

    def __init__(self, text: str, variables: Mapping[str, str]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.variables = variables

    def error(self, why: str) -> WorkflowError:
        return WorkflowError(f"invalid rules expression {self.text!r}: {why}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("it ends too early")
        self.pos += 1
        return token

    def parse(self) -> bool:
        value = self.or_expr()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return value

    def or_expr(self) -> bool:
        value = self.and_expr()
        while (tok := self.peek()) is not None and tok.text == "||":
            self.take()
            right = self.and_expr()
            value = value or right
        return value

    def and_expr(self) -> bool:
        value = self.compare()
        while (tok := self.peek()) is not None and tok.text == "&&":
            self.take()
            right = self.compare()
            value = value and right
        return value

    def compare(self) -> bool:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            value = self.or_expr()
            if self.take().text != ")":
                raise self.error("a parenthesis is not closed")
            return value
        left = self.operand()
        op = self.peek()
        if op is None or op.text not in _COMPARE_OPS:
            return bool(left)
        self.take()
        right = self.operand()
        return _compare(left, op.text, right, self.error)

    def operand(self) -> str | None:
        tok = self.take()
        if tok.kind == "var":
            return self.variables.get(tok.text)
        if tok.kind == "str":
            return tok.text
        if tok.kind == "re":
            return RegexValue(tok.text)
        if tok.kind == "null":
            return None
        raise self.error(f"unexpected {tok.text!r}")


def _as_regex(value: str | None) -> re.Pattern[str] | None:
    if isinstance(value, RegexValue):
        return value.compile()
    if value and len(value) > 1 and value.startswith("/") and value.rfind("/") > 0:
        return RegexValue(value).compile()
    return None


def _compare(
    left: str | None, op: str, right: str | None, error: Callable[[str], WorkflowError]
) -> bool:
    if op in ("==", "!="):
        same = left == right
        return same if op == "==" else not same
    try:
        pattern = _as_regex(right)
    except re.error as exc:
        raise error(f"invalid regular expression: {exc}") from exc
    if pattern is None:
        raise error(f"{op} needs a /regular expression/ on its right")
    found = left is not None and pattern.search(left) is not None
    return found if op == "=~" else not found


def evaluate_if(text: Any, variables: Mapping[str, str]) -> bool:
    """A ``rules: if:`` expression (WorkflowError when it is invalid)."""
    return _Parser(str(text), variables).parse()


# --------------------------------------------------------------------------- rules
@dataclass
class RuleOutcome:
    """Whether a job (or the pipeline) is included, and what the matching rule sets."""

    included: bool
    when: str | None = None
    allow_failure: Any = None
    variables: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


#: whether any of the commit's files matches one of the glob patterns
Exists = Callable[[list[str]], bool]


def _patterns(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = value.get("paths")
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _rule_matches(
    rule: Mapping[str, Any], variables: Mapping[str, str], exists: Exists, notes: list[str]
) -> bool:
    if "if" in rule and not evaluate_if(rule["if"], variables):
        return False
    if "exists" in rule and not exists(_patterns(rule["exists"])):
        return False
    if "changes" in rule:
        notes.append("rules: changes cannot be known locally; counted as true")
    return True


def evaluate_rules(rules: list[Any], variables: Mapping[str, str], exists: Exists) -> RuleOutcome:
    """The first matching rule decides; no matching rule leaves the job out."""
    notes: list[str] = []
    for rule in rules:
        if not isinstance(rule, dict):
            raise WorkflowError(f"a rule must be a mapping, not {rule!r}")
        if not _rule_matches(rule, variables, exists, notes):
            continue
        when = str(rule.get("when") or "on_success")
        if when == "never":
            return RuleOutcome(False, when, notes=notes)
        return RuleOutcome(
            True,
            when if "when" in rule else None,
            rule.get("allow_failure"),
            variables_of(rule.get("variables"), "rules", "rules"),
            notes,
        )
    return RuleOutcome(False, notes=[*notes, "no rule matches"])


# --------------------------------------------------------------------------- only / except
_SOURCES = {
    "merge_requests": "merge_request_event",
    "pushes": "push",
    "schedules": "schedule",
    "web": "web",
    "api": "api",
    "triggers": "trigger",
    "pipelines": "pipeline",
    "external": "external",
    "chat": "chat",
    "external_pull_requests": "external_pull_request_event",
}


def _ref_matches(pattern: str, variables: Mapping[str, str]) -> bool:
    ref = variables.get("CI_COMMIT_REF_NAME", "")
    tag = bool(variables.get("CI_COMMIT_TAG"))
    source = variables.get("CI_PIPELINE_SOURCE", "push")
    if pattern == "branches":
        return not tag and source != "merge_request_event"
    if pattern == "tags":
        return tag
    if pattern in _SOURCES:
        return source == _SOURCES[pattern]
    name, _, project = pattern.partition("@")
    if project and project != variables.get("CI_PROJECT_PATH"):
        return False
    regex = _as_regex(name)
    if regex is not None:
        return regex.search(ref) is not None
    return name == ref


def _policy(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, list)):
        return {"refs": value}
    return {}


def _hits(policy: Mapping[str, Any], variables: Mapping[str, str], notes: list[str]) -> list[bool]:
    """Each condition of an only/except policy: does it hold?"""
    out: list[bool] = []
    if "refs" in policy:
        refs = policy["refs"]
        refs = refs if isinstance(refs, list) else [refs]
        out.append(any(_ref_matches(str(r), variables) for r in refs))
    if "variables" in policy:
        exprs = policy["variables"]
        exprs = exprs if isinstance(exprs, list) else [exprs]
        out.append(any(evaluate_if(e, variables) for e in exprs))
    if "changes" in policy:
        notes.append("only/except: changes cannot be known locally; counted as true")
        out.append(True)
    for key in policy:
        if key not in ("refs", "variables", "changes"):
            notes.append(f"only/except: {key} is not replayed; ignored")
    return out


def evaluate_only_except(only: Any, except_: Any, variables: Mapping[str, str]) -> RuleOutcome:
    """``only`` (default: branches and tags) must hold, ``except`` must not."""
    notes: list[str] = []
    only_policy = _policy(only) if only is not None else {"refs": ["branches", "tags"]}
    only_hits = _hits(only_policy, variables, notes)
    if not all(only_hits):
        return RuleOutcome(False, notes=[*notes, "only: does not match"])
    if except_ is not None:
        except_hits = _hits(_policy(except_), variables, notes)
        if except_hits and all(except_hits):
            return RuleOutcome(False, notes=[*notes, "except: matches"])
    return RuleOutcome(True, notes=notes)


# --------------------------------------------------------------------------- globs
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as GitLab's ``exists`` reads it: ``*`` within a folder, ``**/`` any
    number of folders, ``?`` one character, ``{a,b}`` alternatives."""
    out: list[str] = []
    i = 0
    pattern = pattern.lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "{" and "}" in pattern[i:]:
            end = pattern.index("}", i)
            out.append(
                "(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : end].split(",")) + ")"
            )
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def any_exists(files: list[str], patterns: list[str]) -> bool:
    compiled = [glob_regex(p) for p in patterns]
    return any(c.fullmatch(f) for c in compiled for f in files)
