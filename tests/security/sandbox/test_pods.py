"""A job's containers (``container:``, ``services:``) attacked: the pod shows the job nothing
of the host, gives it no network but its own loopback (and the allowlisted registries through
the egress proxy), runs as an unprivileged id range of the host, and the job cannot steer the
engine that runs it."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import egress
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.constants import Conclusion

RunFn = Callable[..., Any]
CANARY = "cicd-canary-7f3a9c1e5b"  # in the worker's environment (conftest)
PUBLIC = "151.101.0.223"  # a public address; never connected to here


def printed(job: Any) -> str:
    """What the job's last step printed (its log after the command's echo)."""
    return str(job.read_log().split("##[endgroup]")[-1])


@pytest.fixture
def busybox(container_images: tuple[str, str]) -> str:
    return container_images[0]


def test_the_container_sees_nothing_of_the_host(
    run_workflow: RunFn, busybox: str, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text(CANARY)
    wf = f"""
    on: push
    jobs:
      snoop:
        container: {busybox}
        steps:
          - run: |
              cat {secret} || echo "no host file"
              env
              cat /proc/1/environ | tr '\\0' '\\n' || true
              ls {Path(sys.prefix)} || echo "no orchestrator environment"
              cat /proc/self/uid_map
              ls /var/lib/containers /run/containers 2>&1 || true
    """
    (job,) = run_workflow(wf)
    log = printed(job)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()
    assert CANARY not in log and "AIRFLOW__" not in log
    assert "no host file" in log and "no orchestrator environment" in log
    mapping = [ln.split()[-3:] for ln in log.splitlines() if ln.split()[-3:][:1] == ["0"]]
    assert mapping and all(int(host) > 0 for _, host, _ in mapping), log  # root is not root


def test_the_container_has_no_network_but_its_own(
    run_workflow: RunFn, busybox: str, listener: Any
) -> None:
    wf = f"""
    on: push
    jobs:
      reach-out:
        container: {busybox}
        steps:
          - run: |
              nc -w 2 127.0.0.1 {listener.port} </dev/null && echo CONNECTED || echo "blocked"
              wget -qT 3 -O- http://host.containers.internal:{listener.port}/ || echo "blocked"
              wget -qT 3 -O- http://{PUBLIC}/ || echo "blocked"
              cat /proc/net/dev
    """
    (job,) = run_workflow(wf)
    log = printed(job)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()
    assert "CONNECTED" not in log and "host-secret" not in log
    assert log.count("blocked") == 3
    interfaces = [ln.split(":")[0].split()[-1] for ln in log.splitlines() if ":" in ln[30:]]
    assert "eth0" not in interfaces, log
    assert listener.hits == 0


def test_a_job_cannot_steer_the_engine(run_workflow: RunFn, busybox: str, tmp_path: Path) -> None:
    """A step writes engine settings into the job's HOME and names them in GITHUB_ENV; the
    engine that runs the next step never reads them (its environment is the orchestrator's)."""
    marker = tmp_path / "engine-hijacked"
    wf = f"""
    on: push
    jobs:
      hijack:
        container: {busybox}
        steps:
          - run: |
              mkdir -p "$HOME/.config/containers"
              printf '#!/bin/sh\\ntouch {marker}\\nexit 1\\n' > "$HOME/evil-runtime"
              chmod +x "$HOME/evil-runtime"
              printf '[engine]\\nruntime = "evil"\\n[engine.runtimes]\\nevil = ["%s"]\\n' \\
                "$HOME/evil-runtime" > "$HOME/.config/containers/containers.conf"
              cp "$HOME/.config/containers/containers.conf" "$HOME/evil.conf"
              echo "CONTAINERS_CONF=$HOME/evil.conf" >> "$GITHUB_ENV"
              echo "XDG_CONFIG_HOME=$HOME/.config" >> "$GITHUB_ENV"
          - run: echo "the next step ran in the container as before"
    """
    (job,) = run_workflow(wf)
    log = printed(job)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()
    assert "the next step ran in the container as before" in log
    assert not marker.exists()


def test_a_service_only_job_keeps_the_sandbox(
    run_workflow: RunFn, container_images: tuple[str, str], tmp_path: Path, listener: Any
) -> None:
    """Steps beside services run in the command sandbox, joined to the pod's network only."""
    _, httpd = container_images
    secret = tmp_path / "host-secret.txt"
    secret.write_text(CANARY)
    wf = f"""
    on: push
    jobs:
      beside:
        services:
          web:
            image: {httpd}
        steps:
          - run: |
              cat {secret} || echo "no host file"
              env | grep -c CICD_TEST_WORKER_SECRET || true
              python3 -c "import socket
              try:
                  socket.create_connection(('127.0.0.1', {listener.port}), timeout=3)
                  print('CONNECTED')
              except OSError as exc:
                  print('refused', exc)"
    """
    (job,) = run_workflow(wf)
    log = printed(job)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()
    assert CANARY not in log and "no host file" in log and "CONNECTED" not in log
    assert "refused" in log and listener.hits == 0


def test_a_container_reaches_an_allowlisted_registry_only_through_the_proxy(
    run_workflow: RunFn,
    busybox: str,
    http_server: ThreadingHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    listener: Any,
) -> None:
    port = http_server.server_address[1]

    def to_test_server(addresses: tuple[str, ...], _port: int) -> socket.socket | None:
        assert addresses == (PUBLIC,)
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    proxy = egress.EgressProxy(
        ["registry.test"], resolve=lambda h, p: [PUBLIC], own=(), connect=to_test_server
    ).start()
    monkeypatch.setattr(egress, "proxy_for", lambda hosts: proxy)
    wf = f"""
    on: push
    jobs:
      fetch:
        container: {busybox}
        steps:
          - run: |
              echo "proxy=$HTTP_PROXY"
              wget -qO- http://registry.test/simple/six/
              wget -qO- http://127.0.0.1:{listener.port}/ || echo "loopback refused"
    """
    try:
        (job,) = run_workflow(wf, runner=JobRunner(network_allowlist=("registry.test",)))
    finally:
        proxy.close()
    log = printed(job)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()
    assert "hello from /simple/six/" in log and "proxy=http://127.0.0.1:3128" in log
    assert "loopback refused" in log and listener.hits == 0
