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

:data:`RUNS_ON_IMAGES` maps GitHub's Linux runner labels to public images made to stand
for them: with ``CICD_RUNS_ON_IMAGES=1`` a job without ``container:`` runs in that image
(:mod:`~cicd_orchestrator.actions.runner`).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator import git
from cicd_orchestrator.actions import expressions
from cicd_orchestrator.actions.workflow import load_yaml
from cicd_orchestrator.exceptions import CicdError

#: the container engines, in order of preference
ENGINES = ("podman", "docker")
#: how long ``<engine> info`` may take
INFO_TIMEOUT = 20.0
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


@functools.cache
def detect_engine() -> Engine | None:
    """The first of :data:`ENGINES` on PATH whose ``info`` succeeds (once per process;
    :func:`forget_engine` asks again)."""
    for name in ENGINES:
        exe = shutil.which(name)
        if exe is None:
            continue
        try:
            done = subprocess.run(
                [exe, "info"],
                capture_output=True,
                timeout=INFO_TIMEOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
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
    found = (engine or detect_engine)()
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
