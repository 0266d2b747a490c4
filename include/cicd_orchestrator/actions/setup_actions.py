"""The actions the local runner performs itself: the setup actions, and the ones it skips.

A ``uses:`` step is not downloaded or run; the usual actions are done the local way:

- ``actions/setup-python``: the installed CPython nearest to ``python-version`` (or
  ``python-version-file``) is chosen (:mod:`~cicd_orchestrator.actions.toolchains`; a
  warning in the log when it is not the requested one) and the runner makes a fresh virtual
  environment of it in the job's tool cache (``python -m venv``, run with that interpreter in
  the command sandbox; no repository code runs). Its ``bin`` goes first on the PATH of the
  next steps (as ``$GITHUB_PATH`` does), ``pythonLocation`` and ``Python_ROOT_DIR`` (``Python2_``,
  ``Python3_``) name it, and the outputs are ``python-version``, ``python-path`` and
  ``cache-hit``. A ``pip install`` in a later step installs into that environment, never
  into the runner tool folder nor the orchestrator's.
- ``actions/setup-node``, ``actions/setup-go``, ``actions/setup-java``, ``astral-sh/setup-uv``:
  the installed tool nearest to the request goes first on PATH (a tool of a shared system
  folder through a folder of links to its own executables, so the rest of that folder does
  not move ahead of the runner's tools); ``JAVA_HOME`` for java. A tool not installed here is
  a warning and the step goes on with what PATH has.
- The installation of a chosen tool that the sandbox does not show already (a uv python,
  a toolchain folder) is made readable to the job's steps.
- ``actions/checkout``: the workspace is already a checkout of the commit.
- ``actions/cache``, ``actions/upload-artifact``, ``actions/download-artifact``: nothing is
  restored, saved or transferred; the log says so.
- any other action is not run (the log says so), as before.

In a job that runs in a container (``container:``), the setup actions are not run (the
image brings its tools; the log says so).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cicd_orchestrator import process, runner_tools
from cicd_orchestrator.actions import toolchains
from cicd_orchestrator.actions.job_state import JobState
from cicd_orchestrator.actions.step_process import run_process
from cicd_orchestrator.actions.toolchains import Selection, Toolchain
from cicd_orchestrator.exceptions import WorkflowError

#: how long making a job's virtual environment may take
VENV_TIMEOUT = 300.0
#: folders the sandbox always shows (a tool installed there needs nothing more)
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64")
#: the executables a tool brings, linked when the tool lives in a shared folder
_EXECUTABLES = {
    "node": ("node", "nodejs", "npm", "npx", "corepack"),
    "go": ("go", "gofmt"),
    "uv": ("uv", "uvx"),
}


@dataclass
class ActionResult:
    """Whether the action succeeded, and its outputs (``steps.<id>.outputs``)."""

    ok: bool
    outputs: dict[str, str] = field(default_factory=dict)


Handler = Callable[[JobState, str, Mapping[str, str]], ActionResult]


def action_name(uses: str) -> str:
    """``owner/name`` of a ``uses:`` value (no ``@ref``), lower case."""
    return uses.split("@", 1)[0].strip().lower()


def run_action(state: JobState, uses: str, inputs: Mapping[str, str]) -> ActionResult:
    """Perform the action ``uses`` with its ``with:`` inputs (see the module docstring)."""
    handler = _HANDLERS.get(action_name(uses))
    if handler in _SETUP and state.in_container:
        state.job_log.write(
            f"##[warning]{uses} is not run: the job runs in its container, whose image "
            "brings its own tools (a host tool would not run there)."
        )
        return ActionResult(True)
    if handler is None:
        state.job_log.write(
            f"The local runner uses the host's tools: {uses} is not run; the host's "
            "installed tools are on PATH."
        )
        return ActionResult(True)
    try:
        return handler(state, uses, inputs)
    except WorkflowError as exc:
        state.job_log.write(f"##[error]{exc}")
        return ActionResult(False)


# --------------------------------------------------------------------------- no-ops
def _checkout(state: JobState, uses: str, inputs: Mapping[str, str]) -> ActionResult:
    state.job_log.write(
        f"The local runner uses the host's tools: {uses} is not run; the workspace is "
        f"already a checkout of {state.info.sha}."
    )
    return ActionResult(True)


def _cache(state: JobState, uses: str, inputs: Mapping[str, str]) -> ActionResult:
    state.job_log.write(
        f"{uses} is not run locally: no cache is restored or saved (cache-hit: false)."
    )
    return ActionResult(True, {"cache-hit": "false"})


def _artifact(state: JobState, uses: str, inputs: Mapping[str, str]) -> ActionResult:
    what = "uploaded" if "upload" in action_name(uses) else "downloaded"
    state.job_log.write(
        f"{uses} is not run locally: no artifact is {what}; the files stay in the job's "
        "workspace until the job ends."
    )
    return ActionResult(True)


# --------------------------------------------------------------------------- choosing
def _requested(
    state: JobState, tool: str, inputs: Mapping[str, str], key: str, file_key: str
) -> str | None:
    """The version the inputs ask for (the version input wins over the version file)."""
    value = (inputs.get(key) or "").strip()
    version_file = (inputs.get(file_key) or "").strip()
    if value and version_file:
        state.job_log.write(f"##[warning]Both {key} and {file_key} are set: {key} is used.")
    if value:
        return value.splitlines()[0].strip()
    if version_file:
        return toolchains.read_version_file(state.workspace, version_file, tool)
    return None


def _choose(state: JobState, tool: str, requested: str | None) -> Selection:
    found = toolchains.candidates(tool)
    if requested is None:
        on_path = [t for t in found if t.source in ("system", "toolchains")]
        pick = on_path[0] if on_path else (found[0] if found else None)
        return Selection("(none)", pick, True)
    selection = toolchains.select(requested, found, tool)
    note = selection.note()
    if note:
        state.job_log.write(f"##[warning]{note}")
    return selection


def _under_system(path: str) -> bool:
    return any(runner_tools.inside(path, d) for d in _SYSTEM_DIRS)


def _shared(bin_dir: str) -> bool:
    """Whether a folder holds other tools than the chosen one (a system folder, the runner
    tool folder): it is not put on PATH as a whole."""
    shared = [*process.SYSTEM_PATH, *runner_tools.bin_dirs(), str(Path.home() / ".local/bin")]
    return any(os.path.realpath(bin_dir) == os.path.realpath(d) for d in shared)


def _make_readable(state: JobState, folder: str) -> None:
    if not _under_system(folder) and folder not in state.readable_added:
        state.readable_added.append(folder)


def _put_on_path(state: JobState, chosen: Toolchain, names: tuple[str, ...]) -> str:
    """Put the chosen tool first on the job's PATH; returns the folder added."""
    bin_dir = chosen.bin_dir
    if not _shared(bin_dir):
        _make_readable(state, chosen.root)
        state.path_added.append(bin_dir)
        return bin_dir
    real_bin = os.path.dirname(os.path.realpath(chosen.executable))
    if not _shared(real_bin):  # /usr/bin/java -> /usr/lib/jvm/<jdk>/bin
        _make_readable(state, os.path.dirname(real_bin))
        state.path_added.append(real_bin)
        return real_bin
    links = _link_folder(state, chosen, names)
    _make_readable(state, real_bin)
    state.path_added.append(str(links))
    return str(links)


