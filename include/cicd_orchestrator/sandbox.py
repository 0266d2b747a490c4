"""Repository commands out of reach of the orchestrator's own process and files.

A repository's commands (the workflow steps the local runner replays, the repair tools the
fixers run) get an allow-listed environment, but they run as the same user as the Airflow
worker: without more, a hostile repository could read ``/proc/<worker pid>/environ`` (the
metadata database URL, the Celery result backend, connections) or ``airflow.cfg``, the
SQLite database and the auth manager's passwords file.

:func:`prepare` wraps a command so that it runs in new user, mount and pid namespaces
(util-linux ``unshare``) with a fresh ``/proc``: the worker's processes are not there. Before
the command starts, the files that hold the deployment's secrets are hidden (``/dev/null``
bound over a file, an empty read-only tmpfs over a directory), then every capability is
dropped (``setpriv``), so the command cannot undo the masks. The chain runs with an
environment of its own; the command's environment is restored only after the capabilities
are gone (nothing in it, ``LD_PRELOAD`` say, reaches the privileged steps).

Inside, a small init (``sh``) runs the command as its child and exits with its status; when
the init ends, the kernel kills whatever is left in the namespace, so killing the process
group of the wrapper kills everything the command started, daemons included. With
``linger=True`` the init reports the command's status and stays while the command's
background processes run (a workflow step may start a server for the next steps); the
caller then kills the group when it is done with them.

The mode comes from the configuration key ``command_sandbox`` (see :func:`configure`) or,
overriding it, the environment variable ``CICD_COMMAND_SANDBOX``:

- ``auto`` (default): sandbox when the machine supports it, else run plainly (one warning);
- ``required``: refuse to run a command when the sandbox is not available;
- ``off``: run plainly.

Whether the namespaces work is probed once per process. Inside the sandbox a command's
stdin is ``/dev/null``; a command killed by a signal reports ``128 + signal`` as a shell
does; an environment variable whose name is not a shell name (``A-B``) does not reach it.
"""

from __future__ import annotations

import configparser
import contextlib
import errno
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cicd_orchestrator.exceptions import WorkspaceError

log = logging.getLogger(__name__)

MODES = ("auto", "required", "off")
DEFAULT_MODE = "auto"
ENV_VAR = "CICD_COMMAND_SANDBOX"
#: the exit status of a sandboxed command whose masks could not be put in place
EXIT_MASK_FAILED = 125
_TOOL_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin")
_PROBE_TIMEOUT = 20.0
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: the ways to map the user into the new user namespace, best first
_USER_MAPPINGS: tuple[tuple[str, ...], ...] = (
    ("--map-current-user", "--keep-caps"),  # the command keeps its own uid
    ("--map-root-user",),  # older util-linux: the command is uid 0 of its namespace
)


class SandboxUnavailableError(WorkspaceError):
    """The command sandbox is required but this machine cannot provide it."""


@dataclass(frozen=True)
class _Tools:
    unshare: str
    setpriv: str
    mount: str
    shell: str
    sleep: str
    user_flags: tuple[str, ...] = ()


_lock = threading.Lock()
_configured: str | None = None
_state: _Tools | str | None = None  # the probe's result: tools, or why not
_warned = False
_cfg_cache: dict[tuple[str, int], configparser.RawConfigParser] = {}


# --------------------------------------------------------------------------- the mode
def configure(mode: str | None) -> None:
    """Set the mode from the configuration (``None``: back to the default)."""
    global _configured
    if mode is not None and mode not in MODES:
        raise ValueError(f"command_sandbox must be one of {', '.join(MODES)}, not {mode!r}")
    _configured = mode


def mode() -> str:
    """The mode in force: ``CICD_COMMAND_SANDBOX`` when set, else the configured one.

    An unknown value of the variable counts as ``required`` (a typo does not switch the
    sandbox off)."""
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw:
        if raw in MODES:
            return raw
        log.warning("%s=%r is not one of %s: treated as 'required'", ENV_VAR, raw, MODES)
        return "required"
    return _configured or DEFAULT_MODE


def reset() -> None:
    """Forget the probe's result (the next command probes again)."""
    global _state, _warned
    with _lock:
        _state = None
        _warned = False
        _cfg_cache.clear()


