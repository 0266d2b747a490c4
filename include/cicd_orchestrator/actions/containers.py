"""Jobs that need a container engine, or another system, to be replayed.

A job with ``container:`` (its steps run in that image) or ``services:`` (side containers:
a database, a cache), or whose ``runs-on`` names a Windows or macOS runner, cannot be
replayed by running its steps on this Linux machine. :func:`replay_obstacle` says why such
a job cannot be replayed here; the runner then does not run it, writes
``##[error]Cannot replay locally: <why>`` in its log and concludes it ``neutral`` with
``JobExecution.not_replayable`` set (the validation tells it from a job that failed).

- a Windows or macOS ``runs-on`` is never replayable (no engine runs those systems here);
- ``container:`` or ``services:`` need podman on the orchestrator's PATH, answering
  ``info`` (:func:`detect_engine`); the job then runs in a pod of its own
  (:mod:`~cicd_orchestrator.actions.pod`). Docker is detected but not used (its daemon runs
  containers as root, outside the worker's user namespaces): with docker only, or no
  engine, the job is not replayable and the reason says which.

**One engine call at a time.** podman deadlocks when several processes create, start, run,
pull, inspect and remove pods with ``--userns auto`` at the same moment (each waits on a lock
another holds, until the engine's timeout). Every call the orchestrator makes to the engine
is therefore made one at a time on a host, by every worker and task alike, detection and
pulls included: it holds an exclusive lock on a file of the system's temporary folder
(:func:`engine_lock`), which the jobs' commands cannot see (theirs is a private one). Only the
steps' own ``podman exec`` in a running container goes without it (a step may run for hours).

:data:`RUNS_ON_IMAGES` maps GitHub's Linux runner labels to public images made to stand
for them: with ``CICD_RUNS_ON_IMAGES=1`` a job without ``container:`` runs in that image
(:mod:`~cicd_orchestrator.actions.runner`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator import git, runner_tools
from cicd_orchestrator.actions import expressions
from cicd_orchestrator.actions.workflow import load_yaml
from cicd_orchestrator.exceptions import CicdError

#: the container engines, in order of preference
ENGINES = ("podman", "docker")
#: how long ``<engine> info`` may take
INFO_TIMEOUT = 20.0
#: how long one engine command may take (a pull included), and wait for the engine's lock
ENGINE_TIMEOUT = 600.0
#: what of the orchestrator's environment the engine client gets (its own settings)
_ENGINE_ENV = ("HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "TMPDIR")
_ENGINE_ENV_PREFIXES = ("CONTAINERS_", "CONTAINER_")
#: GitHub's Linux runner labels and the image that stands for each (the catthehacker runner images)
RUNS_ON_IMAGES: dict[str, str] = {
    "ubuntu-latest": "catthehacker/ubuntu:act-latest",
    "ubuntu-24.04": "catthehacker/ubuntu:act-24.04",
    "ubuntu-22.04": "catthehacker/ubuntu:act-22.04",
    "ubuntu-20.04": "catthehacker/ubuntu:act-20.04",
    "ubuntu-slim": "catthehacker/ubuntu:act-latest",
    "ubuntu-24.04-arm": "catthehacker/ubuntu:act-24.04",
    "ubuntu-22.04-arm": "catthehacker/ubuntu:act-22.04",
    "self-hosted": "catthehacker/ubuntu:act-latest",
    "linux": "catthehacker/ubuntu:act-latest",
}
#: label prefixes of runners that are not Linux
_OTHER_SYSTEMS = ("windows", "macos", "win")


@dataclass(frozen=True)
class Engine:
    """A container engine that answered ``info``."""

    name: str
    executable: str


class ContainerError(CicdError):
    """A job's containers could not be started (the message says why)."""


class EngineBusy(ContainerError):
    """The engine's lock could not be had (another job held it too long, or it is planted)."""


def engine_lock_path() -> Path:
    """The file whose lock every engine call holds (see the module docstring)."""
    return Path(tempfile.gettempdir()) / f"cicd-engine-{os.getuid()}.lock"


