"""The local job runner: executes the jobs of a GitHub Actions workflow on this machine.

Each job gets a fresh checkout of the commit, a fresh ``RUNNER_TEMP``, ``HOME`` and
``TMPDIR``, and steps that run in their own session with an allowlisted environment (never
the orchestrator's: no token, no Airflow setting reaches a step), a timeout and a cap on
their output. The job log is written in GitHub's raw log format, so the analysis code reads
the same text as from GitHub. The provider runs whole workflows with it; the validation
layer reproduces single jobs with it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cicd_orchestrator import sandbox
from cicd_orchestrator.ci.local import expressions
from cicd_orchestrator.ci.local.workflow import (
    DEFAULT_BASH,
    SHELLS,
    JobInstance,
    JobSpec,
    StepSpec,
    Workflow,
    expand_jobs,
    parse_workflow,
)
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.exceptions import WorkflowError, WorkspaceError
from cicd_orchestrator.models import Step
from cicd_orchestrator.scratch import make_scratch

log = logging.getLogger(__name__)

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
RUNNER_NAME = "cicd-orchestrator-local"
BAD_CONCLUSIONS = frozenset({Conclusion.FAILURE, Conclusion.TIMED_OUT, Conclusion.CANCELLED})
_ZERO_SHA = "0" * 40

OnUpdate = Callable[["JobExecution"], None]
IdAllocator = Callable[[], int]


# --------------------------------------------------------------------------- time and env
def utc_now() -> str:
    """``2024-05-01T10:00:00Z`` (GitHub's API timestamps)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_timestamp() -> str:
    """``2024-05-01T10:00:00.1234567Z`` (GitHub's raw log timestamps, 7 fractional digits)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def default_tool_path() -> list[str]:
    """The directory of the running interpreter: its python, pytest and ruff come first."""
    return [os.path.dirname(sys.executable)]


def scrubbed_env(
    extra: Mapping[str, str] | None = None,
    *,
    tool_path: Iterable[str] | None = None,
    home: str | None = None,
    tmpdir: str | None = None,
) -> dict[str, str]:
    """An allowlisted environment for a repository's commands; nothing of ``os.environ``.

    PATH is the tool path (default: the interpreter's directory) then the system
    directories; HOME and TMPDIR default to the system temp directory; ``extra`` (GitHub
    variables, workflow env...) is added last and wins.
    """
    tmp = tmpdir or tempfile.gettempdir()
    dirs = list(default_tool_path() if tool_path is None else tool_path)
    path = [d for d in dirs if d] + [d for d in SYSTEM_PATH if d not in dirs]
    env = {
        "PATH": os.pathsep.join(path),
        "HOME": home or tmp,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": tmp,
        "PYTHONUNBUFFERED": "1",
    }
    for key, value in (extra or {}).items():
        env[str(key)] = str(value)
    return env


def git_env() -> dict[str, str]:
    """The environment for the orchestrator's own git commands (no GIT_DIR of a hook...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def run_git(
    args: list[str], cwd: str | os.PathLike[str] | None = None, timeout: float = 120
) -> str:
    """Run git; raises WorkspaceError with git's message when it fails."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=git_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkspaceError(f"git {' '.join(args)}: {exc}") from exc
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip()
        raise WorkspaceError(f"git {' '.join(args)} failed ({proc.returncode}): {msg}")
    return proc.stdout


def read_workflow(git_dir: str | os.PathLike[str], sha: str, workflow_path: str) -> Workflow:
    """Parse a workflow file as it is in commit ``sha`` of the repository ``git_dir``."""
    try:
        text = run_git(["show", f"{sha}:{workflow_path}"], cwd=git_dir)
    except WorkspaceError as exc:
        raise WorkflowError(f"cannot read {workflow_path} at {sha[:12]}: {exc}") from exc
    return parse_workflow(text, workflow_path)


def list_workflow_files(git_dir: str | os.PathLike[str], sha: str) -> list[str]:
    """The workflow files (``.github/workflows/*.yml|yaml``) of a commit, sorted."""
    out = run_git(["ls-tree", "--name-only", f"{sha}", ".github/workflows/"], cwd=git_dir)
    return sorted(p for p in out.splitlines() if p.endswith((".yml", ".yaml")))


# --------------------------------------------------------------------------- the log
class JobLog:
    """A job log in GitHub's raw format: each line prefixed with its timestamp."""

    def __init__(self, path: str | os.PathLike[str], masks: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()
        self._masks = sorted({m for m in masks if m}, key=len, reverse=True)

    def add_mask(self, value: str) -> None:
        value = value.strip()
        if value and value not in self._masks:
            self._masks = sorted([*self._masks, value], key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._masks:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def write(self, text: str) -> int:
        """Write one or more lines (a trailing newline is not needed), each with the time of
        the write; returns the bytes written."""
        stamp = log_timestamp()
        masked = self.mask(text)
        data = "".join(f"{stamp} {line.rstrip(chr(13))}\n" for line in masked.split("\n"))
        raw = data.encode("utf-8", "replace")
        with self._lock:
            self._fh.write(raw)
            self._fh.flush()
        return len(raw)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


_COMMAND_RE = re.compile(r"^::([a-zA-Z-]+)(?:\s+([^:]*))?::(.*)$")


def translate_command(line: str, job_log: JobLog, outputs: dict[str, str]) -> str:
    """GitHub's workflow commands in a step's output, as they appear in the raw log."""
    m = _COMMAND_RE.match(line.strip())
    if m is None:
        return line
    cmd, props, value = m.group(1).lower(), m.group(2) or "", m.group(3)
    if cmd in ("error", "warning", "notice", "debug"):
        return f"##[{cmd}]{value}"
    if cmd == "group":
        return f"##[group]{value}"
    if cmd == "endgroup":
        return "##[endgroup]"
    if cmd == "add-mask":
        job_log.add_mask(value)
        return "::add-mask::***"
    if cmd == "set-output":
        name = props.partition("name=")[2].split(",")[0].strip()
        if name:
            outputs[name] = value
    return line


# --------------------------------------------------------------------------- results
@dataclass
class JobExecution:
    """One executed (or skipped, or carried over) job of a workflow run."""

    name: str
    key: str
    job_id: int
    status: RunStatus = RunStatus.QUEUED
    conclusion: Conclusion | None = None
    steps: list[Step] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    matrix: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    started_at: str | None = None
    completed_at: str | None = None
    log_path: str = ""
    continue_on_error: bool = False
    run_attempt: int = 1
    seconds: float = 0.0
    executed: bool = True

    @property
    def ok(self) -> bool:
        """Whether the job counts as passed (success, skipped, or allowed to fail)."""
        return self.conclusion not in BAD_CONCLUSIONS or self.continue_on_error

    def read_log(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        return Path(self.log_path).read_text(encoding="utf-8", errors="replace")


def needs_result(executions: list[JobExecution]) -> str:
    """``needs.<job>.result`` over a job's instances."""
    if not executions:
        return "success"
    if any(e.conclusion in BAD_CONCLUSIONS and not e.continue_on_error for e in executions):
        if any(e.conclusion in (Conclusion.FAILURE, Conclusion.TIMED_OUT) for e in executions):
            return "failure"
        return "cancelled"
    if all(e.conclusion is Conclusion.SKIPPED for e in executions):
        return "skipped"
    return "success"


def run_conclusion(executions: Iterable[JobExecution]) -> Conclusion:
    """A run's conclusion from its jobs (jobs allowed to fail do not fail it)."""
    jobs = [e for e in executions if not e.continue_on_error]
    if any(e.conclusion in (Conclusion.FAILURE, Conclusion.TIMED_OUT) for e in jobs):
        return Conclusion.FAILURE
    if any(e.conclusion is Conclusion.CANCELLED for e in jobs):
        return Conclusion.CANCELLED
    return Conclusion.SUCCESS


@dataclass
class RunInfo:
    """What a workflow run is: the commit, the ref and the run's numbers."""

    git_dir: str
    sha: str
    workflow: Workflow
    ref: str
    repository: str
    run_id: int
    run_number: int
    run_attempt: int
    event: str
    log_dir: Path

    @property
    def ref_name(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/", "refs/pull/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref

    def github_context(self, workspace: str = "", job: str = "") -> dict[str, Any]:
        owner = self.repository.split("/")[0]
        return {
            "sha": self.sha,
            "ref": self.ref,
            "ref_name": self.ref_name,
            "ref_type": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "repository": self.repository,
            "repository_owner": owner,
            "run_id": str(self.run_id),
            "run_number": str(self.run_number),
            "run_attempt": str(self.run_attempt),
            "event_name": self.event,
            "workflow": self.workflow.name,
            "workspace": workspace,
            "job": job,
            "actor": owner,
            "server_url": "local://",
            "action": "",
            "head_ref": "",
            "base_ref": "",
            "event": {"ref": self.ref, "after": self.sha, "before": _ZERO_SHA},
        }


# --------------------------------------------------------------------------- step processes
@dataclass
class StepOutcome:
    exit_code: int | None
    timed_out: bool = False
    capped: bool = False
    cancelled: bool = False
    error: str | None = None


class _Pump(threading.Thread):
    """Copies a step's output (stdout and stderr interleaved) into the job log."""

    def __init__(self, fd: int, job_log: JobLog, cap: int, outputs: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.job_log = job_log
        self.cap = cap
        self.outputs = outputs
        self.total = 0
        self.capped = threading.Event()

    def run(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if self.capped.is_set():
                continue  # drain without recording
            buf += chunk
            *lines, buf = buf.split(b"\n")
            self._emit(lines)
            if self.total > self.cap:
                self.capped.set()  # the log as written (timestamps included) passed the cap
        if buf and not self.capped.is_set():
            self._emit([buf])
        os.close(self.fd)

    def _emit(self, lines: list[bytes]) -> None:
        if not lines:
            return
        text = "\n".join(
            translate_command(raw.decode("utf-8", "replace"), self.job_log, self.outputs)
            for raw in lines
        )
        self.total += self.job_log.write(text)


def kill_group(pgid: int) -> None:
    """Kill a process group, ignoring one that is already gone. A sandboxed command's group
    holds the init of its pid namespace: when it dies, everything in the namespace dies."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    _reap_lingering(pgid)


#: sandboxes whose command ended but whose background processes may still run (a step's
#: server for the next steps), until the job kills their group
_LINGERING: dict[int, subprocess.Popen[bytes]] = {}
_LINGERING_LOCK = threading.Lock()


def _reap_lingering(pgid: int | None = None) -> None:
    """Collect the exit of lingering sandboxes (``pgid``: the one just killed)."""
    with _LINGERING_LOCK:
        procs = list(_LINGERING.items())
    for pid, proc in procs:
        if pid == pgid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if proc.poll() is not None:
            with _LINGERING_LOCK:
                _LINGERING.pop(pid, None)


def run_process(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    job_log: JobLog,
    timeout: float | None,
    output_cap: int,
    cancel: threading.Event | None = None,
    outputs: dict[str, str] | None = None,
    groups: list[int] | None = None,
) -> StepOutcome:
    """Run one command in its own session (in the command sandbox, see
    :mod:`cicd_orchestrator.sandbox`), its output in the log; kill its group on timeout, on
    cancellation or when its output passes the cap.

    With ``groups``, the caller kills the recorded groups later (at the end of the job), so
    the command's background processes may outlive it, as on GitHub."""
    _reap_lingering()
    try:
        launch = sandbox.prepare(argv, cwd=cwd, env=env, linger=groups is not None)
    except sandbox.SandboxUnavailableError as exc:
        return StepOutcome(exit_code=None, error=str(exc))
    except OSError as exc:
        return StepOutcome(exit_code=None, error=f"cannot start {argv[0]}: {exc.strerror or exc}")
    with launch:
        try:
            proc, read_fd = launch.start(cwd)
        except OSError as exc:
            return StepOutcome(
                exit_code=None, error=f"cannot start {argv[0]}: {exc.strerror or exc}"
            )
        if groups is not None:
            groups.append(proc.pid)
        pump = _Pump(read_fd, job_log, output_cap, outputs if outputs is not None else {})
        pump.start()
        outcome = _wait(proc, pump, timeout, cancel, launch.exit_status if launch.lingers else None)
    if outcome.exit_code is None or outcome.capped or outcome.timed_out:
        kill_group(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    elif proc.poll() is None:
        with _LINGERING_LOCK:
            _LINGERING[proc.pid] = proc
    pump.join(timeout=2.0)
    return outcome


def _wait(
    proc: subprocess.Popen[bytes],
    pump: _Pump,
    timeout: float | None,
    cancel: threading.Event | None,
    exited: Callable[[], int | None] | None = None,
) -> StepOutcome:
    """Wait for the command; ``exited`` gives its status when the process that runs it (a
    lingering sandbox) may outlive it."""
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    pause = 0.001  # short commands are seen ending at once, long ones cost few wake-ups
    while True:
        code = exited() if exited is not None else None
        if code is None:
            code = proc.poll()
        if code is not None:
            return StepOutcome(exit_code=code, capped=pump.capped.is_set())
        stop: StepOutcome | None = None
        if pump.capped.is_set():
            stop = StepOutcome(exit_code=None, capped=True)
        elif deadline is not None and time.monotonic() >= deadline:
            stop = StepOutcome(exit_code=None, timed_out=True)
        elif cancel is not None and cancel.is_set():
            stop = StepOutcome(exit_code=None, cancelled=True)
        if stop is not None:
            kill_group(proc.pid)
            proc.wait()
            return stop
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


# --------------------------------------------------------------------------- env files
_HEREDOC_RE = re.compile(r"^([^=<\s]+)<<(.+)$")


def parse_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines and ``NAME<<DELIM`` heredocs (GITHUB_ENV / GITHUB_OUTPUT)."""
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        m = _HEREDOC_RE.match(line)
        if m:
            name, delim = m.group(1), m.group(2)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, _, value = line.partition("=")
            out[name.strip()] = value
    return out


def _as_timeout_seconds(value: Any, contexts: Mapping[str, Any]) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = expressions.evaluate(value, contexts) if "${{" in value else value
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        return None
    return minutes * 60.0


def _flag(value: Any, contexts: Mapping[str, Any]) -> bool:
    if isinstance(value, str):
        return expressions.truthy(expressions.evaluate(value, contexts))
    return bool(value)


# --------------------------------------------------------------------------- one job
@dataclass
class _JobState:
    """What changes while a job runs."""

    instance: JobInstance
    execution: JobExecution
    needs: dict[str, Any]
    root: Path
    workspace: Path
    runner_temp: Path
    home: Path
    tmp: Path
    deadline: float | None
    job_log: JobLog
    status: str = "success"  # success, failure, cancelled (the job context's status)
    timed_out: bool = False
    env_added: dict[str, str] = field(default_factory=dict)
    path_added: list[str] = field(default_factory=list)
    steps_ctx: dict[str, Any] = field(default_factory=dict)
    groups: list[int] = field(default_factory=list)


class JobRunner:
    """Runs the jobs of a workflow on this machine (see the module docstring)."""

    def __init__(
        self,
        secrets: dict[str, str] | None = None,
        tool_path: list[str] | None = None,
        default_timeout_minutes: float = 30,
        output_cap_bytes: int = 20_000_000,
        max_parallel_jobs: int = 2,
    ) -> None:
        self.secrets = dict(secrets or {})
        self.tool_path = list(default_tool_path() if tool_path is None else tool_path)
        self.default_timeout_minutes = default_timeout_minutes
        self.output_cap_bytes = output_cap_bytes
        self.max_parallel_jobs = max(1, max_parallel_jobs)
        self._update_lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    def run_workflow(
        self,
        git_dir: str | os.PathLike[str],
        sha: str,
        workflow_path: str,
        *,
        ref: str,
        repository: str,
        run_id: int,
        run_number: int,
        run_attempt: int,
        event: str = "push",
        jobs: set[str] | None = None,
        previous: dict[str, JobExecution] | None = None,
        log_dir: str | os.PathLike[str],
        on_update: OnUpdate | None = None,
        allocate_job_id: IdAllocator | None = None,
        workflow: Workflow | None = None,
    ) -> list[JobExecution]:
        """Execute the workflow's jobs (or only ``jobs``, by key or display name) on ``sha``.

        Jobs not executed are carried over from ``previous`` (by display name) when given;
        needs outside the executed set count as succeeded. Returns every job, executed or
        carried over, in workflow order. Raises WorkflowError if the workflow is invalid.
        """
        wf = workflow or read_workflow(git_dir, sha, workflow_path)
        info = RunInfo(
            git_dir=os.fspath(git_dir),
            sha=sha,
            workflow=wf,
            ref=ref,
            repository=repository,
            run_id=run_id,
            run_number=run_number,
            run_attempt=run_attempt,
            event=event,
            log_dir=Path(log_dir),
        )
        info.log_dir.mkdir(parents=True, exist_ok=True)
        counter = itertools.count(1)
        allocate = allocate_job_id or (lambda: next(counter))
        base = {"github": info.github_context(), "inputs": wf.dispatch_inputs(), "vars": {}}
        instances = expand_jobs(wf, base)
        scheduler = _Scheduler(self, info, instances, jobs, previous or {}, on_update, allocate)
        return scheduler.run()

    def notify(self, on_update: OnUpdate | None, execution: JobExecution) -> None:
        if on_update is None:
            return
        with self._update_lock:
            try:
                on_update(dataclasses.replace(execution, steps=list(execution.steps)))
            except Exception:  # a broken observer must not break the run
                log.exception("on_update callback failed for job %s", execution.name)

    # ------------------------------------------------------------------ a job
    def execute_job(
        self,
        info: RunInfo,
        instance: JobInstance,
        execution: JobExecution,
        needs: dict[str, Any],
        cancel: threading.Event,
        on_update: OnUpdate | None,
    ) -> JobExecution:
        """Run one job instance to its conclusion (the execution is updated in place)."""
        if cancel.is_set():  # fail-fast cancelled the matrix while this job was queued
            execution.status = RunStatus.COMPLETED
            execution.conclusion = Conclusion.CANCELLED
            execution.started_at = execution.completed_at = utc_now()
            self.notify(on_update, execution)
            return execution
        root = make_scratch("cicd-job-")
        repo_name = info.repository.split("/")[-1] or "repo"
        state = _JobState(
            instance=instance,
            execution=execution,
            needs=needs,
            root=root,
            workspace=root / "work" / repo_name / repo_name,
            runner_temp=root / "temp",
            home=root / "home",
            tmp=root / "tmp",
            deadline=None,
            job_log=JobLog(execution.log_path, self.secrets.values()),
        )
        started = time.monotonic()
        execution.status = RunStatus.IN_PROGRESS
        execution.started_at = utc_now()
        self.notify(on_update, execution)
        try:
            self._job_body(info, state, cancel, on_update)
        except Exception as exc:  # the runner's own bug or an OS error: fail the job, say why
            log.exception("job %s crashed", instance.name)
            state.job_log.write(f"##[error]The runner failed: {exc}")
            state.status = "failure"
        finally:
            for pgid in state.groups:
                kill_group(pgid)
            state.job_log.write("Post job cleanup.")
            state.job_log.write("Cleaning up orphan processes")
            state.job_log.close()
            shutil.rmtree(root, ignore_errors=True)
        execution.conclusion = self._job_conclusion(state)
        if execution.steps:
            last = execution.steps[-1]
            last.status, last.conclusion, last.completed_at = (
                RunStatus.COMPLETED,
                Conclusion.SUCCESS,
                utc_now(),
            )
        execution.status = RunStatus.COMPLETED
        execution.completed_at = utc_now()
        execution.seconds = round(time.monotonic() - started, 3)
        spec = instance.spec
        if spec.matrix and spec.fail_fast and not execution.ok:
            cancel.set()  # fail-fast: the other instances of the matrix are cancelled
        self.notify(on_update, execution)
        return execution

    @staticmethod
    def _job_conclusion(state: _JobState) -> Conclusion:
        if state.timed_out:
            return Conclusion.TIMED_OUT
        if state.status == "failure":
            return Conclusion.FAILURE
        if state.status == "cancelled":
            return Conclusion.CANCELLED
        return Conclusion.SUCCESS

    def _contexts(self, info: RunInfo, state: _JobState, env: dict[str, str]) -> dict[str, Any]:
        return {
            "github": info.github_context(str(state.workspace), state.instance.key),
            "env": env,
            "matrix": state.instance.matrix,
            "needs": state.needs,
            "secrets": _Secrets(self.secrets),
            "steps": state.steps_ctx,
            "runner": {
                "os": "Linux",
                "arch": "X64",
                "name": RUNNER_NAME,
                "temp": str(state.runner_temp),
                "tool_cache": str(state.root / "toolcache"),
            },
            "job": {"status": state.status},
            "inputs": info.workflow.dispatch_inputs(),
            "vars": {},
            "strategy": {"fail-fast": state.instance.spec.fail_fast, "job-index": 0},
        }

    def _job_body(
        self,
        info: RunInfo,
        state: _JobState,
        cancel: threading.Event,
        on_update: OnUpdate | None,
    ) -> None:
        spec = state.instance.spec
        execution = state.execution
        for d in (state.workspace.parent, state.runner_temp, state.home, state.tmp):
            d.mkdir(parents=True, exist_ok=True)
        env0 = self._declared_env(info, state, None)
        ctx0 = self._contexts(info, state, env0)
        job_timeout = _as_timeout_seconds(spec.timeout_minutes, ctx0)
        if job_timeout is None:
            job_timeout = self.default_timeout_minutes * 60.0
        state.deadline = time.monotonic() + job_timeout
        setup = Step(
            number=1, name="Set up job", status=RunStatus.IN_PROGRESS, started_at=utc_now()
        )
        execution.steps = [setup]
        ok = self._set_up(info, state, job_timeout)
        setup.status, setup.completed_at = RunStatus.COMPLETED, utc_now()
        setup.conclusion = Conclusion.SUCCESS if ok else Conclusion.FAILURE
        if not ok:
            state.status = "failure"
        for step in spec.steps:
            self._step(info, state, step, cancel)
            self.notify(on_update, execution)
        execution.steps.append(
            Step(number=len(execution.steps) + 1, name="Complete job", started_at=utc_now())
        )
        env = self._declared_env(info, state, None)
        ctx = self._contexts(info, state, env)
        execution.outputs = {  # a job output that carries a secret is masked, as on GitHub
            k: state.job_log.mask(self._safe_interpolate(v, ctx, state))
            for k, v in spec.outputs.items()
        }

    def _set_up(self, info: RunInfo, state: _JobState, job_timeout: float) -> bool:
        jl = state.job_log
        inst = state.instance
        jl.write("##[group]Set up job")
        jl.write("Current runner version: 'local'")
        jl.write(f"Runner name: '{RUNNER_NAME}'")
        jl.write("Operating System: Linux")
        jl.write(f"Job: {inst.name}")
        for k, v in inst.matrix.items():
            jl.write(f"Matrix: {k}={expressions.to_string(v)}")
        jl.write(f"Job timeout: {job_timeout / 60:g} minutes")
        jl.write(f"Checking out {info.sha} ({info.ref}) into {state.workspace}")
        ok = True
        try:
            self.checkout(info.git_dir, info.sha, state.workspace, info.ref_name)
        except WorkspaceError as exc:
            jl.write(f"##[error]Checkout of {info.sha} failed: {exc}")
            ok = False
        jl.write(f"Complete job name: {inst.name}")
        jl.write("##[endgroup]")
        return ok

    @staticmethod
    def checkout(git_dir: str, sha: str, dest: Path, branch: str | None = None) -> None:
        """A fresh clone of ``git_dir`` at ``sha`` in ``dest`` (bare or non-bare source)."""
        run_git(["clone", "--quiet", "--no-hardlinks", "--no-checkout", git_dir, str(dest)])
        try:
            run_git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=dest)
        except WorkspaceError:
            run_git(["fetch", "--quiet", git_dir, sha], cwd=dest)
        if branch and re.fullmatch(r"[\w./-]+", branch) and not branch.startswith("-"):
            try:
                run_git(["checkout", "--quiet", "-B", branch, sha], cwd=dest)
                return
            except WorkspaceError:
                pass
        run_git(["checkout", "--quiet", "--detach", sha], cwd=dest)

    # ------------------------------------------------------------------ steps
    def _declared_env(
        self, info: RunInfo, state: _JobState, step: StepSpec | None
    ) -> dict[str, str]:
        """The ``env`` context: workflow < job < GITHUB_ENV < step, interpolated level by level."""
        env: dict[str, str] = {}
        levels: list[dict[str, Any]] = [info.workflow.env, state.instance.spec.env]
        for i, level in enumerate(levels):
            ctx = self._contexts(info, state, env)
            for k, v in level.items():
                env[k] = self._safe_interpolate(expressions.to_string(v), ctx, state)
            if i == 1:
                env.update(state.env_added)
        if step is not None:
            ctx = self._contexts(info, state, env)
            for k, v in step.env.items():
                env[k] = self._safe_interpolate(expressions.to_string(v), ctx, state)
        return env

    @staticmethod
    def _safe_interpolate(text: str, ctx: Mapping[str, Any], state: _JobState) -> str:
        try:
            return expressions.interpolate(text, ctx)
        except WorkflowError as exc:
            state.job_log.write(f"##[warning]Expression error in {text!r}: {exc}")
            return ""

    def _step(
        self, info: RunInfo, state: _JobState, step: StepSpec, cancel: threading.Event
    ) -> None:
        execution = state.execution
        env = self._declared_env(info, state, step)
        ctx = self._contexts(info, state, env)
        name = self._safe_interpolate(step.name, ctx, state) if step.name else step.default_name
        record = Step(number=len(execution.steps) + 1, name=name, status=RunStatus.IN_PROGRESS)
        execution.steps.append(record)
        outcome, conclusion = self._step_outcome(info, state, step, env, ctx, cancel)
        record.status = RunStatus.COMPLETED
        record.conclusion = conclusion
        if conclusion is not Conclusion.SKIPPED:
            record.started_at = record.started_at or utc_now()
            record.completed_at = utc_now()
        if step.id:
            entry = state.steps_ctx.setdefault(step.id, {"outputs": {}})
            entry["outcome"] = outcome.value
            entry["conclusion"] = conclusion.value

    def _step_outcome(
        self,
        info: RunInfo,
        state: _JobState,
        step: StepSpec,
        env: dict[str, str],
        ctx: dict[str, Any],
        cancel: threading.Event,
    ) -> tuple[Conclusion, Conclusion]:
        """Run a step if its condition holds; returns (outcome, conclusion)."""
        if cancel.is_set() and state.status == "success":
            state.status = "cancelled"
        if state.timed_out or cancel.is_set():
            return Conclusion.SKIPPED, Conclusion.SKIPPED
        try:
            run_it = expressions.evaluate_condition(step.if_, ctx, _status_fn(state.status))
        except WorkflowError as exc:
            state.job_log.write(f"##[error]The step's condition is invalid: {exc}")
            state.status = "failure"
            return Conclusion.FAILURE, Conclusion.FAILURE
        if not run_it:
            return Conclusion.SKIPPED, Conclusion.SKIPPED
        state.execution.steps[-1].started_at = utc_now()
        if step.uses is not None:
            self._uses_step(info, state, step, ctx)
            return Conclusion.SUCCESS, Conclusion.SUCCESS
        ok = self._run_step(info, state, step, env, ctx, cancel)
        if ok:
            return Conclusion.SUCCESS, Conclusion.SUCCESS
        if not state.timed_out and _flag(step.continue_on_error, ctx):
            return Conclusion.FAILURE, Conclusion.SUCCESS
        if state.status == "success":
            state.status = "failure"
        return Conclusion.FAILURE, Conclusion.FAILURE

    def _uses_step(
        self, info: RunInfo, state: _JobState, step: StepSpec, ctx: dict[str, Any]
    ) -> None:
        jl = state.job_log
        jl.write(f"##[group]Run {step.uses}")
        if step.with_:
            jl.write("with:")
            for k, v in step.with_.items():
                value = expressions.interpolate_value(v, ctx) if "${{" in str(v) else v
                jl.write(f"  {k}: {expressions.to_string(value)}")
        jl.write("##[endgroup]")
        action = (step.uses or "").split("@")[0]
        if action.endswith("/checkout"):
            jl.write(
                f"The local runner uses the host's tools: {step.uses} is not run; "
                f"the workspace is already a checkout of {info.sha}."
            )
        else:
            jl.write(
                f"The local runner uses the host's tools: {step.uses} is not run; "
                "the host's installed tools are on PATH."
            )

    def _run_step(
        self,
        info: RunInfo,
        state: _JobState,
        step: StepSpec,
        env: dict[str, str],
        ctx: dict[str, Any],
        cancel: threading.Event,
    ) -> bool:
        jl = state.job_log
        spec = state.instance.spec
        try:
            command = expressions.interpolate(step.run or "", ctx)
        except WorkflowError as exc:
            jl.write(f"##[error]The step's command has an invalid expression: {exc}")
            return False
        shell_name = step.shell or spec.shell or info.workflow.shell
        template = SHELLS.get(shell_name or "bash", shell_name or DEFAULT_BASH)
        first = next((ln for ln in command.splitlines() if ln.strip()), "")
        jl.write(f"##[group]Run {first.strip()}")
        for line in command.rstrip("\n").split("\n"):
            jl.write(line)
        jl.write(f"shell: {self._shell_display(template, state)}")
        if env:
            jl.write("env:")
            for k, v in env.items():
                jl.write(f"  {k}: {v.splitlines()[0] if v else ''}")
        jl.write("##[endgroup]")
        return self._execute_command(info, state, step, env, ctx, cancel, command, template)

    def _shell_display(self, template: str, state: _JobState) -> str:
        parts = template.split(" ", 1)
        exe = shutil.which(parts[0], path=os.pathsep.join(self._path(state))) or parts[0]
        return " ".join([exe, *parts[1:]])

    def _path(self, state: _JobState) -> list[str]:
        return [*reversed(state.path_added), *self.tool_path, *SYSTEM_PATH]

    def _execute_command(
        self,
        info: RunInfo,
        state: _JobState,
        step: StepSpec,
        env: dict[str, str],
        ctx: dict[str, Any],
        cancel: threading.Event,
        command: str,
        template: str,
    ) -> bool:
        jl = state.job_log
        files = self._command_files(state)
        ext = ".py" if template.split(" ", 1)[0].endswith(("python", "python3")) else ".sh"
        script = state.runner_temp / f"{uuid.uuid4()}{ext}"
        script.write_text(command if command.endswith("\n") else command + "\n", encoding="utf-8")
        argv = [a.replace("{0}", str(script)) for a in shlex.split(template)]
        if "{0}" not in template:
            argv.append(str(script))
        cwd = self._working_directory(info, state, step, ctx)
        if not cwd.is_dir():
            jl.write(f"##[error]The working directory '{cwd}' does not exist.")
            return False
        full_env = self._process_env(info, state, env, files)
        timeout = self._step_timeout(state, step, ctx)
        outputs: dict[str, str] = {}
        result = run_process(
            argv,
            cwd=str(cwd),
            env=full_env,
            job_log=jl,
            timeout=timeout,
            output_cap=self.output_cap_bytes,
            cancel=cancel,
            outputs=outputs,
            groups=state.groups,
        )
        outputs.update(parse_env_file(files["GITHUB_OUTPUT"]))
        if step.id:
            state.steps_ctx.setdefault(step.id, {"outputs": {}})["outputs"] = outputs
        state.env_added.update(parse_env_file(files["GITHUB_ENV"]))
        for p in files["GITHUB_PATH"].read_text(encoding="utf-8", errors="replace").splitlines():
            if p.strip():
                state.path_added.append(p.strip())
        return self._report(state, result, timeout)

    def _report(self, state: _JobState, result: StepOutcome, timeout: float | None) -> bool:
        jl = state.job_log
        if result.error:
            jl.write(f"##[error]{result.error}")
            return False
        if result.capped:
            jl.write(
                f"##[error]The step wrote more than {self.output_cap_bytes} bytes of output; "
                "the rest was not recorded and the step was stopped."
            )
            return False
        if result.timed_out:
            job_deadline_hit = state.deadline is not None and time.monotonic() >= state.deadline
            if job_deadline_hit:
                state.timed_out = True
                state.status = "cancelled"
                minutes = (self._job_timeout_minutes(state) or 0) or (timeout or 0) / 60
                jl.write(
                    f"##[error]The job running on runner {RUNNER_NAME} has exceeded the "
                    f"maximum execution time of {minutes:g} minutes."
                )
            jl.write("##[error]The action has timed out.")
            return False
        if result.cancelled:
            state.status = "cancelled"
            jl.write("##[error]The operation was canceled.")
            return False
        if result.exit_code != 0:
            jl.write(f"##[error]Process completed with exit code {result.exit_code}.")
            return False
        return True

    def _job_timeout_minutes(self, state: _JobState) -> float | None:
        value = state.instance.spec.timeout_minutes
        try:
            return float(value) if value is not None else self.default_timeout_minutes
        except (TypeError, ValueError):
            return None

    @staticmethod
    def _step_timeout(state: _JobState, step: StepSpec, ctx: Mapping[str, Any]) -> float | None:
        remaining = None if state.deadline is None else state.deadline - time.monotonic()
        own = _as_timeout_seconds(step.timeout_minutes, ctx)
        if own is None:
            return remaining
        return own if remaining is None else min(own, remaining)

    @staticmethod
    def _working_directory(
        info: RunInfo, state: _JobState, step: StepSpec, ctx: Mapping[str, Any]
    ) -> Path:
        spec = state.instance.spec
        wd = step.working_directory or spec.working_directory or info.workflow.working_directory
        if not wd:
            return state.workspace
        return state.workspace / expressions.interpolate(wd, ctx)

    @staticmethod
    def _command_files(state: _JobState) -> dict[str, Path]:
        files = {}
        for name in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"):
            path = state.runner_temp / "_runner_file_commands" / f"{name.lower()}_{uuid.uuid4()}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("", encoding="utf-8")
            files[name] = path
        return files

    def _process_env(
        self, info: RunInfo, state: _JobState, env: dict[str, str], files: dict[str, Path]
    ) -> dict[str, str]:
        github = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": info.sha,
            "GITHUB_REF": info.ref,
            "GITHUB_REF_NAME": info.ref_name,
            "GITHUB_REF_TYPE": "tag" if info.ref.startswith("refs/tags/") else "branch",
            "GITHUB_RUN_ID": str(info.run_id),
            "GITHUB_RUN_NUMBER": str(info.run_number),
            "GITHUB_RUN_ATTEMPT": str(info.run_attempt),
            "GITHUB_REPOSITORY": info.repository,
            "GITHUB_REPOSITORY_OWNER": info.repository.split("/")[0],
            "GITHUB_WORKSPACE": str(state.workspace),
            "GITHUB_JOB": state.instance.key,
            "GITHUB_EVENT_NAME": info.event,
            "GITHUB_WORKFLOW": info.workflow.name,
            "GITHUB_ACTOR": info.repository.split("/")[0],
            "GITHUB_SERVER_URL": "local://",
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_NAME": RUNNER_NAME,
            "RUNNER_TEMP": str(state.runner_temp),
            **{k: str(v) for k, v in files.items()},
        }
        tool_path = [*reversed(state.path_added), *self.tool_path]
        return scrubbed_env(
            {**github, **env},
            tool_path=tool_path,
            home=str(state.home),
            tmpdir=str(state.tmp),
        )


class _Secrets(dict[str, str]):
    """The ``secrets`` context: an unknown secret is the empty string, as on GitHub."""

    def get(self, key: str, default: Any = "") -> Any:  # type: ignore[override]
        return super().get(key, default)

    def __missing__(self, key: str) -> str:
        return ""


def _status_fn(job_status: str) -> expressions.StatusFn:
    def fn(name: str) -> bool:
        if name == "success":
            return job_status == "success"
        if name == "failure":
            return job_status == "failure"
        if name == "cancelled":
            return job_status == "cancelled"
        return True

    return fn


# --------------------------------------------------------------------------- scheduling
class _Scheduler:
    """Runs job instances as their needs complete, up to ``max_parallel_jobs`` at once."""

    def __init__(
        self,
        runner: JobRunner,
        info: RunInfo,
        instances: list[JobInstance],
        selected: set[str] | None,
        previous: dict[str, JobExecution],
        on_update: OnUpdate | None,
        allocate: IdAllocator,
    ) -> None:
        self.runner = runner
        self.info = info
        self.instances = instances
        self.on_update = on_update
        self.results: dict[str, JobExecution] = {}
        self.order = [i.name for i in instances]
        self.todo: list[JobInstance] = []
        self.cancels: dict[str, threading.Event] = {}
        self.specs: dict[str, JobSpec] = {i.key: i.spec for i in instances}
        for inst in instances:
            chosen = selected is None or inst.name in selected or inst.key in selected
            if chosen:
                self.todo.append(inst)
            elif inst.name in previous:
                carried = dataclasses.replace(previous[inst.name], executed=False)
                self.results[inst.name] = carried
        self.executed_keys = {i.key for i in self.todo}
        for inst in self.todo:
            self.cancels.setdefault(inst.key, threading.Event())
            job_id = allocate()
            execution = JobExecution(
                name=inst.name,
                key=inst.key,
                job_id=job_id,
                needs=list(inst.spec.needs),
                matrix=dict(inst.matrix),
                log_path=str(info.log_dir / f"{job_id}.log"),
                continue_on_error=False,
                run_attempt=info.run_attempt,
            )
            self.results[inst.name] = execution
            runner.notify(on_update, execution)

    def run(self) -> list[JobExecution]:
        pending = list(self.todo)
        running: dict[concurrent.futures.Future[JobExecution], JobInstance] = {}
        workers = self.runner.max_parallel_jobs
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            while pending or running:
                for inst in [i for i in pending if self._ready(i, pending, running)]:
                    pending.remove(inst)
                    future = self._start(inst, pool)
                    if future is not None:
                        running[future] = inst
                if not running:
                    if pending:  # cannot happen with a validated workflow; do not spin
                        for inst in pending:
                            self._skip(inst)
                        pending.clear()
                    break
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    inst = running.pop(future)
                    self._finished(inst, future)
        return [self.results[n] for n in self.order if n in self.results]

    def _ready(
        self, inst: JobInstance, pending: list[JobInstance], running: Mapping[Any, Any]
    ) -> bool:
        waiting = {i.key for i in pending if i is not inst} | {i.key for i in running.values()}
        return not any(need in waiting for need in inst.spec.needs)

    def _instances_of(self, key: str) -> list[JobExecution]:
        return [e for e in self.results.values() if e.key == key]

    def needs_context(self, spec: JobSpec) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        for need in spec.needs:
            execs = self._instances_of(need)
            outputs: dict[str, str] = {}
            for e in execs:
                outputs.update(e.outputs)
            ctx[need] = {"result": needs_result(execs), "outputs": outputs}
        return ctx

    def _ancestors(self, key: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.specs[key].needs) if key in self.specs else []
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(self.specs[k].needs if k in self.specs else [])
        return seen

    def _should_run(self, inst: JobInstance, needs: dict[str, Any]) -> bool:
        direct_ok = all(n["result"] == "success" for n in needs.values())
        failed = any(
            needs_result(self._instances_of(k)) == "failure" for k in self._ancestors(inst.key)
        )

        def status(name: str) -> bool:
            if name == "success":
                return direct_ok
            if name == "failure":
                return failed
            return name != "cancelled"

        ctx = {
            "github": self.info.github_context(job=inst.key),
            "needs": needs,
            "matrix": inst.matrix,
            "inputs": self.info.workflow.dispatch_inputs(),
            "vars": {},
            "env": {},
            "secrets": {},
        }
        return expressions.evaluate_condition(inst.spec.if_, ctx, status)

    def _start(
        self, inst: JobInstance, pool: concurrent.futures.ThreadPoolExecutor
    ) -> concurrent.futures.Future[JobExecution] | None:
        execution = self.results[inst.name]
        needs = self.needs_context(inst.spec)
        try:
            run_it = self._should_run(inst, needs)
        except WorkflowError as exc:
            self._fail_condition(inst, exc)
            return None
        if not run_it or self.cancels[inst.key].is_set():
            self._skip(inst, cancelled=self.cancels[inst.key].is_set())
            return None
        ctx = {"matrix": inst.matrix, "needs": needs, "github": self.info.github_context()}
        try:
            execution.continue_on_error = _flag(inst.spec.continue_on_error, ctx)
        except WorkflowError:
            execution.continue_on_error = False
        return pool.submit(
            self.runner.execute_job,
            self.info,
            inst,
            execution,
            needs,
            self.cancels[inst.key],
            self.on_update,
        )

    def _skip(self, inst: JobInstance, cancelled: bool = False) -> None:
        execution = self.results[inst.name]
        execution.status = RunStatus.COMPLETED
        execution.conclusion = Conclusion.CANCELLED if cancelled else Conclusion.SKIPPED
        execution.started_at = execution.completed_at = utc_now()
        self.runner.notify(self.on_update, execution)

    def _fail_condition(self, inst: JobInstance, exc: Exception) -> None:
        execution = self.results[inst.name]
        jl = JobLog(execution.log_path)
        jl.write(f"##[error]The job's condition is invalid: {exc}")
        jl.close()
        execution.status = RunStatus.COMPLETED
        execution.conclusion = Conclusion.FAILURE
        execution.started_at = execution.completed_at = utc_now()
        self.runner.notify(self.on_update, execution)

    def _finished(self, inst: JobInstance, future: concurrent.futures.Future[JobExecution]) -> None:
        execution = self.results[inst.name]
        exc = future.exception()
        if exc is not None:
            log.error("job %s failed in the runner: %s", inst.name, exc)
            execution.status = RunStatus.COMPLETED
            execution.conclusion = Conclusion.FAILURE
            self.runner.notify(self.on_update, execution)
        failed = execution.conclusion in BAD_CONCLUSIONS and not execution.continue_on_error
        if failed and inst.spec.matrix and inst.spec.fail_fast:
            self.cancels[inst.key].set()
