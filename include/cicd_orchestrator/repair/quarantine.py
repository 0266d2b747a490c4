"""Flaky tests: propose quarantining them, where the configuration allows it.

A quarantine is an entry in the repository's own skip list when it has one (a file such as
``.flaky-tests`` or ``quarantine.txt`` that its test configuration reads), otherwise a
``pytest.mark.skip`` marker on the test function. It is a low-confidence CHANGE with a report
naming the tests: the test still needs a person to fix it.
"""

from __future__ import annotations

import ast
import logging
import re
import sys
import time
from pathlib import Path

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import Workspace
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.base import Change, Fixer, RepairContext, jobs_of, pending_change

log = logging.getLogger(__name__)

SKIP_REASON = "quarantined: flaky (cicd-orchestrator)"
MARKER = f"@pytest.mark.skip(reason={SKIP_REASON!r})".replace("'", '"')
CONFIDENCE = 0.35

# Files that may be a skip list, and files that may reference one.
_SKIP_LIST = re.compile(
    r"^\.?(?:flaky|quarantin\w*|skip|known[-_]flaky)(?:[-_.]?(?:tests?|list|ids))*"
    r"(?:\.(?:txt|list|lst|cfg))?$",
    re.IGNORECASE,
)
_CONFIG_FILES = (
    "conftest.py",
    "pytest.ini",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "Makefile",
    "noxfile.py",
    "package.json",
)
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox"})
_STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
_MAX_FILES = 5000
_SKIP_MARK = re.compile(r"\bmark\.skip\b(?!if)")


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, _, names in files.walk(root, _SKIP_DIRS, _relevant_name):
        out += [folder / f for f in names]
        if len(out) > _MAX_FILES:
            break
    return out


def _relevant_name(name: str) -> bool:
    """A name this fixer reads: a skip list, a test configuration or a test module."""
    return bool(_SKIP_LIST.match(name)) or name in _CONFIG_FILES or name.endswith(".py")


def _small(path: Path) -> bool:
    return path.lstat().st_size < 1_000_000


def find_skip_list(root: Path) -> Path | None:
    """The repository's skip list: a file named like one that its test configuration names."""
    found = _files(root)
    lists = [p for p in found if _SKIP_LIST.match(p.name) and _small(p)]
    if not lists:
        return None
    configs = [p for p in found if p.name in _CONFIG_FILES]
    configs += [p for p in found if ".github" in p.parts and p.suffix in (".yml", ".yaml")]
    texts = [files.read_text(root, p, errors="replace") for p in configs if _small(p)]
    for candidate in lists:
        if any(candidate.name in text for text in texts):
            return candidate
    return None


def add_to_skip_list(root: Path, path: Path, tests: list[str]) -> list[str]:
    """Append the tests the list does not have yet; the ones added."""
    text = files.read_text(root, path, errors="replace")
    listed = {line.strip() for line in text.splitlines()}
    new = [t for t in tests if t not in listed]
    if new:
        sep = "" if not text or text.endswith("\n") else "\n"
        files.write_text(root, path, text + sep + "".join(f"{t}\n" for t in new))
    return new


# --------------------------------------------------------------------------- pytest marker
def split_test_id(test: str) -> tuple[str, list[str]] | None:
    """``path::Class::name[param]`` -> (path, [Class, name]); None when not a pytest id."""
    parts = test.split("::")
    if len(parts) < 2 or not parts[0].endswith(".py"):
        return None
    names = [re.sub(r"\[.*\]$", "", p) for p in parts[1:]]
    if not all(n.isidentifier() for n in names):
        return None
    return parts[0], names


def _locate(root: Path, rel: str) -> Path | None:
    direct = root / rel
    if files.is_file(root, rel):
        return direct
    rel = rel.lstrip("./")
    matches = [p for p in _files(root) if str(p.relative_to(root)).endswith(rel)]
    return matches[0] if len(matches) == 1 else None