def unavailable_reason() -> str | None:
    """None when the sandbox works on this machine, else why not (probed once)."""
    state = _tools()
    return state if isinstance(state, str) else None


def _tools() -> _Tools | str:
    global _state
    with _lock:
        if _state is None:
            _state = _probe()
            if isinstance(_state, str):
                log.info("command sandbox unavailable: %s", _state)
            else:
                log.info("command sandbox available (%s)", " ".join(_state.user_flags))
        return _state


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join(_TOOL_DIRS))


def _probe() -> _Tools | str:
    """Run a check inside the sandbox: a masked file and directory, a fresh ``/proc``, no
    capability left, the exit status passed through."""
    found = {n: _which(n) for n in ("unshare", "setpriv", "mount", "sleep")}
    found["sh"] = _which("dash") or _which("sh")
    missing = sorted(n for n, p in found.items() if p is None)
    if missing:
        return f"{', '.join(missing)} not found (util-linux is needed)"
    shell = found["sh"] or "sh"
    reasons = []
    with tempfile.TemporaryDirectory(prefix="cicd-sandbox-probe-") as tmp:
        secret = Path(tmp, "secret")
        secret.write_text("probe\n")
        hidden = Path(tmp, "dir")
        hidden.mkdir()
        (hidden / "file").write_text("probe\n")
        check = (
            '[ ! -s "$1" ] || { echo "the masked file is readable"; exit 1; }\n'
            '[ ! -e "$2/file" ] || { echo "the masked directory is visible"; exit 1; }\n'
            "set -- /proc/[0-9]*\n"
            '[ "$#" -le 4 ] || { echo "/proc shows $# processes"; exit 1; }\n'
            "while read -r key value; do\n"
            '  [ "$key" != CapEff: ] || [ "$value" = 0000000000000000 ] '
            '|| { echo "capabilities left: $value"; exit 1; }\n'
            "done < /proc/self/status\n"
            "exit 7\n"
        )
        for flags in _USER_MAPPINGS:
            tools = _Tools(
                unshare=found["unshare"] or "",
                setpriv=found["setpriv"] or "",
                mount=found["mount"] or "",
                shell=shell,
                sleep=found["sleep"] or "",
                user_flags=flags,
            )
            argv = [shell, "-c", check, "probe", str(secret), str(hidden)]
            masks = [(str(secret), False), (str(hidden), True)]
            launch = _build(tools, argv, {"PATH": "/usr/bin:/bin"}, masks, linger=False)
            try:
                proc = subprocess.run(
                    launch.argv,
                    cwd=tmp,
                    env=launch.env,
                    stdin=launch.stdin,
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                reasons.append(f"{flags[0]}: {exc}")
                continue
            finally:
                launch.close()
            if proc.returncode == 7:
                return tools
            out = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
            reasons.append(f"{flags[0]}: exit {proc.returncode}: {out[-300:]}")
    return "unshare does not work here: " + "; ".join(reasons)


# --------------------------------------------------------------------------- what to hide
def _airflow_home(environ: Mapping[str, str]) -> str:
    return environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")


def _airflow_cfg(environ: Mapping[str, str]) -> configparser.RawConfigParser | None:
    path = environ.get("AIRFLOW_CONFIG") or os.path.join(_airflow_home(environ), "airflow.cfg")
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    key = (path, stamp)
    if key not in _cfg_cache:
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            parser = configparser.RawConfigParser()
        _cfg_cache.clear()
        _cfg_cache[key] = parser
    return _cfg_cache[key]


def _airflow_setting(environ: Mapping[str, str], section: str, key: str) -> str | None:
    """An Airflow setting as the worker sees it: its variable, else ``airflow.cfg``."""
    value = environ.get(f"AIRFLOW__{section.upper()}__{key.upper()}")
    if value:
        return value
    cfg = _airflow_cfg(environ)
    if cfg is not None and cfg.has_option(section, key):
        raw = cfg.get(section, key).strip()
        return raw.replace("{AIRFLOW_HOME}", _airflow_home(environ)) or None
    return None


def sqlite_path(url: str) -> str | None:
    """The database file of a SQLAlchemy SQLite URL (None for another database)."""
    m = re.match(r"^sqlite(?:\+\w+)?:///(.*)$", url.strip())
    if not m:
        return None
    path = m.group(1).split("?", 1)[0]
    if path.startswith("file:"):
        path = path[len("file:") :]
    if not path or path == ":memory:":
        return None
    return os.path.abspath(path)


def sensitive_paths(environ: Mapping[str, str] | None = None) -> list[str]:
    """The deployment's files that a repository command must not read (existing or not)."""
    env = os.environ if environ is None else environ
    home = _airflow_home(env)
    paths = [os.path.join(home, "airflow.cfg"), os.path.join(home, "webserver_config.py")]
    if env.get("AIRFLOW_CONFIG"):
        paths.append(env["AIRFLOW_CONFIG"])
    dbs = [os.path.join(home, "airflow.db")]
    for section in ("database", "core"):  # [core] is where Airflow 2 had it
        url = _airflow_setting(env, section, "sql_alchemy_conn")
        db = sqlite_path(url) if url else None
        if db:
            dbs.append(db)
    for db in dbs:
        paths += [db, db + "-journal", db + "-wal", db + "-shm"]
    passwords = _airflow_setting(env, "core", "simple_auth_manager_passwords_file")
    paths.append(passwords or os.path.join(home, "simple_auth_manager_passwords.json.generated"))
    return list(dict.fromkeys(os.path.abspath(os.path.expanduser(p)) for p in paths))


def masks_for(
    cwd: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[tuple[str, bool]]:
    """The existing sensitive paths to hide, resolved, as (path, is_directory); never the
    working directory or one of its parents."""
    work = os.path.realpath(cwd)
    out: dict[str, bool] = {}
    for path in sensitive_paths(environ):
        if not os.path.exists(path):
            continue
        real = os.path.realpath(path)
        if real == work or work.startswith(real.rstrip("/") + "/"):
            log.warning("command sandbox: not hiding %s, it holds the working directory", real)
            continue
        out[real] = os.path.isdir(real)
    return list(out.items())


def _fstab_field(path: str) -> str:
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


# --------------------------------------------------------------------------- wrapping
@dataclass
class Launch:
    """How to start a (possibly sandboxed) command: pass these to ``subprocess.Popen``."""

    argv: list[str]
    env: dict[str, str]
    stdin: int
    sandboxed: bool
    lingers: bool = False
    _memfd: int | None = field(default=None, repr=False)
    _status_at: int = field(default=0, repr=False)

    def exit_status(self) -> int | None:
        """A lingering sandbox: the command's exit status once it has ended, else None."""
        if self._memfd is None or not self.lingers:
            return None
        try:
            raw = os.pread(self._memfd, 32, self._status_at)
        except OSError:
            return None
        if not raw.endswith(b"\n"):
            return None
        try:
            return int(raw.strip())
        except ValueError:
            return None

    def start(self, cwd: str | os.PathLike[str]) -> tuple[subprocess.Popen[bytes], int]:
        """Start the command in a session of its own, stdout and stderr into one pipe; returns
        the process and the pipe's read end (the caller closes it)."""
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                self.argv,
                cwd=cwd,
                env=self.env,
                stdin=self.stdin,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return proc, read_fd

    def close(self) -> None:
        if self._memfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._memfd)
            self._memfd = None

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(argv0: str, cwd: str | os.PathLike[str], env: Mapping[str, str]) -> str:
    """``argv[0]`` as ``subprocess`` would find it; the same errors when it cannot."""
    if "/" in argv0:
        path = os.path.join(os.fspath(cwd), argv0)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv0)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), argv0)
        return argv0
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv0)
    return os.path.abspath(found)


