"""Every git command the orchestrator runs: one runner, one environment, one set of options.

Mirrors of a remote, clones of one commit (workspaces), reading files and trees of a commit,
applying and committing patches, pushing a fix branch: all of it goes through :func:`run`,
so a rule about how the orchestrator runs git (its environment, its configuration, its
timeouts) is made here and nowhere else.

A workspace is a throw-away clone of one commit, made from a local mirror of the remote kept
per repository under the cache directory. Repairs change files there; :meth:`Workspace.diff`
gives a binary-safe patch, which is what tasks exchange through XCom (tasks may run on
different machines, so no task relies on another's directory).

Repository content is hostile, and so is whatever a repository's commands leave behind, so
every git command runs the same way:

- no system or global configuration (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL`` and
  ``HOME`` all point at ``/dev/null``), no system attributes;
- :data:`SAFE_CONFIG` on the command line, which wins over any configuration file: no hooks,
  no fsmonitor, no attributes or excludes file, no credential helper, no submodule recursion,
  and only the ``https`` and ``file`` transports (plain ``http`` only to a loopback address,
  where the test servers are);
- ``--no-textconv --no-ext-diff`` on every command that shows a diff.

A local push still runs the receiving repository's own hooks (the local CI provider's
post-receive hook): git hands no ``-c`` option on to the ``git-receive-pack`` of a local
push, and the receiving repository is the provider's, not one of the orchestrator's clones.

A workspace keeps its git directory beside its work tree, never in it: the repository's
commands (repair tools, which run with the work tree as their only writable place) cannot
plant a configuration, a hook or an attribute file that the orchestrator's next
``git add``/``diff``/``commit`` would read, and whatever ``.git`` they create in the work tree
is ignored. Its configuration is checked before each command as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cicd_orchestrator.exceptions import ProviderError, WorkspaceError
from cicd_orchestrator.redact import redact
from cicd_orchestrator.scratch import make_scratch

log = logging.getLogger(__name__)

BOT_NAME = "cicd-orchestrator"
BOT_EMAIL = "cicd-orchestrator@users.noreply.localhost"
TIMEOUT = 300.0
#: the variables of the orchestrator's environment that its git may see (HOME is not one:
#: git's HOME is /dev/null, so no ~/.gitconfig, ~/.config/git or ~/.netrc of the worker counts)
_ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME")
#: the environment no caller can change: no configuration or attributes but the repository's
_PINNED_ENV = {
    "HOME": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
#: ``-c`` options of every git command (a command-line option wins over every file)
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("core.attributesFile", os.devnull),
    ("core.excludesFile", os.devnull),
    ("credential.helper", ""),
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.file.allow", "always"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("diff.ignoreSubmodules", "all"),
    ("commit.gpgSign", "false"),
)
#: commands that show a diff: never through a textconv filter or an external diff program
_DIFF_COMMANDS = frozenset({"diff", "show", "log"})
_NO_DIFF_DRIVERS = ("--no-textconv", "--no-ext-diff")
#: options that name the repository of a command (given, no workspace is looked up)
_REPOSITORY_OPTIONS = ("--git-dir=", "--work-tree=")
#: a workspace's ``info/attributes``, which wins over any ``.gitattributes`` of the
#: repository: no filter, diff or merge driver is ever looked up
NO_DRIVERS = "* !filter !diff !merge\n"
_BRANCH_RE = re.compile(r"[\w./-]+")
_TRANSIENT = (" 50", "timed out", "Connection reset", "early EOF")
_REJECTED = ("non-fast-forward", "[rejected]", "fetch first")


@dataclass(frozen=True)
class GitRemote:
    """Where to fetch and push a repository with git, and the environment git needs.

    Credentials travel in ``env`` (GIT_ASKPASS, an extra header...), never in ``url``.
    """

    url: str
    env: dict[str, str] = field(default_factory=dict, repr=False)


def env(extra: Mapping[str, str] | None = None, date: str | None = None) -> dict[str, str]:
    """The environment of every git command: an allowlist of the orchestrator's own (no
    ``GIT_DIR`` of a hook, no credential, no HOME), no prompts, no system or global
    configuration, the bot's identity; ``extra`` (a remote's credential helper) is added, then
    the pinned variables again, which ``extra`` cannot change."""
    out = {k: os.environ[k] for k in _ENV_ALLOWED if k in os.environ}
    out.setdefault("PATH", "/usr/bin:/bin")
    out.setdefault("LANG", "C.UTF-8")
    out.update(
        {
            "GIT_AUTHOR_NAME": BOT_NAME,
            "GIT_AUTHOR_EMAIL": BOT_EMAIL,
            "GIT_COMMITTER_NAME": BOT_NAME,
            "GIT_COMMITTER_EMAIL": BOT_EMAIL,
        }
    )
    if date:
        out["GIT_AUTHOR_DATE"] = date
        out["GIT_COMMITTER_DATE"] = date
    out.update(extra or {})
    out.update(_PINNED_ENV)
    return out


def _loopback_http(arg: str) -> bool:
    """``arg`` is a plain-http URL of a loopback address (a test server)."""
    if not arg.startswith("http://"):
        return False
    host = urlsplit(arg).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def command_line(args: Sequence[str], cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """``git`` with :data:`SAFE_CONFIG` and ``args``: with the git directory and work tree of
    the workspace ``cwd`` is in, when it is in one; with the diff options that keep drivers
    out; with plain http allowed when the command's URL is a loopback one."""
    config = list(SAFE_CONFIG)
    if any(_loopback_http(a) for a in args):
        config.append(("protocol.http.allow", "always"))
    options = [item for key, value in config for item in ("-c", f"{key}={value}")]
    if cwd is not None and not (args and args[0].startswith(_REPOSITORY_OPTIONS)):
        isolated = _isolated_at(cwd)
        if isolated is not None:
            options += isolated.options()
    rest = list(args)
    command = 0
    while command < len(rest) and rest[command].startswith(_REPOSITORY_OPTIONS):
        command += 1
    if command < len(rest) and rest[command] in _DIFF_COMMANDS:
        rest[command + 1 : command + 1] = _NO_DIFF_DRIVERS
    return ["git", *options, *rest]


