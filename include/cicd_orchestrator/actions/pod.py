"""A replayed job's containers: its image (``container:``) and its service containers
(``services:``), in one podman pod of its own.

A pod is made for each job that names a container or services, and removed when the job
ends (:meth:`JobPod.close`). What it is:

- **isolated.** The pod has a user namespace of its own (``--userns=auto``: its root is an
  unprivileged id range of the host, never the host's root) and no network but its own
  loopback (``--network none``). The job container and the services share that loopback,
  so a service answers on ``localhost:<its port>`` and on its label as a host name (the
  pod's ``/etc/hosts``), as on GitHub. Every container runs with no new privileges. The job
  container sees the job's folders read-write (owned by the pod's root, ``:U``) and the
  deployment's read-only folders (``CICD_JOB_READ_ONLY``), at the same paths as on the host,
  and nothing else of the host. Services see none of them.
- **egress.** With a ``job_network_allowlist``, the egress proxy's forwarder listens on the
  pod's loopback (``127.0.0.1:3128``, the same proxy as the command sandbox's: the listed
  registries only) and the job's commands get the proxy variables.
- **the engine.** Only podman runs containers (daemonless, so the job's containers are this
  worker's children, in user namespaces). The engine client runs with an environment of the
  orchestrator's choosing, never the job's: the job's variables reach its processes as
  ``--env`` values (they live in the engine's storage until the pod is removed).
- **steps.** A job with a container runs each step with ``podman exec`` in it (its PATH the
  image's, after what ``$GITHUB_PATH`` added). A job with services only runs its steps in the
  command sandbox, as any job, joined to the pod's network (:func:`netns`).

Images come from the engine's store, or are pulled when missing; an image that cannot be had
makes the job not replayable, and the log says why.

Every engine call holds the engine's lock
(:func:`~cicd_orchestrator.actions.containers.engine_lock`), except the steps' own
``podman exec``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cicd_orchestrator import egress, runner_tools, sandbox
from cicd_orchestrator.actions import expressions
from cicd_orchestrator.actions.containers import ContainerError, Engine, engine_env, run_engine
from cicd_orchestrator.exceptions import CicdError

#: the longest a service may take to become healthy when its options do not say
SERVICE_READY_TIMEOUT = 120.0
#: the service options that the pod honours (health checks); the others are left out
_HEALTH_OPTIONS = (
    "--health-cmd",
    "--health-interval",
    "--health-timeout",
    "--health-retries",
    "--health-start-period",
)


@dataclass(frozen=True)
class ContainerSpec:
    """A container of the job: its image, its variables and its health check (an image
    name that the engine would read as an option is refused: ContainerError)."""

    image: str
    env: dict[str, str] = field(default_factory=dict)
    health: tuple[str, ...] = ()  # the --health-* options, as the engine takes them
    ignored: tuple[str, ...] = ()  # the options and keys the pod does not honour
    aliases: tuple[str, ...] = ()  # more host names of a service (besides its label)
    command: tuple[str, ...] = ()  # a service's command instead of the image's

    def __post_init__(self) -> None:
        image = self.image
        if not image or image.startswith("-") or any(c.isspace() or c == "\0" for c in image):
            raise ContainerError(f"not an image name: {image!r}")


@dataclass(frozen=True)
class PodSpec:
    """What a job runs besides its steps: its own container (or none) and its services."""

    job: ContainerSpec | None
    services: dict[str, ContainerSpec]


def _text(value: Any, ctx: Mapping[str, Any]) -> str:
    if isinstance(value, str) and "${{" in value:
        value = expressions.interpolate_value(value, ctx)
    return expressions.to_string(value)


def _health(options: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The health options of an ``options`` string, and what is left out."""
    try:
        words = shlex.split(options)
    except ValueError:
        return (), (options,)
    kept: list[str] = []
    ignored: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        if name in _HEALTH_OPTIONS:
            if not eq and i + 1 < len(words):  # the value is the next word
                i += 1
                value = words[i]
            kept.append(f"{name}={value}")
        else:
            ignored.append(word)
        i += 1
    return tuple(kept), tuple(ignored)


