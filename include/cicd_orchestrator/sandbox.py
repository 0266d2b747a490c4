"""Repository commands in a sandbox by allowlist: they see their own folders and nothing else
of the host.

A repository's commands (the workflow steps the local runner replays, the repair tools the
fixers run) are hostile: they run on a worker that holds the hosting token, the Fernet key,
the metadata database and the JWT secret. :func:`prepare` wraps a command in bubblewrap
(``bwrap``, Debian's ``bubblewrap``), which starts from an empty root and adds only:

- read-only: ``/usr``, ``/bin``, ``/sbin``, ``/lib*`` and the few files of ``/etc`` that
  programs need (users and groups, name service and resolver settings, TLS certificates,
  the loader's cache, ``alternatives``), the runner tool folder
  (:mod:`cicd_orchestrator.runner_tools`; with, for a virtual environment, the installation
  of its interpreter), and any extra ``readable`` folder of the caller;
- read-write: the command's working directory, or the folders the caller names as
  ``writable`` (a replayed job's workspace, ``RUNNER_TEMP``, ``HOME`` and ``TMPDIR``);
- private: an empty ``/tmp``, the command's ``HOME`` and ``TMPDIR`` when they are not in a
  writable folder, a fresh ``/proc`` and a minimal ``/dev``.

Nothing else is there: not the orchestrator's virtual environment, the worker's home
(``~/.gitconfig``, caches), the mirrors, other sessions' clones and jobs, Airflow's files,
nor ``/proc`` of the worker's processes. The command runs in new user, pid, mount, ipc, uts
and network namespaces (``--unshare-all``), without nested user namespaces where bubblewrap
can forbid them, with every capability dropped, in a session of its own, and dies with the
process that started it. Its environment is exactly what the caller passes (``--clearenv``
then each variable; they go to bubblewrap through a file descriptor, not its command line,
and bubblewrap itself runs with an empty environment, so nothing the repository sets, say
``LD_PRELOAD``, reaches the host side).

Limits (:class:`Limits`, set with util-linux ``prlimit`` inside the sandbox): processes
(``RLIMIT_NPROC``, counted in the sandbox's own user namespace on Linux 5.14 and later),
address space, file size and open files. The kernel does not hold root to ``RLIMIT_NPROC``:
a worker that runs as root also puts each sandbox in a ``pids`` cgroup of its own capped at
the same number, where it may create one (else it says once that processes are not capped).
Time and output are the callers' (a timeout and an output cap).

Network: none (a loopback device only). With ``network`` (host names; the configuration key
``job_network_allowlist`` for replayed CI steps, never for repair tools), the sandbox gets
the Unix socket of an egress proxy that runs outside (:mod:`cicd_orchestrator.egress`: the
listed registries only, never loopback, link-local, private or this host's addresses), a
tiny forwarder on the sandbox's own loopback (``127.0.0.1:3128``) in front of it, and
``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` set for the command. Every command has a
network namespace of its own: steps of one job do not share one (a server that a step
leaves running is reachable by the next steps through files and FIFOs in the job's folders,
not through the network).

The process tree: the outer ``bwrap`` is the caller's child (in a process group of its
own), the sandbox's init is pid 1 of the new pid namespace; when it ends, the kernel kills
whatever is left in the namespace, so killing the group of the outer ``bwrap`` kills
everything the command started, daemons included. With ``linger=True`` a small ``sh`` init
reports the command's status and stays while the command's background processes run (a
workflow step may start a server for the next steps); the caller then kills the group when
it is done with them. A command killed by a signal reports ``128 + signal``, as a shell
does; its stdin is ``/dev/null``.

The mode comes from :func:`configure` (the Airflow glue calls it with the configuration key
``command_sandbox``); the environment variable ``CICD_COMMAND_SANDBOX`` overrides it:

- ``required`` (default): refuse to run a command when the sandbox does not work here;
- ``auto``: sandbox when the machine supports it, else run plainly, with a loud warning
  (the demo only: a plain command sees the whole host and its network);
- ``off``: run plainly.

Whether the sandbox works is probed once per process.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cicd_orchestrator import egress, runner_tools
from cicd_orchestrator.exceptions import WorkspaceError

log = logging.getLogger(__name__)

MODES = ("auto", "required", "off")
DEFAULT_MODE = "required"
ENV_VAR = "CICD_COMMAND_SANDBOX"
#: the exit status of a sandboxed command whose sandbox could not be set up
EXIT_SETUP_FAILED = 125
#: the egress forwarder's port on the sandbox's own loopback, and the proxy socket inside
PROXY_PORT = 3128
PROXY_SOCKET = "/run/cicd-egress.sock"
_TOOL_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: what of /etc a command sees (read-only, when present)
_ETC = (
    "passwd",
    "group",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "resolv.conf",
    "gai.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "mime.types",
    "protocols",
    "services",
    "os-release",
    "debian_version",
    "lsb-release",
)
_ETC_GLOBS = ("python3*", "java*")
_PROBE_TIMEOUT = 20.0
_NO_NESTED_USERNS = ("--disable-userns",)
GiB = 1 << 30


class SandboxUnavailableError(WorkspaceError):
    """The command sandbox is required but this machine cannot provide it."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of a sandboxed command (soft and hard; never above the caller's)."""

    processes: int = 4096
    address_space: int = 16 * GiB
    file_size: int = 4 * GiB
    open_files: int = 4096

    def prlimit_args(self) -> list[str]:
        wanted = (
            ("--nproc", resource.RLIMIT_NPROC, self.processes),
            ("--as", resource.RLIMIT_AS, self.address_space),
            ("--fsize", resource.RLIMIT_FSIZE, self.file_size),
            ("--nofile", resource.RLIMIT_NOFILE, self.open_files),
        )
        out = []
        for flag, which, value in wanted:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            out.append(f"{flag}={value}:{value}")
        return out