def run(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    extra_env: Mapping[str, str] | None = None,
    date: str | None = None,
    input_text: str | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` (see :func:`command_line`) and return what it did, whatever its exit
    status; a git that cannot be started or does not finish in time raises WorkspaceError."""
    try:
        return subprocess.run(
            command_line(args, cwd),
            cwd=cwd,
            env=env(extra_env, date),
            input=input_text,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkspaceError(f"git {' '.join(args[:2])}: {exc}") from exc


def git(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    extra_env: Mapping[str, str] | None = None,
    date: str | None = None,
    input_text: str | None = None,
    timeout: float = TIMEOUT,
) -> str:
    """Run ``git args`` and return its output; a failure raises WorkspaceError with git's
    message."""
    proc = run(args, cwd, extra_env=extra_env, date=date, input_text=input_text, timeout=timeout)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()[:2000]
        raise WorkspaceError(f"git {' '.join(args[:2])} failed ({proc.returncode}): {message}")
    return proc.stdout


def succeeds(
    args: Sequence[str], cwd: str | os.PathLike[str], input_text: str | None = None
) -> bool:
    """True when ``git args`` exits 0 (a question such as ``cat-file -e``)."""
    return run(args, cwd, input_text=input_text).returncode == 0


# --------------------------------------------------------------------------- isolated git dirs
def _stamp(git_dir: Path) -> tuple[object, ...]:
    """What must not change in a workspace's git directory once it is set up: the directory
    itself, its configuration and its attributes."""
    info = os.lstat(git_dir)
    parts: list[object] = [info.st_dev, info.st_ino, info.st_mode]
    for name in ("config", "info/attributes"):
        try:
            parts.append((git_dir / name).read_bytes())
        except OSError:
            parts.append(None)
    return tuple(parts)


@dataclass(frozen=True)
class _Isolated:
    """A work tree whose git directory lives outside it, as it was set up."""

    work_tree: Path
    git_dir: Path
    stamp: tuple[object, ...]

    def check(self) -> None:
        try:
            same = _stamp(self.git_dir) == self.stamp
        except OSError:
            same = False
        if not same:
            raise WorkspaceError(
                f"the git directory of the workspace {self.work_tree} was changed behind the "
                "orchestrator's back: no git command runs in it any more"
            )

    def options(self) -> list[str]:
        self.check()
        return [f"--git-dir={self.git_dir}", f"--work-tree={self.work_tree}"]


_ISOLATED: dict[str, _Isolated] = {}
_isolated_lock = threading.Lock()


def _isolated_at(path: str | os.PathLike[str]) -> _Isolated | None:
    """The workspace whose work tree holds ``path`` (None when it is in none)."""
    if not _ISOLATED:
        return None
    here = Path(os.path.realpath(path))
    with _isolated_lock:
        for candidate in (here, *here.parents):
            found = _ISOLATED.get(str(candidate))
            if found is not None:
                return found
    return None


def _repository(path: str | os.PathLike[str]) -> str:
    """``path`` as a repository git can read: a workspace's own git directory for its work
    tree (checked first), else ``path`` itself (a mirror, a bare or an ordinary repository)."""
    isolated = _isolated_at(path)
    if isolated is None:
        return os.fspath(path)
    isolated.check()
    return str(isolated.git_dir)


def remove_entry(path: Path) -> None:
    """Remove a file, a link or a directory tree at ``path`` without following any link."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


# --------------------------------------------------------------------------- commits and files
def has_commit(git_dir: str | os.PathLike[str], sha: str) -> bool:
    return succeeds(["cat-file", "-e", f"{sha}^{{commit}}"], git_dir)


def show_file(git_dir: str | os.PathLike[str], sha: str, path: str) -> str:
    """The text of ``path`` in commit ``sha`` (WorkspaceError when it is not there)."""
    return git(["show", f"{sha}:{path}"], git_dir)


def list_files(git_dir: str | os.PathLike[str], sha: str, folder: str) -> list[str]:
    """The names of the files directly in ``folder`` of commit ``sha``."""
    out = git(["ls-tree", "--name-only", sha, folder.rstrip("/") + "/"], git_dir)
    return [line for line in out.splitlines() if line]


def head_sha(workdir: str | os.PathLike[str]) -> str:
    return git(["rev-parse", "HEAD"], workdir).strip()


def init_bare(path: str | os.PathLike[str], default_branch: str = "main") -> None:
    git(["init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)])


def clone_at(
    source: str | os.PathLike[str], sha: str, dest: Path, branch: str | None = None
) -> None:
    """A fresh clone of ``source`` (bare or not, or a workspace) with ``sha`` checked out in
    ``dest``, on ``branch`` when its name is a plain one, else detached.

    The clone is the job's own (its steps may use and change its ``.git``); the orchestrator
    runs nothing in it once it is checked out."""
    origin = _repository(source)
    git(["clone", "--quiet", "--no-hardlinks", "--no-checkout", origin, str(dest)])
    if not has_commit(dest, sha):
        git(["fetch", "--quiet", origin, sha], dest)
    if branch and _BRANCH_RE.fullmatch(branch) and not branch.startswith("-"):
        with contextlib.suppress(WorkspaceError):
            git(["checkout", "--quiet", "-B", branch, sha], dest)
            return
    git(["checkout", "--quiet", "--detach", sha], dest)


# --------------------------------------------------------------------------- pushing
def push_head(remote: GitRemote, workdir: str | os.PathLike[str], repo: str, branch: str) -> str:
    """Push HEAD of the clone ``workdir`` (a workspace's work tree, or a repository) to
    ``branch`` of ``remote``, never forced; returns the pushed sha. ConnectionError for what a
    retry may cure, ProviderError otherwise."""
    try:
        sha = head_sha(workdir)
    except WorkspaceError as exc:
        raise ProviderError(f"{workdir} is not a git work tree with a commit: {exc}") from exc
    proc = run(
        ["push", "--porcelain", "--no-verify", remote.url, f"HEAD:refs/heads/{branch}"],
        workdir,
        extra_env=remote.env,
    )
    if proc.returncode == 0:
        return sha
    detail = redact((proc.stdout + proc.stderr).strip())
    where = f"push of {sha[:12]} to {repo}:{branch}"
    if any(s in detail for s in _REJECTED):
        raise ProviderError(
            f"{where} was rejected (not a fast-forward; the orchestrator never forces a "
            f"push): {detail}"
        )
    if any(s in detail for s in _TRANSIENT):
        raise ConnectionError(f"{where}: {detail}")
    raise ProviderError(f"{where} failed: {detail}")


# --------------------------------------------------------------------------- mirrors
def _slug(repo: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", repo)


class MirrorCache:
    """One local bare mirror per repository, fetched under a file lock (with the same safe
    configuration as every git command: a hook planted in a mirror never runs)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def mirror(self, repo: str, remote: GitRemote, shas: Sequence[str] = ()) -> Path:
        digest = hashlib.sha1(remote.url.encode()).hexdigest()[:8]
        path = self.root / f"{_slug(repo)}-{digest}.git"
        with open(str(path) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                git(["init", "--bare", "--quiet", str(path)], self.root)
            if not shas or not all(has_commit(path, sha) for sha in shas):
                git(
                    [
                        "fetch",
                        "--quiet",
                        "--prune",
                        remote.url,
                        "+refs/heads/*:refs/remotes/origin/*",
                    ],
                    path,
                    extra_env=remote.env,
                )
        return path


# --------------------------------------------------------------------------- workspaces
@dataclass(frozen=True)
class FileChange:
    """One file of a workspace's change: its path, git's status letter (A, M, D, T) and its
    modes before and after (``000000`` when it did not exist)."""

    path: str
    status: str
    old_mode: str
    new_mode: str


def _raw_changes(raw: str) -> list[FileChange]:
    """The entries of ``git diff --raw -z --no-renames``."""
    fields = raw.split("\0")
    out: list[FileChange] = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.lstrip(":").split()
        if len(parts) >= 5 and path:
            out.append(FileChange(path, parts[4][:1], parts[0], parts[1]))
    return out


def _dot_git(name: str) -> bool:
    """A name git takes for ``.git`` on some file system (and so never adds)."""
    lowered = name.lower()
    return lowered.rstrip(". ") == ".git" or lowered == "git~1"


class Workspace:
    """A clone of one commit in a scratch directory (removed when its checkout closes).

    ``path`` is the work tree and holds no ``.git``: the git directory is ``git_dir``, beside
    it, and every git command of the workspace names both. While the workspace is open, git
    commands run with ``path`` (or a folder in it) as their directory use them too (a push of
    the workspace, a clone of it).
    """

    def __init__(
        self, path: Path, base_sha: str, date: str | None = None, *, git_dir: Path
    ) -> None:
        self.path = path
        self.git_dir = git_dir
        self.base_sha = base_sha
        self.date = date
        isolated = _Isolated(Path(os.path.realpath(path)), git_dir, _stamp(git_dir))
        self._isolated = isolated
        with _isolated_lock:
            _ISOLATED[str(isolated.work_tree)] = isolated

    def close(self) -> None:
        """Forget the workspace (its folders are removed by whoever made them)."""
        with _isolated_lock:
            if _ISOLATED.get(str(self._isolated.work_tree)) is self._isolated:
                del _ISOLATED[str(self._isolated.work_tree)]

    def git(self, *args: str, input_text: str | None = None) -> str:
        return git(
            [*self._isolated.options(), *args], self.path, date=self.date, input_text=input_text
        )

    def check_isolated(self) -> None:
        """Raise WorkspaceError unless the work tree is free of any usable git directory: no
        ``.git`` in it, its git directory outside it, and git run from it does not reach the
        workspace's git directory (a repository above the scratch folder is only logged)."""
        if os.path.lexists(self.path / ".git"):
            raise WorkspaceError(f"the work tree {self.path} holds a .git entry")
        work = self.path.resolve()
        if self.git_dir.resolve().is_relative_to(work):
            raise WorkspaceError(f"the git directory of {self.path} is inside its work tree")
        probe = run(["-C", str(self.path), "rev-parse", "--absolute-git-dir"], None, timeout=60)
        if probe.returncode != 0:
            return
        found = Path(probe.stdout.strip()).resolve()
        if found == self.git_dir.resolve() or found.is_relative_to(work):
            raise WorkspaceError(f"git run in the work tree {self.path} finds {found}")
        log.warning("the work tree %s lies inside the repository %s", self.path, found)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def _left_out(self) -> list[str]:
        """What staging leaves out of the work tree: a folder that holds a ``.git`` of its own
        (a repository a command made there) and any entry git refuses as a ``.git`` (a
        ``.GIT``, a ``git~1``), which would make ``git add`` fail."""
        out: list[str] = []
        for folder, dirs, names in os.walk(self.path):
            rel = os.path.relpath(folder, self.path)
            if rel != "." and (".git" in dirs or ".git" in names):
                out.append(rel)
                dirs[:] = []
                continue
            out += [os.path.normpath(os.path.join(rel, n)) for n in [*dirs, *names] if _dot_git(n)]
            dirs[:] = [d for d in dirs if not _dot_git(d)]
        return out

    def _everything(self) -> list[str]:
        """The pathspecs of ``git add -A`` in the work tree: all of it but what
        :meth:`_left_out` says."""
        left_out = self._left_out()
        if [p for p in left_out if p != ".git"]:
            log.warning("left out of the change (a .git of their own): %s", left_out)
        return ["--", ".", *(f":(exclude,literal){p}" for p in left_out)]

    def _stage(self) -> None:
        """Stage the work tree as it is: no ``.git`` anywhere in it is taken, and no
        repository in it becomes a submodule of the change."""
        self.git("add", "-A", *self._everything())
        raw = self.git(
            "diff", "--cached", "--raw", "-z", "--no-renames", "--ignore-submodules=none", "HEAD"
        )
        gitlinks = [c.path for c in _raw_changes(raw) if c.new_mode == "160000"]
        if gitlinks:
            log.warning("repositories inside the work tree are left out: %s", gitlinks)
            self.git("reset", "--quiet", "HEAD", "--", *(f":(literal){p}" for p in gitlinks))

    def file_changes(self) -> list[FileChange]:
        """The files the working tree changes against HEAD, with their modes (a rename is a
        deletion and an addition)."""
        self._stage()
        return _raw_changes(self.git("diff", "--cached", "--raw", "-z", "--no-renames", "HEAD"))

    def diff(self) -> str:
        """Binary-safe patch of the working tree against HEAD (new files included)."""
        self._stage()
        return self.git("diff", "--cached", "--binary", "HEAD")

    def changed_files(self) -> list[str]:
        self._stage()
        out = self.git("diff", "--cached", "--name-only", "HEAD")
        return [line for line in out.splitlines() if line]

    def apply(self, patch: str) -> bool:
        """Apply a patch; False (and nothing changed) when it does not apply cleanly."""
        if not patch.strip():
            return True
        check = run(
            [*self._isolated.options(), "apply", "--check", "--binary", "-"],
            self.path,
            input_text=patch,
        )
        if check.returncode != 0:
            return False
        self.git("apply", "--binary", "-", input_text=patch)
        return True

    def commit(self, message: str) -> str:
        self._stage()
        self.git("commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
        return self.head()

    def reset(self) -> None:
        self.git("reset", "--quiet", "--hard", "HEAD")
        self.git("clean", "-fdq")

    @contextlib.contextmanager
    def tool_repository(self) -> Iterator[Path]:
        """A throw-away repository in the work tree, for a tool that needs one (pre-commit
        lists, stashes and diffs files with git): a new ``.git`` with the files of the work
        tree staged, removed afterwards. The orchestrator never reads it: whatever the tool
        does to it stays in it."""
        decoy = self.path / ".git"
        remove_entry(decoy)
        try:
            git(["init", "--quiet", str(self.path)], None)
            (decoy / "info").mkdir(exist_ok=True)
            (decoy / "info" / "attributes").write_text(NO_DRIVERS, encoding="utf-8")
            repository = [f"--git-dir={decoy}", f"--work-tree={self.path}"]
            git([*repository, "add", "-A", *self._everything()], self.path)
            yield decoy
        finally:
            remove_entry(decoy)


def _set_up_git_dir(git_dir: Path) -> None:
    """Make a fresh workspace git directory inert: no driver from any ``.gitattributes``."""
    info = git_dir / "info"
    info.mkdir(exist_ok=True)
    (info / "attributes").write_text(NO_DRIVERS, encoding="utf-8")


@contextlib.contextmanager
def checkout(
    mirror: Path, sha: str, date: str | None = None, keep: bool = False
) -> Iterator[Workspace]:
    """A fresh clone of ``sha`` from ``mirror`` in a marked scratch directory: the work tree
    ``repo`` and, beside it, its git directory ``git``."""
    tmp = make_scratch("cicd-ws-")
    try:
        work, git_dir = tmp / "repo", tmp / "git"
        git(
            [
                "clone",
                "--quiet",
                "--no-checkout",
                f"--separate-git-dir={git_dir}",
                str(mirror),
                str(work),
            ],
            tmp,
        )
        remove_entry(work / ".git")  # the link clone leaves to the git directory
        _set_up_git_dir(git_dir)
        ws = Workspace(work, sha, date, git_dir=git_dir)
        try:
            ws.git("checkout", "--quiet", "-B", "cicd-work", sha)
            ws.check_isolated()
            yield ws
        finally:
            ws.close()
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