def container_spec(value: Any, ctx: Mapping[str, Any], *, service: bool) -> ContainerSpec | None:
    """A ``container:`` or a service as GitHub writes it (an image, or a mapping with
    ``image``, ``env``, ``options``...), its expressions evaluated; None when it names no
    image (GitHub then runs the job on the runner, or skips the service)."""
    body = value if isinstance(value, Mapping) else {"image": value}
    image = _text(body.get("image"), ctx).strip() if body.get("image") is not None else ""
    if not image:
        return None
    env_body = body.get("env") or {}
    env = (
        {str(k): _text(v, ctx) for k, v in env_body.items()}
        if isinstance(env_body, Mapping)
        else {}
    )
    health, ignored = _health(_text(body.get("options") or "", ctx))
    if not service:
        ignored, health = (*health, *ignored), ()
    ignored += tuple(f"{k}:" for k in ("ports", "volumes", "credentials") if body.get(k))
    return ContainerSpec(image, env, health, ignored)


def pod_spec(body: Mapping[str, Any], ctx: Mapping[str, Any]) -> PodSpec:
    """The containers a GitHub job (its mapping ``body``) asks for (ContainerError for an
    invalid one)."""
    try:
        job = container_spec(body.get("container"), ctx, service=False)
        services: dict[str, ContainerSpec] = {}
        raw = body.get("services")
        for label, value in raw.items() if isinstance(raw, Mapping) else ():
            if not label_ok(str(label)):
                raise ContainerError(f"not a service label: {label!r}")
            spec = container_spec(value, ctx, service=True)
            if spec is not None:
                services[str(label)] = spec
    except ContainerError:
        raise
    except CicdError as exc:  # an expression that does not evaluate
        raise ContainerError(f"the job's containers cannot be read: {exc}") from exc
    return PodSpec(job, services)


def label_ok(label: str) -> bool:
    """A service label usable as a host and container name."""
    return bool(label) and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)


def _env_args(env: Mapping[str, str]) -> list[str]:
    args: list[str] = []
    for key, value in env.items():
        if key and "=" not in key and "\0" not in key + value:
            args += ["--env", f"{key}={value}"]
    return args