@dataclass(frozen=True)
class _Tools:
    bwrap: str
    prlimit: str
    shell: str
    sleep: str
    env: str
    flags: tuple[str, ...] = ()
    nsenter: str | None = None  # joins a job's pod network (util-linux)


_lock = threading.Lock()
_configured: str | None = None
_limits = Limits()
_state: _Tools | str | None = None  # the probe's result: tools, or why not
_warned = False


# --------------------------------------------------------------------------- the mode
def configure(mode: str | None, *, limits: Limits | None = None) -> None:
    """Set the mode (``None``: back to the default) and the limits (``None``: the
    defaults). A later fallback of ``auto`` warns again."""
    global _configured, _limits, _warned
    if mode is not None and mode not in MODES:
        raise ValueError(f"command_sandbox must be one of {', '.join(MODES)}, not {mode!r}")
    _configured = mode
    _limits = limits or Limits()
    with _lock:
        _warned = False


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


def limits() -> Limits:
    """The limits in force."""
    return _limits


def reset() -> None:
    """Forget the probe's result (the next command probes again)."""
    global _state, _warned
    with _lock:
        _state = None
        _warned = False


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
                log.info("command sandbox available (bwrap %s)", " ".join(_state.flags))
        return _state


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join(_TOOL_DIRS))


_PROBE_CHECK = (
    '[ ! -e "$1" ] || { echo "a host folder is visible"; exit 1; }\n'
    "set -- /proc/[0-9]*\n"
    '[ "$#" -le 4 ] || { echo "/proc shows $# processes"; exit 1; }\n'
    "while read -r key value; do\n"
    '  [ "$key" != CapEff: ] || [ "$value" = 0000000000000000 ] '
    '|| { echo "capabilities left: $value"; exit 1; }\n'
    "done < /proc/self/status\n"
    "exit 7\n"
)