def _build(
    tools: _Tools,
    argv: Sequence[str],
    env: Mapping[str, str],
    masks: Sequence[tuple[str, bool]],
    linger: bool,
) -> Launch:
    q = shlex.quote
    # the privileged part: hide the files, drop every capability, start the init
    outer = (
        'if [ "$1" = 1 ]; then\n'
        f"  {q(tools.mount)} -a -T /dev/stdin 2>&1 || {{ echo 'cicd-orchestrator: the command "
        "sandbox could not hide the orchestrator files: the command was not run'; "
        f"exit {EXIT_MASK_FAILED}; }}\n"
        "fi\n"
        "init=$2; shift 2\n"
        f"exec {q(tools.setpriv)} --inh-caps=-all --ambient-caps=-all --bounding-set=-all "
        f'-- {q(tools.shell)} -c "$init" sh "$@"\n'
    )
    # the unprivileged init: the command's environment back, the command, its status
    prefix = f"CICD_SANDBOX_{uuid.uuid4().hex[:8]}_"
    wrapper_env: dict[str, str] = {}
    names: list[tuple[str, str]] = []
    for i, (key, value) in enumerate(env.items()):
        if _NAME_RE.match(key):
            wrapper_env[f"{prefix}{i}"] = value
            names.append((key, f"{prefix}{i}"))
        else:
            wrapper_env[key] = value  # no loader reads it; the shell does not pass it on
    lines = ["exec 3<&0 </dev/null" if linger else "exec </dev/null"]
    if names:
        lines.append("export " + " ".join(f'{k}="${v}"' for k, v in names))
        lines.append("unset " + " ".join(v for _, v in names))
    if "PWD" not in env:
        lines.append("unset PWD")
    if linger:
        lines += [
            '"$@" 3<&-',
            "s=$?",
            # the status goes after the fstab in the shared memory file; when it cannot be
            # written, the init ends (and the background processes with it)
            'printf "%s\\n" "$s" >&3 || exit "$s"',
            "exec 3<&- >/dev/null 2>&1",
            "while :; do",
            "  set -- /proc/[0-9]*",
            '  [ "$#" -gt 1 ] || exit "$s"',
            f"  {q(tools.sleep)} 1",
            "done",
        ]
    else:
        lines += ['"$@"', 'exit "$?"']
    init = "\n".join(lines) + "\n"
    fstab = "".join(
        f"tmpfs {_fstab_field(p)} tmpfs ro,nosuid,nodev,noexec,size=4k,mode=0755 0 0\n"
        if is_dir
        else f"/dev/null {_fstab_field(p)} none bind 0 0\n"
        for p, is_dir in masks
    ).encode()
    memfd: int | None = None
    if fstab or linger:
        memfd = os.memfd_create("cicd-sandbox")
        if fstab:
            os.write(memfd, fstab)
    wrapped = [
        tools.unshare,
        *tools.user_flags,
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
        tools.shell,
        "-c",
        outer,
        "sh",
        "1" if fstab else "0",
        init,
        *argv,
    ]
    return Launch(
        argv=wrapped,
        env=wrapper_env,
        stdin=memfd if memfd is not None else subprocess.DEVNULL,
        sandboxed=True,
        lingers=linger,
        _memfd=memfd,
        _status_at=len(fstab),
    )


def prepare(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    linger: bool = False,
) -> Launch:
    """How to start ``argv`` in ``cwd`` with ``env``, sandboxed when the mode says so.

    Raises :class:`SandboxUnavailableError` in ``required`` mode when the sandbox does not
    work here, and ``FileNotFoundError``/``PermissionError`` when ``argv[0]`` cannot be run
    (as ``subprocess`` does). ``linger``: see the module's docstring; read the command's
    status with :meth:`Launch.exit_status`. Close the result once the command has ended.
    """
    global _warned
    plain = Launch(list(argv), dict(env), subprocess.DEVNULL, sandboxed=False)
    chosen = mode()
    if chosen == "off" or not argv:
        return plain
    tools = _tools()
    if isinstance(tools, str):
        if chosen == "required":
            raise SandboxUnavailableError(
                f"the command sandbox is required ({ENV_VAR} or command_sandbox) but "
                f"unavailable: {tools}; {argv[0]} was not run"
            )
        with _lock:
            warn, _warned = not _warned, True
        if warn:
            log.warning(
                "command sandbox unavailable, repository commands run unisolated: %s", tools
            )
        return plain
    first = _resolve(argv[0], cwd, env)
    return _build(tools, [first, *argv[1:]], env, masks_for(cwd), linger)