class JobPod:
    """One job's pod (see the module docstring)."""

    def __init__(self, engine: Engine, root: Path, say: Callable[[str], object]) -> None:
        """``root``: a folder of the job that its commands cannot write (the pod's hosts
        file); ``say``: writes a line to the job's log."""
        self.engine = engine
        self.name = f"cicd-job-{uuid.uuid4().hex[:12]}"
        self.root = root
        self.say = say
        self.job_container: str | None = None
        self.image_path: list[str] = []
        self.has_bash = True  # the job container has bash (GitHub's default shell)
        self.owner: tuple[int, int] | None = None
        self.proxy: bool = False
        self._forwarder: subprocess.Popen[bytes] | None = None
        self._netns: str | None = None
        self._created = False

    # ------------------------------------------------------------------ the engine
    def _engine(self, *args: str, timeout: float | None = None) -> str:
        """Run the engine client with ``args`` (under the engine's lock); its output."""
        return run_engine(self.engine.executable, *args, timeout=timeout)

    # ------------------------------------------------------------------ start
    def start(
        self,
        spec: PodSpec,
        *,
        writable: Sequence[str],
        readable: Sequence[str],
        network: Sequence[str] = (),
    ) -> None:
        """Make the pod, start the services (and wait for their health checks) and the job
        container; ``network``: the registries the job may reach through the egress proxy.
        Raises ContainerError (the pod is then removed by :meth:`close`)."""
        if self.engine.name != "podman":
            raise ContainerError(
                f"only podman runs a job's containers here ({self.engine.name} found)"
            )
        hosts = self.root / "hosts"
        hosts.write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n"
            + "".join(
                f"127.0.0.1\t{' '.join([label, *service.aliases])}\n"
                for label, service in spec.services.items()
            ),
            encoding="utf-8",
        )
        # a create that failed or ran out of time may have left the pod half made: close()
        # removes it all the same
        self._created = True
        self._engine(
            "pod", "create", "--name", self.name, "--network", "none", "--userns", "auto",
            "--label", "cicd-orchestrator=job",
        )  # fmt: skip
        self._engine("pod", "start", self.name)
        common = ["--pod", self.name, "--pull", "never", "--security-opt", "no-new-privileges"]
        common += ["--volume", f"{hosts}:/etc/hosts:ro"]
        for label, service in spec.services.items():
            self._note_ignored(f"service '{label}'", service)
            self.say(f"Starting service container '{label}' ({service.image})")
            self._have_image(service.image)
            self._engine(
                "run", "--detach", "--name", f"{self.name}-{label}", *common,
                *service.health, *_env_args(service.env), service.image, *service.command,
            )  # fmt: skip
        for label, service in spec.services.items():
            if service.health:
                self._wait_healthy(label, service)
        registries = sorted({egress.normalize_host(h) for h in network if h.strip()})
        if registries:
            self._start_forwarder(egress.proxy_for(registries).socket_path)
        if spec.job is not None:
            self._start_job_container(spec.job, common, writable, readable)

    def _note_ignored(self, what: str, spec: ContainerSpec) -> None:
        if spec.ignored:
            self.say(
                f"##[warning]The {what} is run without {' '.join(spec.ignored)} (not "
                "replayed locally; the pod shares one loopback: a port is reached as it is)"
            )

    def _start_job_container(
        self,
        job: ContainerSpec,
        common: list[str],
        writable: Sequence[str],
        readable: Sequence[str],
    ) -> None:
        self._note_ignored("job container", job)
        self.say(f"Starting job container ({job.image})")
        mounts: list[str] = []
        for folder in writable:
            path = os.path.abspath(folder)
            mounts += ["--volume", f"{path}:{path}:U"]
        for folder in readable:
            path = os.path.abspath(folder)
            if os.path.isdir(path):
                mounts += ["--volume", f"{path}:{path}:ro"]
        name = f"{self.name}-job"
        self._have_image(job.image)
        self._engine(
            "run", "--detach", "--init", "--name", name, *common, *mounts,
            *_env_args(job.env), "--entrypoint", "tail", job.image, "-f", "/dev/null",
        )  # fmt: skip
        self.job_container = name
        if writable:  # the pod's root on the host: the owner ``:U`` gave the job's folders
            info = os.stat(os.path.abspath(writable[0]))
            self.owner = (info.st_uid, info.st_gid)
        env = self._engine("exec", name, "env")
        path = next((ln[5:] for ln in env.splitlines() if ln.startswith("PATH=")), "")
        self.image_path = [p for p in path.split(":") if p] or list(runner_tools.SYSTEM_PATH)
        try:
            self._engine("exec", name, "sh", "-c", "command -v bash", timeout=60.0)
        except ContainerError:
            self.has_bash = False

    def _have_image(self, image: str) -> None:
        """Pull ``image`` unless the engine's store has it."""
        try:
            self._engine("image", "exists", image)
        except ContainerError:
            self._engine("pull", "--quiet", image)

    def _wait_healthy(self, label: str, service: ContainerSpec) -> None:
        """Run the service's health check until it passes, for as long as the engine would
        before calling it unhealthy (its start period, then ``retries`` intervals; the
        engine's defaults 30 s and 3), checking at least every second."""
        options = dict(opt.partition("=")[::2] for opt in service.health)
        interval = _seconds(options.get("--health-interval"), 30.0)
        retries = int(_seconds(options.get("--health-retries"), 3))
        patience = _seconds(options.get("--health-start-period"), 0.0)
        deadline = time.monotonic() + min(
            SERVICE_READY_TIMEOUT, patience + max(retries, 1) * interval
        )
        container = f"{self.name}-{label}"
        while True:
            try:
                self._engine("healthcheck", "run", container, timeout=60.0)
                self.say(f"Service '{label}' is healthy")
                return
            except ContainerError as exc:
                if time.monotonic() >= deadline:
                    raise ContainerError(f"the service '{label}' never became healthy") from exc
            time.sleep(min(interval, 1.0))

    def _start_forwarder(self, proxy_socket: str) -> None:
        """The egress forwarder on the pod's loopback (see the module docstring)."""
        python = sandbox.forwarder_python()
        if python is None:
            raise ContainerError("no python3 under /usr for the pod's egress forwarder")
        nsenter = shutil.which("nsenter", path=os.pathsep.join(runner_tools.SYSTEM_PATH))
        if nsenter is None:
            raise ContainerError("nsenter (util-linux) is needed for the pod's egress forwarder")
        self._forwarder = subprocess.Popen(
            [
                nsenter, f"--net={self.netns()}", python, "-I", "-S", "-c",
                sandbox.FORWARDER, proxy_socket, str(sandbox.PROXY_PORT),
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=engine_env(), start_new_session=True,
        )  # fmt: skip
        assert self._forwarder.stdout is not None
        if self._forwarder.stdout.readline().strip() != b"ok":
            raise ContainerError("the egress forwarder could not start in the job's pod")
        self.proxy = True

    # ------------------------------------------------------------------ use
    def netns(self) -> str:
        """The pod's network namespace (``/proc/<pid>/ns/net`` of its infra container)."""
        if self._netns is None:
            infra = self._engine("pod", "inspect", self.name, "--format", "{{.InfraContainerID}}")
            pid = self._engine("inspect", infra, "--format", "{{.State.Pid}}")
            if not pid.isdigit() or pid == "0":
                raise ContainerError("the pod's network is not up")
            self._netns = f"/proc/{pid}/ns/net"
        return self._netns

    @property
    def hosts_file(self) -> str:
        return str(self.root / "hosts")

    def exec_argv(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]) -> list[str]:
        """The command line that runs ``argv`` in the job container, in ``cwd``, with
        exactly ``env`` (its PATH names the container's folders: see :attr:`image_path`)."""
        if self.job_container is None:
            raise ContainerError("the job has no container")
        return [
            self.engine.executable, "exec", "--interactive", "--workdir", cwd,
            *_env_args(env), self.job_container, *argv,
        ]  # fmt: skip

    def placement(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]
    ) -> tuple[list[str], dict[str, Any]]:
        """Where a command of the job runs, as ``run_process`` takes it: the command line
        and the keyword arguments (in the job container through the engine, or in the
        command sandbox joined to the pod's network)."""
        if self.job_container is not None:
            return self.exec_argv(argv, cwd=cwd, env=env), {"engine_env": engine_env()}
        return list(argv), {"netns": self.netns(), "hosts_file": self.hosts_file}

    def command_env(self, env: dict[str, str], path_added: Sequence[str] = ()) -> dict[str, str]:
        """A command's environment ``env`` for this pod: in the job container the PATH is
        ``path_added`` then the image's (the host's folders mean nothing there); with the
        egress forwarder, the proxy variables."""
        if self.job_container is not None:
            env["PATH"] = ":".join([*path_added, *self.image_path])
        return sandbox.proxy_env(env) if self.proxy else env

    def hand_over(self, paths: Sequence[Path]) -> None:
        """Give files the runner made in the job's folders after the job container started
        (a step's script, its command files) to the pod's root, so the steps may write them."""
        if self.owner is None:
            return
        for path in paths:
            os.chown(path, *self.owner, follow_symlinks=False)

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Stop and remove the pod and the forwarder (never raises)."""
        if self._forwarder is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._forwarder.pid, 9)
            with contextlib.suppress(subprocess.SubprocessError):
                self._forwarder.wait(timeout=5)
            if self._forwarder.stdout is not None:
                self._forwarder.stdout.close()
            self._forwarder = None
        if not self._created:
            return
        with contextlib.suppress(ContainerError):
            self._engine("pod", "stop", "--time", "0", self.name, timeout=120.0)
        for _ in range(3):  # a just-stopped container's mounts may still be busy
            try:
                self._engine("pod", "rm", "--force", self.name, timeout=120.0)
                self._created = False
                return
            except ContainerError:
                time.sleep(0.5)


def _seconds(text: str | None, default: float) -> float:
    """``10s``, ``1m``, ``500ms`` or a plain number, in seconds."""
    if not text:
        return default
    text = text.strip()
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    try:
        return float(text)
    except ValueError:
        return default