def _find_def(tree: ast.Module, names: list[str]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The test function ``Class::...::name`` (the last definition wins, as in Python)."""
    body: list[ast.stmt] = tree.body
    *classes, func_name = names
    for cls in classes:
        found = [n for n in body if isinstance(n, ast.ClassDef) and n.name == cls]
        if not found:
            return None
        body = found[-1].body
    funcs = [
        n
        for n in body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == func_name
    ]
    return funcs[-1] if funcs else None


def _already_skipped(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(_SKIP_MARK.search(ast.unparse(d)) for d in func.decorator_list)


def _imports_pytest(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.Import) and any(a.name == "pytest" and not a.asname for a in n.names)
        for n in tree.body
    )


def _section(node: ast.Import | ast.ImportFrom, local: set[str]) -> str:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return "local"
        module = (node.module or "").split(".")[0]
    else:
        module = node.names[0].name.split(".")[0]
    if module in _STDLIB:
        return "future" if module == "__future__" else "stdlib"
    return "local" if module in local else "third"


def _import_insertion(tree: ast.Module, local: set[str]) -> tuple[int, str]:
    """(0-based line, text) that adds ``import pytest`` where isort would put it."""
    block: list[tuple[ast.Import | ast.ImportFrom, str]] = []
    after_header = 0
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            block.append((node, _section(node, local)))
        elif not block and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            after_header = node.end_lineno or node.lineno
        else:
            break
    third = [n for n, s in block if s == "third"]
    for node in third:
        name = node.names[0].name if isinstance(node, ast.Import) else ""
        if isinstance(node, ast.ImportFrom) or name.lower() > "pytest":
            return node.lineno - 1, "import pytest\n"
    if third:
        return third[-1].end_lineno or third[-1].lineno, "import pytest\n"
    local_nodes = [n for n, s in block if s == "local"]
    if local_nodes:
        return local_nodes[0].lineno - 1, "import pytest\n\n"
    if block:
        return block[-1][0].end_lineno or block[-1][0].lineno, "\nimport pytest\n"
    if after_header:  # a docstring: the blank lines after it stay after the import
        return after_header, "\nimport pytest\n"
    return 0, "import pytest\n\n\n"


def add_skip_marker(
    path: Path, names: list[str], local: set[str], root: Path | None = None
) -> str | None:
    """Adds the quarantine marker on the test of ``path`` (a file of the checkout ``root``,
    its own folder by default); None when done, else why not."""
    root = root or path.parent
    source = files.read_text(root, path)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"{path.name} does not parse: {exc.msg}"
    func = _find_def(tree, names)
    if func is None:
        return f"no test {'::'.join(names)} in {path.name}"
    if _already_skipped(func):
        return f"{'::'.join(names)} is already skipped"
    lines = source.splitlines(keepends=True)
    first = min([func.lineno, *(d.lineno for d in func.decorator_list)])
    at = first - 1
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip(" \t"))]
    newline = "\r\n" if lines[at].endswith("\r\n") else "\n"
    lines.insert(at, f"{indent}{MARKER}{newline}")
    if not _imports_pytest(tree):
        line, text = _import_insertion(tree, local)
        lines.insert(line, text)
    files.write_text(root, path, "".join(lines))
    return None


def failure_tests(failure: Failure) -> list[str]:
    tests = list(failure.tests)
    for key in ("flaky_tests", "test"):
        tests += [t.strip() for t in failure.captures.get(key, "").split(",") if t.strip()]
    return list(dict.fromkeys(tests))


def _local_modules(root: Path) -> set[str]:
    names = {_module(name) for name, _ in files.entries(root)}
    if files.is_dir(root, "src"):
        names |= {_module(name) for name, _ in files.entries(root, "src")}
    return names


def _module(name: str) -> str:
    return name.removesuffix(".py") if name.endswith(".py") and name != ".py" else name


class QuarantineFixer(Fixer):
    """Quarantines confirmed flaky tests (a skip marker or the skip list), when allowed."""

    name = "quarantine"
    categories = frozenset({FailureCategory.FLAKY})

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        # Only once CI re-runs are spent: until then a re-run is the repair.
        relevant = [f for f in self.relevant(ctx.failures) if f.repeated_after_rerun]
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if not relevant or self.name not in ctx.config.enabled_fixers:
            return result
        tests: dict[str, Failure] = {}
        for failure in relevant:
            named = failure_tests(failure)
            if not named:
                result.unrepaired.append(
                    f"{failure.job}: flaky, but the log names no test: nothing to quarantine"
                )
            for test in named:
                tests.setdefault(test, failure)
        if not tests:
            return result
        if not getattr(ctx.config, "quarantine_flaky", False):
            for test, failure in tests.items():
                result.unrepaired.append(
                    f"{failure.job}: flaky test {test}: quarantining is disabled "
                    "(quarantine_flaky is off); fix or quarantine it by hand"
                )
            return result
        with ctx.workspace() as ws, files.refusals(result):
            where = self._quarantine(ws, tests, result)
            change = pending_change(ws)
            if change is not None:
                result.repairs.append(self._repair(tests, where, change))
        result.seconds = round(time.monotonic() - start, 3)
        return result

    @staticmethod
    def _quarantine(ws: Workspace, tests: dict[str, Failure], result: FixerResult) -> list[str]:
        """Quarantines each test; the tests done, with where."""
        done: list[str] = []
        skip_list = find_skip_list(ws.path)
        if skip_list is not None:
            rel = str(skip_list.relative_to(ws.path))
            added = add_to_skip_list(ws.path, skip_list, list(tests))
            for test in tests:
                if test not in added:
                    result.unrepaired.append(
                        f"{tests[test].job}: {test} is already in the skip list {rel}, "
                        "yet it ran: check that the test configuration reads the list"
                    )
            return [f"{t} (in {rel})" for t in added]
        local = _local_modules(ws.path)
        for test, failure in tests.items():
            parsed = split_test_id(test)
            path = _locate(ws.path, parsed[0]) if parsed else None
            if parsed is None or path is None:
                result.unrepaired.append(
                    f"{failure.job}: cannot quarantine {test}: not a pytest test of this "
                    "repository and no skip list was found"
                )
                continue
            error = add_skip_marker(path, parsed[1], local, ws.path)
            if error:
                result.unrepaired.append(f"{failure.job}: cannot quarantine {test}: {error}")
            else:
                done.append(f"{test} (skip marker in {path.relative_to(ws.path).as_posix()})")
        return done

    def _repair(self, tests: dict[str, Failure], where: list[str], change: Change) -> Repair:
        failures = list({id(f): f for f in tests.values()}.values())
        names = ", ".join(tests)
        return Repair(
            fixer=self.name,
            kind=RepairKind.CHANGE,
            category=FailureCategory.FLAKY,
            description=f"quarantine flaky test(s): {'; '.join(where)}",
            jobs=jobs_of(failures),
            patch=change.patch,
            files=change.files,
            commit_message=(
                f"Quarantine flaky test(s) {names}\n\n"
                "They passed and failed on the same commit. Skipped until someone fixes them "
                "(cicd-orchestrator)."
            ),
            confidence=CONFIDENCE,
            evidence=[e for f in failures for e in [*f.evidence[:2], *f.notes[-1:]]],
            notes=[f"quarantined flaky test: {t}" for t in tests],
        )