def _probe() -> _Tools | str:
    """Run a check in the sandbox: a host folder out of sight, a fresh ``/proc``, no
    capability left, the exit status passed through."""
    if _which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed (Debian package bubblewrap)"
    found = {n: _which(n) for n in ("prlimit", "sleep", "env")}
    missing = sorted(n for n, p in found.items() if p is None)
    if missing:
        return f"{', '.join(missing)} not found (util-linux and coreutils are needed)"
    shell = _which("dash") or _which("sh") or "/bin/sh"
    reasons = []
    with tempfile.TemporaryDirectory(prefix="cicd-sandbox-probe-") as tmp:
        hidden = Path(tmp, "host-only")
        hidden.mkdir()
        work = Path(tmp, "work")
        work.mkdir()
        for flags in (_NO_NESTED_USERNS, ()):
            tools = _Tools(
                bwrap=_which("bwrap") or "bwrap",
                prlimit=found["prlimit"] or "",
                shell=shell,
                sleep=found["sleep"] or "",
                env=found["env"] or "",
                flags=flags,
                nsenter=_which("nsenter"),
            )
            argv = [shell, "-c", _PROBE_CHECK, "probe", str(hidden)]
            launch = _build(
                tools,
                argv,
                cwd=str(work),
                env={"PATH": "/usr/bin:/bin"},
                plan=_Plan(writable=[str(work)], readable=[], cgroup=False),
                linger=False,
            )
            try:
                proc = subprocess.run(
                    launch.argv,
                    cwd=tmp,
                    env=launch.env,
                    stdin=launch.stdin,
                    pass_fds=launch.pass_fds,
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                reasons.append(f"bwrap {' '.join(flags)}: {exc}")
                continue
            finally:
                launch.close()
            if proc.returncode == 7:
                return tools
            out = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
            reasons.append(f"bwrap {' '.join(flags)}: exit {proc.returncode}: {out[-300:]}")
    return "bubblewrap does not work here: " + "; ".join(reasons)


# --------------------------------------------------------------------------- pids cgroup
_CGROUP_PREFIX = "cicd-sandbox-"
_CGROUP_STALE_SECONDS = 60  # younger ones may be joining their sandbox
_cgroup_base: str | bool | None = False  # False: not looked for yet


def _own_pids_cgroup() -> str | None:
    """The folder of this process' ``pids`` cgroup (v1 hierarchy or v2), or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _num, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return os.path.join("/sys/fs/cgroup/pids", path.lstrip("/"))
    for line in lines:
        if line.startswith("0::"):
            base = "/sys/fs/cgroup"
            try:
                if "pids" in Path(base, "cgroup.controllers").read_text().split():
                    return os.path.join(base, line[3:].lstrip("/"))
            except OSError:
                return None
    return None


def _cgroup_usable(base: str) -> bool:
    probe = os.path.join(base, f"{_CGROUP_PREFIX}probe-{os.getpid()}")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        Path(probe, "pids.max").write_text("10\n")
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)


def _pids_cgroup_base() -> str | None:
    """Where a root worker makes the sandboxes' ``pids`` cgroups (None: it cannot)."""
    global _cgroup_base
    with _lock:
        if _cgroup_base is False:
            base = _own_pids_cgroup()
            _cgroup_base = base if base and _cgroup_usable(base) else None
            if _cgroup_base is None:
                log.warning(
                    "the worker runs as root, which RLIMIT_NPROC does not hold, and no pids "
                    "cgroup can be made here: the processes of sandboxed commands are not capped"
                )
        return _cgroup_base if isinstance(_cgroup_base, str) else None


def _sweep_cgroups(base: str) -> None:
    """Remove the cgroups of ended sandboxes (a busy one is refused by the kernel)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            if not entry.name.startswith(_CGROUP_PREFIX) or "probe" in entry.name:
                continue
            stamp = entry.name[len(_CGROUP_PREFIX) :].split("-", 1)[0]
            if stamp.isdigit() and now - int(stamp) > _CGROUP_STALE_SECONDS:
                with contextlib.suppress(OSError):
                    os.rmdir(entry.path)


def _remove_cgroup(path: str, wait: float) -> None:
    """Remove a sandbox's cgroup once its processes are gone (killed ones take a moment);
    one still busy (a step's background processes) is left to a later sweep."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)


def _pids_cgroup(processes: int) -> str | None:
    """A new ``pids`` cgroup capped at ``processes`` for one sandbox of a root worker."""
    if os.geteuid() != 0:
        return None  # RLIMIT_NPROC holds
    base = _pids_cgroup_base()
    if base is None:
        return None
    _sweep_cgroups(base)
    path = os.path.join(base, f"{_CGROUP_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(path)
        Path(path, "pids.max").write_text(f"{processes}\n")
    except OSError as exc:
        log.warning("cannot make a pids cgroup for a sandbox: %s", exc)
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return None
    return path


# --------------------------------------------------------------------------- launching
@dataclass
class Launch:
    """How to start a (possibly sandboxed) command: pass these to ``subprocess.Popen``."""

    argv: list[str]
    env: dict[str, str]
    stdin: int
    sandboxed: bool
    lingers: bool = False
    pass_fds: tuple[int, ...] = ()
    _fds: list[int] = field(default_factory=list, repr=False)
    _status_fd: int | None = field(default=None, repr=False)
    _cgroup: str | None = field(default=None, repr=False)

    def exit_status(self) -> int | None:
        """A lingering sandbox: the command's exit status once it has ended, else None."""
        if self._status_fd is None or not self.lingers:
            return None
        try:
            raw = os.pread(self._status_fd, 32, 0)
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
                pass_fds=self.pass_fds,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return proc, read_fd

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self._status_fd = None
        if self._cgroup is not None:
            _remove_cgroup(self._cgroup, wait=0.0 if self.lingers else 2.0)
            self._cgroup = None

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


@dataclass
class _Plan:
    """What a sandbox shows besides the system: folders read-write and read-only, the proxy."""

    writable: list[str]
    readable: list[str]
    proxy_socket: str | None = None
    python: str | None = None  # runs the egress forwarder
    limits: Limits = field(default_factory=Limits)
    cgroup: bool = True  # a pids cgroup for a root worker (not for the probe)
    netns: str | None = None  # a network namespace to join instead of a new one
    hosts_file: str | None = None  # shown as /etc/hosts


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(runner_tools.inside(path, f) for f in folders)


def _system_args() -> list[str]:
    args: list[str] = []
    for d in _SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    etc = [Path("/etc", name) for name in _ETC]
    for pattern in _ETC_GLOBS:
        etc += sorted(Path("/etc").glob(pattern))
    for path in dict.fromkeys(etc):
        args += ["--ro-bind-try", str(path), str(path)]
    return [*args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/run"]


def _folder_args(plan: _Plan, env: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for d in plan.readable:
        if not _under(d, ("/usr",)) and os.path.isdir(d):
            args += ["--ro-bind", os.path.realpath(d), os.path.abspath(d)]
    for d in plan.writable:
        args += ["--bind", os.path.realpath(d), os.path.abspath(d)]
    for key in ("HOME", "TMPDIR"):
        path = env.get(key, "")
        if not os.path.isabs(path) or path in ("/", "/tmp"):
            continue
        if _under(path, ["/tmp", *plan.writable]):
            args += ["--dir", os.path.abspath(path)]
        elif not _under(path, [*_SYSTEM_DIRS, "/etc", "/proc", "/dev", *plan.readable]):
            args += ["--tmpfs", os.path.abspath(path)]
    if plan.proxy_socket:
        args += ["--ro-bind", plan.proxy_socket, PROXY_SOCKET]
    if plan.hosts_file:
        args += ["--ro-bind", plan.hosts_file, "/etc/hosts"]
    return args


# the forwarder in the sandbox: each connection to its loopback port goes to the proxy socket
FORWARDER = r"""
import os, socket, sys, threading
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(c):
    u = socket.socket(socket.AF_UNIX)
    try:
        u.connect(sys.argv[1])
    except OSError:
        c.close()
        return
    t = threading.Thread(target=pipe, args=(u, c), daemon=True)
    t.start()
    pipe(c, u)
    t.join()
    c.close()
    u.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2])))
s.listen(64)
print("ok", flush=True)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def _init_script(tools: _Tools, plan: _Plan, linger: bool) -> str:
    """The sandbox's ``sh`` init: the egress forwarder, the command, its status (lingering:
    on fd 3, then wait for its background processes)."""
    q = shlex.quote
    lines = ["exec 3<&0 </dev/null" if linger else "exec </dev/null", "fwd="]
    if plan.proxy_socket and plan.python:
        lines += [
            "fifo=/tmp/.cicd-egress-$$",
            f'mkfifo "$fifo" || exit {EXIT_SETUP_FAILED}',
            f"{q(plan.python)} -I -S -c {q(FORWARDER)} {PROXY_SOCKET} {PROXY_PORT} "
            '>"$fifo" 2>/dev/null 3<&- &',
            "fwd=$!",
            'read -r ok <"$fifo"',
            'rm -f "$fifo"',
            '[ "$ok" = ok ] || { echo "cicd-orchestrator: the egress proxy could not start '
            f'in the sandbox" >&2; exit {EXIT_SETUP_FAILED}; }}',
        ]
    if not linger:
        return "\n".join([*lines, '"$@"', 'exit "$?"']) + "\n"
    lines += [
        '"$@" 3<&-',
        "s=$?",
        # when the status cannot be written, the init ends (and the background with it)
        'printf "%s\\n" "$s" >&3 || exit "$s"',
        "exec 3<&- >/dev/null 2>&1",
        "while :; do",
        "  n=0",
        "  for p in /proc/[0-9]*; do",
        "    p=${p#/proc/}",
        '    [ "$p" = 1 ] || [ "$p" = "$$" ] || [ "$p" = "$fwd" ] || n=$((n+1))',
        "  done",
        '  [ "$n" -gt 0 ] || exit "$s"',
        f"  {q(tools.sleep)} 1",
        "done",
    ]
    return "\n".join(lines) + "\n"


def proxy_env(env: Mapping[str, str]) -> dict[str, str]:
    url = f"http://127.0.0.1:{PROXY_PORT}"
    out = dict(env)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        out[key] = url
    for key in ("NO_PROXY", "no_proxy"):
        out[key] = "localhost,127.0.0.1,::1"
    for key in ("ALL_PROXY", "all_proxy"):
        out.pop(key, None)
    return out


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _build(
    tools: _Tools,
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    plan: _Plan,
    linger: bool,
) -> Launch:
    if plan.proxy_socket:
        env = proxy_env(env)
    options = [
        "--unshare-all",
        "--unshare-user",
        *(["--share-net"] if plan.netns else []),
        *tools.flags,
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
    ]
    for key, value in env.items():
        if key and "=" not in key and "\0" not in key + value:
            options += ["--setenv", key, value]
    options += _system_args() + _folder_args(plan, env)
    options += ["--remount-ro", "/", "--chdir", os.path.abspath(cwd)]
    args_fd = _memfd("cicd-sandbox-args", b"".join(o.encode() + b"\0" for o in options))
    fds = [args_fd]
    inner = [tools.prlimit, *plan.limits.prlimit_args(), "--"]
    if "PWD" not in env:  # bubblewrap sets it; a plain command does not get it either
        inner += [tools.env, "-u", "PWD"]
    stdin = subprocess.DEVNULL
    status_fd = None
    if linger or plan.proxy_socket:
        inner += [tools.shell, "-c", _init_script(tools, plan, linger), "sh"]
    if linger:
        status_fd = os.memfd_create("cicd-sandbox-status")
        fds.append(status_fd)
        stdin = status_fd
    outer = [tools.bwrap, "--args", str(args_fd), "--", *inner, *argv]
    if plan.netns and tools.nsenter:  # the outer bwrap starts in that network (a job's pod)
        outer = [tools.nsenter, f"--net={plan.netns}", *outer]
    cgroup = _pids_cgroup(plan.limits.processes) if plan.cgroup else None
    if cgroup is not None:  # the wrapper joins the cgroup, then becomes bwrap
        join = f'echo $$ > "$0/cgroup.procs" || exit {EXIT_SETUP_FAILED}; exec "$@"'
        outer = [tools.shell, "-c", join, cgroup, *outer]
    return Launch(
        argv=outer,
        env={},
        stdin=stdin,
        sandboxed=True,
        lingers=linger,
        pass_fds=(args_fd,),
        _fds=fds,
        _status_fd=status_fd,
        _cgroup=cgroup,
    )


def _check_writable(folders: Sequence[str]) -> None:
    """Refuse a writable folder that would give away the host: ``/``, or one holding the
    orchestrator's environment or the runner tool folder."""
    guarded = [p for p in (runner_tools.orchestrator_environment(),) if p]
    guarded += runner_tools.readable_dirs()[:1]
    for folder in folders:
        if not os.path.isdir(folder):
            raise WorkspaceError(f"the sandbox's writable folder {folder} does not exist")
        real = os.path.realpath(folder)
        if real == "/" or any(runner_tools.inside(g, real) for g in guarded):
            raise WorkspaceError(
                f"{folder} cannot be a command's writable folder: it holds the host's or the "
                "orchestrator's own files"
            )


def _safe_readable(folders: Iterable[str]) -> list[str]:
    """The extra readable folders, less ``/`` and any that holds the orchestrator's own
    environment (left out, with a warning)."""
    own = runner_tools.orchestrator_environment()
    kept = []
    for folder in folders:
        real = os.path.realpath(folder)
        if real == "/" or (own and runner_tools.inside(own, real)):
            log.warning("command sandbox: %s is never shown to a command", folder)
            continue
        kept.append(folder)
    return kept


def forwarder_python() -> str | None:
    """A python that the sandbox shows, for the egress forwarder."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", runner_tools.python()):
        if candidate and os.access(candidate, os.X_OK):
            real = os.path.realpath(candidate)
            if _under(real, ["/usr", *runner_tools.readable_dirs()]):
                return candidate
    return None


def _fall_back(argv: Sequence[str], env: Mapping[str, str], why: str) -> Launch:
    global _warned
    with _lock:
        warn, _warned = not _warned, True
    if warn:
        banner = "!" * 78
        log.warning(
            "%s\nThe command sandbox is unavailable (%s).\nRepository commands run UNISOLATED with "
            "the worker's files, processes and network (command_sandbox=auto, for the demo "
            "only). Set command_sandbox=required on any deployment that holds credentials."
            "\n%s",
            banner,
            why,
            banner,
        )
    return Launch(list(argv), dict(env), subprocess.DEVNULL, sandboxed=False)


def engine_launch(argv: Sequence[str], env: Mapping[str, str]) -> Launch:
    """How to start a container engine's command that runs a repository command in its
    container (:mod:`cicd_orchestrator.actions.pod`): as is, with ``env`` (the engine's own,
    never the job's); the container is the command's sandbox."""
    return Launch(list(argv), dict(env), subprocess.DEVNULL, sandboxed=False)


def prepare(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    linger: bool = False,
    writable: Sequence[str | os.PathLike[str]] | None = None,
    readable: Sequence[str | os.PathLike[str]] = (),
    network: Iterable[str] = (),
    limits: Limits | None = None,
    netns: str | None = None,
    hosts_file: str | None = None,
) -> Launch:
    """How to start ``argv`` in ``cwd`` with ``env``, sandboxed when the mode says so.

    ``writable``: the folders the command may write (default: ``cwd``; ``cwd`` must be in
    one); ``readable``: extra folders it may read (tool folders); ``network``: the host
    names it may reach through the egress proxy (none: no network); ``limits``: default the
    configured ones. Raises :class:`SandboxUnavailableError` in ``required`` mode when the
    sandbox does not work here, ``FileNotFoundError``/``PermissionError`` when ``argv[0]``
    cannot be run (as ``subprocess`` does) and :class:`WorkspaceError` for a writable folder
    that would expose the host. ``netns``: a network namespace the command joins instead of
    a new empty one (a job's pod, whose loopback its services and egress forwarder share;
    ``network`` is then not used); ``hosts_file``: shown as ``/etc/hosts``. ``linger``:
    see the module's docstring; read the command's status with :meth:`Launch.exit_status`.
    Close the result once the command has ended.
    """
    chosen = mode()
    if chosen == "off" or not argv:
        return Launch(list(argv), dict(env), subprocess.DEVNULL, sandboxed=False)
    tools = _tools()
    if isinstance(tools, str):
        if chosen == "required":
            raise SandboxUnavailableError(
                f"the command sandbox is required ({ENV_VAR} or command_sandbox) but "
                f"unavailable: {tools}; {argv[0]} was not run"
            )
        return _fall_back(argv, env, tools)
    first = _resolve(argv[0], cwd, env)
    folders = [os.fspath(w) for w in (writable if writable is not None else [cwd])]
    if not _under(os.fspath(cwd), folders):
        folders.append(os.fspath(cwd))
    _check_writable(folders)
    plan = _Plan(
        writable=folders,
        readable=[
            *runner_tools.readable_dirs(),
            *_safe_readable(os.fspath(r) for r in readable),
        ],
        limits=limits or _limits,
        netns=netns,
        hosts_file=hosts_file,
    )
    if netns:
        if tools.nsenter is None:
            raise WorkspaceError("nsenter (util-linux) is needed to join a job's pod network")
        return _build(
            tools, [first, *argv[1:]], cwd=os.fspath(cwd), env=env, plan=plan, linger=linger
        )
    hosts = sorted({egress.normalize_host(h) for h in network if h.strip()})
    if hosts:
        plan.python = forwarder_python()
        if plan.python is None:
            raise WorkspaceError("no python3 under /usr for the sandbox's egress forwarder")
        plan.proxy_socket = egress.proxy_for(hosts).socket_path
    return _build(tools, [first, *argv[1:]], cwd=os.fspath(cwd), env=env, plan=plan, linger=linger)
