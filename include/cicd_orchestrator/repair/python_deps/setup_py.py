"""``setup.py``: the ``install_requires`` / ``extras_require`` list literals, found with
``ast`` (the file is never executed) and extended in the quoting and indentation style of
their entries. A name assigned a list literal at module level is followed; a list built by
reading a requirements file sends the requirement to that file; anything else cannot be
edited safely and the reason says why."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.python_deps.model import TEST_GROUPS, CannotEditError
from cicd_orchestrator.repair.python_deps.names import normalize, requirement_name
from cicd_orchestrator.repair.python_deps.versions import operator_style, styled

PATH = "setup.py"
_READ_CALLS = frozenset({"open", "read_text", "Path", "parse_requirements", "read", "readlines"})
_REQ_FILE = re.compile(r"^[\w./-]+\.(?:txt|in)$")
Literal = ast.List | ast.Tuple


@dataclass
class ListSite:
    """A list literal of requirements in ``setup.py``."""

    node: Literal
    where: str


def parse(root: Path) -> ast.Module | None:
    """The syntax tree of ``setup.py`` (None when there is none)."""
    if not files.is_file(root, PATH):
        return None
    try:
        return ast.parse(files.read_text(root, PATH), PATH)
    except (SyntaxError, ValueError, UnicodeDecodeError) as exc:
        raise CannotEditError(f"{PATH} does not parse: {exc}") from exc


def setup_call(tree: ast.Module) -> ast.Call | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "setup":
                return node
    return None


def _keyword(call: ast.Call | None, name: str) -> ast.expr | None:
    for kw in call.keywords if call else ():
        if kw.arg == name:
            return kw.value
    return None


def project_name(tree: ast.Module) -> str | None:
    value = _keyword(setup_call(tree), "name")
    return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None


def declares(tree: ast.Module) -> bool:
    return _keyword(setup_call(tree), "install_requires") is not None


def _assigned(tree: ast.Module, name: str) -> ast.expr | None:
    """The value a module-level assignment gives ``name`` (the last one)."""
    found = None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        ) or (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and node.value is not None
        ):
            found = node.value
    return found


def files_read(root: Path, tree: ast.Module) -> list[str]:
    """The requirements files ``setup.py`` reads (``open("requirements.txt")`` and the like)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in _READ_CALLS:
            continue
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                path = arg.value.removeprefix("./")
                if _REQ_FILE.match(path) and files.is_file(root, path) and path not in found:
                    found.append(path)
    return found


def resolve(root: Path, tree: ast.Module, value: ast.expr, label: str) -> ListSite | list[str]:
    """The list literal ``value`` is, or the requirements files it is read from."""
    if isinstance(value, Literal):
        return ListSite(value, f"{PATH} {label}")
    if isinstance(value, ast.Name):
        target = _assigned(tree, value.id)
        if isinstance(target, Literal):
            return ListSite(target, f"{PATH} {label} ({value.id})")
    read = files_read(root, tree)
    if read:
        return read
    raise CannotEditError(
        f"cannot edit safely: {label} in {PATH} is {_describe(value)}, not a list literal "
        "(nor a name assigned one), and no requirements file read by it was found"
    )


def _describe(value: ast.expr) -> str:
    if isinstance(value, ast.Name):
        return f"the name {value.id} (not assigned a list literal at module level)"
    if isinstance(value, ast.Call):
        return f"a call of {ast.unparse(value.func)}()"
    return f"an expression ({type(value).__name__})"


def runtime_site(root: Path, tree: ast.Module) -> ListSite | list[str]:
    value = _keyword(setup_call(tree), "install_requires")
    if value is None:
        raise CannotEditError(f"{PATH} has no install_requires in its setup() call")
    return resolve(root, tree, value, "install_requires")


