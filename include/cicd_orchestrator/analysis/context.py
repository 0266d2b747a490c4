"""What changed between the last green run and the failing one.

Pure over a local git clone (read-only ``git`` subprocesses) and the two job logs: the
commits after the last green commit up to the failing one (exclusive, inclusive), their
changed files, the dependency manifests among them, and the dependency versions that differ
between the green run's log and the failing run's log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from cicd_orchestrator import git
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.models import Commit, Context, DependencyChange

log = logging.getLogger(__name__)

GIT_TIMEOUT = 60
MAX_COMMITS = 200
MAX_DEPENDENCIES = 5000

MANIFEST_NAMES = frozenset(
    {
        "pyproject.toml",
        "setup.cfg",
        "setup.py",
        "Pipfile",
        "Pipfile.lock",
        "poetry.lock",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.mod",
        "go.sum",
        "Cargo.toml",
        "Cargo.lock",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "settings.gradle",
        "settings.gradle.kts",
        "gradle.lockfile",
        "Gemfile",
        "Gemfile.lock",
        "composer.json",
        "composer.lock",
    }
)
_REQUIREMENTS = re.compile(
    r"^(?:requirements|constraints)[\w.-]*\.(?:txt|in)$|^requirements/.*\.(?:txt|in)$"
)

_SEP = "\x1e"
_FIELD = "\x1f"

# dependency versions printed by installers: (regex, how to read it)
_PIP_INSTALLED = re.compile(r"Successfully installed (.+)$")
_PIP_PINNED = re.compile(
    r"(?:Collecting|Requirement already satisfied:|Downloading) ([A-Za-z0-9_.\-\[\]]+)==([\w.+!-]+)"
)
_PIP_WHEEL = re.compile(
    r"(?:Downloading|Using cached|Obtaining|Processing) .*?/?([A-Za-z0-9_.]+)-(\d[\w.+!]*?)"
    r"(?:-py\d|-cp\d|\.tar\.gz|\.zip)"
)
_PIP_SATISFIED = re.compile(
    r"Requirement already satisfied: ([A-Za-z0-9_.\-]+)(?:[<>=!~].*?)? in .*\((\d[\w.+!-]*)\)"
)
_NPM_ADDED = re.compile(r"(?:^|\s)(?:\+|added|updated|├─|└─|├──|└──)\s+(@?[\w./-]+)@(\d[\w.+-]*)")
_GO_DOWNLOAD = re.compile(r"go: (?:downloading|found|upgraded) (\S+) (v[\w.+-]+)")
_CARGO = re.compile(r"^\s*(?:Downloaded|Compiling|Checking)\s+([\w-]+) v(\d[\w.+-]*)")
_MAVEN = re.compile(
    r"Download(?:ed|ing) from [\w.-]+: \S+/([\w.-]+)/(\d[\w.-]*)/[\w.-]+\.(?:jar|pom)"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_TS = re.compile(r"^(?:[^\t\n]*\t[^\t\n]*\t)?\d{4}-\d\d-\d\dT[\d:.]+Z ?")


def is_manifest(path: str) -> bool:
    """A dependency manifest or lock file (requirements*.txt, package.json, go.mod, ...)."""
    p = PurePosixPath(path)
    return (
        p.name in MANIFEST_NAMES
        or bool(_REQUIREMENTS.match(p.name))
        or bool(_REQUIREMENTS.match(path))
    )


def _git(git_dir: str | Path, *args: str) -> str:
    return git.git(args, git_dir, timeout=GIT_TIMEOUT)


def _parse_log(out: str) -> list[Commit]:
    commits: list[Commit] = []
    for chunk in out.split(_SEP):
        if not chunk.strip():
            continue
        head, _, files = chunk.partition(_FIELD + _FIELD)
        sha, _, rest = head.strip("\n").partition(_FIELD)
        author, _, message = rest.partition(_FIELD)
        names = [f for f in files.splitlines() if f.strip()]
        commits.append(Commit(sha=sha.strip(), message=message.strip(), author=author, files=names))
    return commits


def list_commits(git_dir: str | Path, last_green_sha: str | None, failing_sha: str) -> list[Commit]:
    """Commits after ``last_green_sha`` up to ``failing_sha``, oldest first (bounded)."""
    fmt = f"--format={_SEP}%H{_FIELD}%an{_FIELD}%B{_FIELD}{_FIELD}"
    rng = [f"{last_green_sha}..{failing_sha}"] if last_green_sha else ["-1", failing_sha]
    out = _git(
        git_dir,
        "log",
        "--reverse",
        "--name-only",
        "--no-renames",
        fmt,
        f"--max-count={MAX_COMMITS}",
        *rng,
    )
    return _parse_log(out)


def _clean(line: str) -> str:
    return _TS.sub("", _ANSI.sub("", line)).strip()


def _add(found: dict[str, str], name: str, version: str) -> None:
    if len(found) < MAX_DEPENDENCIES:
        found[name.lower().replace("_", "-")] = version


def _pip_installed(found: dict[str, str], spec: str) -> None:
    for item in spec.split():
        name, sep, version = item.rpartition("-")
        if sep and name and version[:1].isdigit():
            _add(found, name, version)


def dependency_versions(log_text: str | Iterable[str]) -> dict[str, str]:
    """Package -> version as installers print them (pip, npm/yarn/pnpm, go, cargo, maven)."""
    lines = log_text.splitlines() if isinstance(log_text, str) else log_text
    found: dict[str, str] = {}
    for raw in lines:
        line = _clean(raw)
        m = _PIP_INSTALLED.search(line)
        if m:
            _pip_installed(found, m.group(1))
            continue
        for rx in (
            _PIP_PINNED,
            _PIP_SATISFIED,
            _GO_DOWNLOAD,
            _CARGO,
            _MAVEN,
            _NPM_ADDED,
            _PIP_WHEEL,
        ):
            m = rx.search(line)
            if m:
                _add(found, m.group(1), m.group(2))
                break
    return found


def dependency_changes(green_log: str | None, failing_log: str | None) -> list[DependencyChange]:
    """Dependencies whose version differs (or that appear) between the two logs."""
    if not green_log or not failing_log:
        return []
    before, after = dependency_versions(green_log), dependency_versions(failing_log)
    if not before or not after:
        return []
    changes = [
        DependencyChange(name=name, before=before.get(name), after=version)
        for name, version in sorted(after.items())
        if before.get(name) != version
    ]
    changes += [
        DependencyChange(name=name, before=version, after=None)
        for name, version in sorted(before.items())
        if name not in after
    ]
    return changes


def build_context(
    git_dir: str | Path,
    last_green_sha: str | None,
    failing_sha: str,
    green_log_text: str | None = None,
    failing_log_text: str | None = None,
) -> Context:
    """The :class:`models.Context` of a failure (commits, files, manifests, dependency diff)."""
    ctx = Context(failing_sha=failing_sha, last_green_sha=last_green_sha)
    if not last_green_sha:
        ctx.notes.append(
            "no last green run of this branch is known: only the failing commit is listed"
        )
    try:
        ctx.commits = list_commits(git_dir, last_green_sha, failing_sha)
    except WorkspaceError as exc:
        ctx.notes.append(f"commit history unavailable: {exc}")
        log.warning("context: %s", exc)
    if len(ctx.commits) >= MAX_COMMITS:
        ctx.notes.append(
            f"more than {MAX_COMMITS} commits since the last green run: the list is cut"
        )
    files: dict[str, None] = {}
    for commit in ctx.commits:
        for name in commit.files:
            files.setdefault(name, None)
    ctx.changed_files = list(files)
    ctx.changed_manifests = [f for f in ctx.changed_files if is_manifest(f)]
    ctx.dependency_changes = dependency_changes(green_log_text, failing_log_text)
    if green_log_text is None:
        ctx.notes.append("no green log: dependency versions not compared")
    return ctx