@contextlib.contextmanager
def engine_lock(timeout: float) -> Iterator[None]:
    """Hold the engine's lock, waiting for it at most ``timeout`` seconds (EngineBusy).

    The file is opened without following a symlink and must be the orchestrator's user's:
    another user of the host cannot plant it, nor hold the lock of a file it owns."""
    try:
        fd = os.open(
            engine_lock_path(), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise EngineBusy(f"the engine's lock cannot be opened: {exc}") from exc
    try:
        if os.fstat(fd).st_uid != os.getuid():
            raise EngineBusy(f"the engine's lock {engine_lock_path()} is another user's")
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise EngineBusy(
                        f"the engine was busy with another job for over {timeout:g}s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the file releases its lock


def engine_env() -> dict[str, str]:
    """The engine client's environment: the system PATH and the orchestrator's own engine
    settings, nothing of a job's."""
    env = {"PATH": os.pathsep.join(runner_tools.SYSTEM_PATH), "LANG": "C.UTF-8"}
    for key, value in os.environ.items():
        if key in _ENGINE_ENV or key.startswith(_ENGINE_ENV_PREFIXES):
            env[key] = value
    return env


def run_engine(executable: str, *args: str, timeout: float | None = None) -> str:
    """Run the engine client ``executable`` with ``args`` under the engine's lock; its output.
    ContainerError when it fails or runs out of ``timeout`` (default :data:`ENGINE_TIMEOUT`),
    EngineBusy when the lock cannot be had within :data:`ENGINE_TIMEOUT`."""
    name = os.path.basename(executable)
    timeout = ENGINE_TIMEOUT if timeout is None else timeout
    with engine_lock(ENGINE_TIMEOUT):
        try:
            done = subprocess.run(
                [executable, *args],
                capture_output=True,
                env=engine_env(),
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ContainerError(f"{name} {args[0]} took over {timeout:g}s") from exc
        except OSError as exc:
            raise ContainerError(f"{name} cannot run: {exc}") from exc
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = err[-1] if err else f"exit code {done.returncode}"
        what = " ".join(a for a in args[:2] if not a.startswith("-"))
        raise ContainerError(f"{name} {what}: {why}")
    return done.stdout.decode("utf-8", "replace").strip()


@functools.cache
def detect_engine() -> Engine | None:
    """The first of :data:`ENGINES` on PATH whose ``info`` succeeds (once per process;
    :func:`forget_engine` asks again). EngineBusy when the engine's lock cannot be had: a
    busy engine is not an absent one."""
    for name in ENGINES:
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            run_engine(exe, "info", timeout=INFO_TIMEOUT)
        except EngineBusy:
            raise
        except ContainerError:
            continue
        return Engine(name, exe)
    return None


def forget_engine() -> None:
    detect_engine.cache_clear()


# --------------------------------------------------------------------------- what a job needs
def runs_on_labels(runs_on: Any, ctx: Mapping[str, Any]) -> list[str]:
    """The labels of a job's ``runs-on`` (a label, a list, ``{group, labels}``; expressions
    evaluated)."""
    value = runs_on
    if isinstance(value, Mapping):
        value = value.get("labels") or []
    if isinstance(value, str) and "${{" in value:
        value = expressions.interpolate_value(value, ctx)
    items = value if isinstance(value, list) else [value]
    labels: list[str] = []
    for item in items:
        if isinstance(item, str) and "${{" in item:
            item = expressions.interpolate_value(item, ctx)
        if isinstance(item, list):
            labels += [str(i) for i in item if i is not None]
        elif item is not None and str(item).strip():
            labels.append(str(item).strip())
    return labels


def image_for(labels: Sequence[str]) -> str | None:
    """The image that stands for a Linux runner (see :data:`RUNS_ON_IMAGES`)."""
    for label in labels:
        if label in RUNS_ON_IMAGES:
            return RUNS_ON_IMAGES[label]
    return None


def _container_image(container: Any, ctx: Mapping[str, Any]) -> str | None:
    image = container.get("image") if isinstance(container, Mapping) else container
    if image is None:
        return None
    text = expressions.to_string(expressions.interpolate_value(image, ctx))
    return text.strip() or None


def job_body(git_dir: str, sha: str, workflow_path: str, key: str) -> Mapping[str, Any]:
    """A job's mapping as written in the workflow file (empty when it cannot be read)."""
    try:
        data = load_yaml(git.show_file(git_dir, sha, workflow_path), workflow_path)
    except CicdError:
        return {}
    jobs = data.get("jobs") if isinstance(data, Mapping) else None
    body = jobs.get(key) if isinstance(jobs, Mapping) else None
    return body if isinstance(body, Mapping) else {}


def replay_obstacle(
    body: Mapping[str, Any],
    runs_on: Any,
    ctx: Mapping[str, Any],
    engine: Callable[[], Engine | None] | None = None,
) -> str | None:
    """Why a job (its mapping ``body``) cannot be replayed on this machine, or None;
    ``engine`` (default :func:`detect_engine`) is asked only when the job needs one."""
    try:
        labels = runs_on_labels(runs_on, ctx)
        other = [lb for lb in labels if lb.lower().startswith(_OTHER_SYSTEMS)]
        if other:
            return (
                f"the job runs on '{other[0]}', and only Linux jobs can be replayed on this machine"
            )
        needs = []
        container = body.get("container")
        if container:
            needs.append(f"in the container '{_container_image(container, ctx) or container}'")
        services = body.get("services")
        if isinstance(services, Mapping) and services:
            needs.append("with the services " + ", ".join(str(s) for s in services))
    except CicdError as exc:
        return f"the job's runs-on or container cannot be read: {exc}"
    if not needs:
        return None
    what = " and ".join(needs)
    try:
        found = (engine or detect_engine)()
    except ContainerError as exc:
        return f"the job runs {what}, and the container engine cannot be asked: {exc}"
    if found is None:
        return (
            f"the job runs {what}, and no container engine (podman answering 'info') is "
            "available on this machine"
        )
    if found.name != "podman":
        return (
            f"the job runs {what}; the local runner runs a job's containers with podman only "
            f"(in user namespaces, without a root daemon), and found {found.name}"
        )
    return None