def _link_folder(state: JobState, chosen: Toolchain, names: tuple[str, ...]) -> Path:
    """A new folder of the tool cache with links to the tool's executables. The job's steps
    can write the tool cache: the folder gets a name they cannot guess and the links are
    made relative to the folder as opened, so no link lands outside it."""
    links = state.toolcache / f"{chosen.tool}-{chosen.version_text}-{uuid.uuid4().hex[:12]}"
    os.mkdir(links, 0o755)
    fd = os.open(links, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in names:
            target = os.path.join(chosen.bin_dir, name)
            if os.access(target, os.X_OK):
                os.symlink(target, name, dir_fd=fd)
    finally:
        os.close(fd)
    return links


def _installed(state: JobState, label: str) -> None:
    jl = state.job_log
    jl.write("##[group]Installed versions")
    jl.write(label)
    jl.write("##[endgroup]")


# --------------------------------------------------------------------------- python
def _setup_python(state: JobState, uses: str, inputs: Mapping[str, str]) -> ActionResult:
    requested = _requested(state, "python", inputs, "python-version", "python-version-file")
    selection = _choose(state, "python", requested)
    chosen = selection.toolchain
    if chosen is None:
        raise WorkflowError(
            f"The version '{selection.requested}' with architecture 'x64' was not found on "
            "this machine (no installed CPython of that major version); installed: "
            + (", ".join(t.version_text for t in toolchains.candidates("python")) or "none")
        )
    venv = state.toolcache / "Python" / chosen.version_text / "x64"
    _make_readable(state, chosen.root)
    if not (venv / "bin" / "python").exists():
        _make_venv(state, chosen, venv)
    state.path_added.append(str(venv / "bin"))
    for name in ("pythonLocation", "Python_ROOT_DIR", "Python2_ROOT_DIR", "Python3_ROOT_DIR"):
        state.env_added[name] = str(venv)
    state.env_added["PKG_CONFIG_PATH"] = str(venv / "lib" / "pkgconfig")
    _installed(state, f"Successfully set up CPython ({chosen.version_text})")
    state.job_log.write(f"Using {chosen.executable} in a virtual environment at {venv}")
    return ActionResult(
        True,
        {
            "python-version": chosen.version_text,
            "python-path": str(venv / "bin" / "python"),
            "cache-hit": "false",
        },
    )


#: the file that shows the runner's tools (and pip) to a job's virtual environment
RUNNER_TOOLS_PTH = "_runner_tools.pth"
#: run with the new environment's python: writes the ``.pth`` file (the runner tool folder's
#: site-packages when given, then the interpreter's bundled pip wheel) and the ``pip``,
#: ``pipX`` and ``pipX.Y`` scripts; exit code 3 when the interpreter bundles no pip wheel
#: (``ensurepip`` installs pip then)
_FINISH_VENV = """
import glob, os, site, sys
name, *entries = sys.argv[1:]
try:
    import ensurepip
    bundled = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")
    wheels = sorted(glob.glob(bundled))[-1:]
except ImportError:
    wheels = []
with open(os.path.join(site.getsitepackages()[0], name), "x", encoding="utf-8") as fh:
    fh.write("".join(entry + "\\n" for entry in [*entries, *wheels]))
if not wheels:
    sys.exit(3)
main = "from pip._internal.cli.main import main"
script = f"#!{sys.executable}\\nimport sys\\n{main}\\nsys.exit(main())\\n"
major, minor = sys.version_info[:2]
for command in ("pip", f"pip{major}", f"pip{major}.{minor}"):
    target = os.path.join(os.path.dirname(sys.executable), command)
    with open(target, "x", encoding="utf-8") as fh:
        fh.write(script)
    os.chmod(target, 0o755)
"""


def _make_venv(state: JobState, chosen: Toolchain, venv: Path) -> None:
    """A fresh virtual environment of ``chosen`` (the host's interpreter; no repository code
    runs). It runs in the command sandbox like a step, so a link a step planted in the tool
    cache cannot send its files outside the job's folders.

    pip is not installed into it (``ensurepip`` costs seconds per job): the interpreter's
    bundled pip wheel is put on the environment's path, as pip supports running from its
    wheel, with the usual ``pip`` scripts; an interpreter without a bundled wheel gets
    ``ensurepip``. A ``pip install`` installs into the environment, ``pip install -U pip``
    included (that copy then wins).

    As a hosted runner's image does, the environment sees the runner's tools (pytest, ruff,
    PyYAML... of the runner tool folder) when that folder is of the same Python version: its
    site-packages come after the environment's own, read-only, so ``pip install`` still
    installs into the environment and a package installed there wins."""
    _job_command(
        state, [chosen.executable, "-m", "venv", "--without-pip", str(venv)], chosen.executable
    )
    shared = _runner_site_packages(chosen)
    python = str(venv / "bin" / "python")
    argv = [python, "-c", _FINISH_VENV, RUNNER_TOOLS_PTH, *([shared] if shared else [])]
    if _job_command(state, argv, chosen.executable, allowed=(0, 3)) == 3:
        _job_command(state, [python, "-m", "ensurepip", "--default-pip"], chosen.executable)


def _runner_site_packages(chosen: Toolchain) -> str | None:
    """The runner tool folder's site-packages when its Python is ``chosen``'s minor version."""
    root = runner_tools.folder()
    minor = ".".join(chosen.version_text.split(".")[:2])
    if root is None:
        return None
    site = root / "lib" / f"python{minor}" / "site-packages"
    return str(site) if site.is_dir() else None


def _job_command(
    state: JobState, argv: list[str], what: str, allowed: tuple[int, ...] = (0,)
) -> int:
    """Run one command of a setup action in the job's sandbox and give its exit code;
    WorkflowError when it fails (an exit code not in ``allowed``)."""
    env = process.scrubbed_env(tool_path=[], home=str(state.home), tmpdir=str(state.tmp))
    remaining = state.remaining()
    timeout = VENV_TIMEOUT if remaining is None else max(1.0, min(VENV_TIMEOUT, remaining))
    result = run_process(
        argv,
        cwd=str(state.toolcache),
        env=env,
        job_log=state.job_log,
        timeout=timeout,
        output_cap=state.settings.output_cap_bytes,
        cancel=state.cancel,
        writable=[str(d) for d in state.folders()],
        readable=state.readable(),
    )
    if result.error:
        raise WorkflowError(f"cannot make a virtual environment of {what}: {result.error}")
    if result.timed_out or result.cancelled or result.capped:
        raise WorkflowError(f"making a virtual environment of {what} was stopped")
    if result.exit_code not in allowed:
        raise WorkflowError(
            f"making a virtual environment of {what} failed (exit code {result.exit_code})"
        )
    return int(result.exit_code)


# --------------------------------------------------------------------------- other tools
@dataclass(frozen=True)
class _ToolAction:
    """A setup action that puts one tool on PATH."""

    tool: str
    label: str
    key: str
    file_key: str
    output: str

    def __call__(self, state: JobState, uses: str, inputs: Mapping[str, str]) -> ActionResult:
        requested = _requested(state, self.tool, inputs, self.key, self.file_key)
        chosen = _choose(state, self.tool, requested).toolchain
        if chosen is None:
            state.job_log.write(
                f"##[warning]{self.label} {requested} is not installed on this machine; the "
                f"steps use the {self.tool} on PATH, if any."
            )
            return ActionResult(True)
        folder = _put_on_path(state, chosen, self._names(chosen))
        outputs = {self.output: self._shown(chosen), "cache-hit": "false"}
        if self.tool == "java":
            home = os.path.dirname(os.path.dirname(os.path.realpath(chosen.executable)))
            state.env_added["JAVA_HOME"] = home
            state.env_added[f"JAVA_HOME_{chosen.version[0]}_X64"] = home
            outputs["path"] = home
        _installed(state, f"Successfully set up {self.label} ({self._shown(chosen)})")
        state.job_log.write(f"Using {chosen.executable}; {folder} is first on PATH")
        return ActionResult(True, outputs)

    def _names(self, chosen: Toolchain) -> tuple[str, ...]:
        if self.tool == "java":
            real_bin = Path(os.path.realpath(chosen.executable)).parent
            return tuple(sorted(p.name for p in real_bin.iterdir() if os.access(p, os.X_OK)))
        return _EXECUTABLES[self.tool]

    def _shown(self, chosen: Toolchain) -> str:
        return f"v{chosen.version_text}" if self.tool == "node" else chosen.version_text


_HANDLERS: dict[str, Handler] = {
    "actions/checkout": _checkout,
    "actions/cache": _cache,
    "actions/cache/restore": _cache,
    "actions/cache/save": _cache,
    "actions/upload-artifact": _artifact,
    "actions/download-artifact": _artifact,
    "actions/setup-python": _setup_python,
    "actions/setup-node": _ToolAction(
        "node", "Node.js", "node-version", "node-version-file", "node-version"
    ),
    "actions/setup-go": _ToolAction("go", "Go", "go-version", "go-version-file", "go-version"),
    "actions/setup-java": _ToolAction(
        "java", "Java", "java-version", "java-version-file", "version"
    ),
    "astral-sh/setup-uv": _ToolAction("uv", "uv", "version", "version-file", "uv-version"),
}
#: the handlers that put a host tool on PATH (not for a job in a container)
_SETUP = [h for name, h in _HANDLERS.items() if "setup-" in name]