def test_site(root: Path, tree: ast.Module) -> ListSite | list[str] | None:
    """The test extra (or ``tests_require``) of ``setup.py``, None when it has none."""
    call = setup_call(tree)
    extras = _keyword(call, "extras_require")
    if isinstance(extras, ast.Name):
        extras = _assigned(tree, extras.id)
    if isinstance(extras, ast.Dict):
        for group in TEST_GROUPS:
            for key, value in zip(extras.keys, extras.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == group:
                    return resolve(root, tree, value, f'extras_require["{group}"]')
    tests = _keyword(call, "tests_require")
    return resolve(root, tree, tests, "tests_require") if tests is not None else None


def declared_in(tree: ast.Module, dist: str) -> str | None:
    """Whether a list literal of ``setup.py`` names ``dist``."""
    for node in ast.walk(tree):
        if isinstance(node, Literal):
            for elt in node.elts:
                if (
                    isinstance(elt, ast.Constant)
                    and isinstance(elt.value, str)
                    and normalize(requirement_name(elt.value)) == normalize(dist)
                ):
                    return f"{PATH} (line {elt.lineno})"
    return None


def _offsets(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _index(text: str, starts: list[int], line: int, col: int) -> int:
    """The string index of an ast position (``col`` counts UTF-8 bytes)."""
    begin = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    return begin + len(text[begin:end].encode("utf-8")[:col].decode("utf-8", "replace"))


def _strings(node: Literal) -> list[str]:
    return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def insert(text: str, node: Literal, entry: str) -> str:
    """``text`` with ``entry`` added as the last element of the literal ``node``."""
    starts = _offsets(text)
    pos = _index(text, starts, node.end_lineno or node.lineno, node.end_col_offset or 0)
    close = text.rindex("]" if isinstance(node, ast.List) else ")", 0, pos)
    first = ast.get_source_segment(text, node.elts[0]) if node.elts else None
    quote = "'" if first and first.startswith("'") else '"'
    literal = f"{quote}{entry}{quote}"
    if not node.elts:
        return text[:close] + literal + ("," if isinstance(node, ast.Tuple) else "") + text[close:]
    last = node.elts[-1]
    end = _index(text, starts, last.end_lineno or last.lineno, last.end_col_offset or 0)
    comma = text.find(",", end, close)
    if comma >= 0 and text[end:comma].strip():
        comma = -1  # a comma in a comment is no separator
    if "\n" not in text[end:close]:  # the closing bracket is on the last entry's line
        sep = ", "
        if len(node.elts) > 1:
            prev = node.elts[-2]
            p_end = _index(text, starts, prev.end_lineno or prev.lineno, prev.end_col_offset or 0)
            sep = text[p_end : _index(text, starts, last.lineno, last.col_offset)] or ", "
        if comma >= 0:
            return text[: comma + 1] + sep.lstrip(",") + literal + "," + text[comma + 1 :]
        return text[:end] + sep + literal + text[end:]
    line_start = starts[last.lineno - 1]
    indent = re.match(r"[ \t]*", text[line_start:]).group(0)  # type: ignore[union-attr]
    if comma < 0:
        text = text[:end] + "," + text[end:]
        newline_at, tail = text.find("\n", end), ""
    else:
        newline_at, tail = text.find("\n", comma), ","
    return text[: newline_at + 1] + f"{indent}{literal}{tail}\n" + text[newline_at + 1 :]


def add(root: Path, site: ListSite, dist: str, version: str | None) -> str:
    """Add ``dist`` to the literal of ``site``, check the result parses to one entry more."""
    text = files.read_text(root, PATH)
    entry = styled(dist, version, operator_style(_strings(site.node)))
    new = insert(text, site.node, entry)
    try:
        tree = ast.parse(new, PATH)
    except SyntaxError as exc:
        raise CannotEditError(
            f"cannot edit safely: the edit of {PATH} would not parse ({exc})"
        ) from exc
    grown = [
        n
        for n in ast.walk(tree)
        if isinstance(n, Literal)
        and n.lineno == site.node.lineno
        and _strings(n) == [*_strings(site.node), entry]
    ]
    if not grown:
        raise CannotEditError(f"cannot edit safely: {site.where} did not take the new entry")
    files.write_text(root, PATH, new)
    return f"{entry} ({site.where})"
