"""The network of repository commands (issue 12, finding 3): none for repair tools; for
replayed CI steps, only the registries of ``job_network_allowlist`` through the egress proxy,
never the host's loopback services, link-local (cloud metadata), private or own addresses.

No test sends a packet off this machine: the proxy decides before it connects, and where a
connection is made it goes to a server of the test on loopback.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator import egress
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.process import run_command

RunFn = Callable[..., Any]
PUBLIC = "151.101.0.223"  # a public address; never connected to here


def printed(job: Any) -> str:
    """What a job's last step printed (its log after the command's echo)."""
    return str(job.read_log().split("##[endgroup]")[-1])


def _connect_script(port: int) -> str:
    return (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(3)\n"
        "try:\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
        "    print('CONNECTED', s.recv(100))\n"
        "except OSError as exc:\n"
        "    print('refused:', exc)\n"
    )


# --------------------------------------------------------------------------- repair tools
def test_a_repair_tool_has_no_network(work: Path, listener: Any) -> None:
    script = _connect_script(listener.port)
    result = run_command(["python3", "-c", script], cwd=work, timeout=60)
    assert "refused:" in result.output and "CONNECTED" not in result.output, result.output
    devices = run_command(["cat", "/proc/net/dev"], cwd=work, timeout=30).output
    interfaces = [ln.split(":")[0].strip() for ln in devices.splitlines() if ":" in ln]
    assert interfaces == ["lo"], devices
    assert listener.hits == 0


# --------------------------------------------------------------------------- steps
def test_a_step_reaches_no_loopback_service_of_the_host(run_workflow: RunFn, listener: Any) -> None:
    direct = "\n".join(
        f"              {line}" for line in _connect_script(listener.port).splitlines()
    )
    wf = f"""
    on: push
    jobs:
      direct:
        steps:
          - run: |
              python3 - <<'EOF'
{direct}
              EOF
      through-the-proxy:
        steps:
          - run: |
              python3 - <<'EOF'
              import os, urllib.request
              os.environ.pop("NO_PROXY"); os.environ.pop("no_proxy")  # all through the proxy
              proxy = urllib.request.ProxyHandler({{"http": os.environ["HTTP_PROXY"]}})
              opener = urllib.request.build_opener(proxy)
              for url in ["http://127.0.0.1:{listener.port}/", "http://localhost:{listener.port}/",
                          "http://169.254.169.254/latest/meta-data/",
                          "http://metadata.google.internal/computeMetadata/v1/"]:
                  try:
                      print("GOT", opener.open(url, timeout=5).read())
                  except Exception as exc:
                      print("refused", url, exc)
              EOF
    """
    runner = JobRunner(network_allowlist=("pypi.org",))
    first, second = run_workflow(wf, runner=runner)
    text = printed(first) + printed(second)
    assert first.conclusion is Conclusion.SUCCESS and second.conclusion is Conclusion.SUCCESS
    assert "refused:" in text
    assert "GOT" not in text and "CONNECTED" not in text, text
    assert text.count("HTTP Error 403") == 4, text
    assert "169.254.169.254 is not a host name on the allowlist" in text
    assert listener.hits == 0


def test_an_allowlisted_name_that_resolves_to_loopback_is_refused_end_to_end(
    run_workflow: RunFn, listener: Any
) -> None:
    wf = f"""
    on: push
    jobs:
      fetch:
        steps:
          - run: |
              python3 - <<'EOF'
              import os, urllib.request
              os.environ.pop("NO_PROXY"); os.environ.pop("no_proxy")  # all through the proxy
              proxy = urllib.request.ProxyHandler({{"http": os.environ["HTTP_PROXY"]}})
              opener = urllib.request.build_opener(proxy)
              for url in ["http://localhost/a", "http://localhost:{listener.port}/b",
                          "http://not-listed.test/c"]:
                  try:
                      print("GOT", opener.open(url, timeout=5).read())
                  except Exception as exc:
                      print("refused", url, exc)
              EOF
    """
    # localhost is on the allowlist, yet it is loopback: refused; the other name is not on it
    runner = JobRunner(network_allowlist=("localhost", "pypi.org"))
    (job,) = run_workflow(wf, runner=runner)
    text = printed(job)
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "GOT" not in text
    assert "localhost resolves to" in text and "is a loopback address" in text
    assert f"port {listener.port} is not allowed" in text
    assert "not-listed.test is not on the allowlist" in text
    assert listener.hits == 0


def test_a_step_reaches_an_allowlisted_registry_through_the_proxy(
    run_workflow: RunFn, http_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole path: env, forwarder, socket, proxy (its resolver and connector faked so the
    registry is the test's server on loopback)."""
    port = http_server.server_address[1]

    def to_test_server(addresses: tuple[str, ...], _port: int) -> socket.socket | None:
        assert addresses == (PUBLIC,)  # the checked address, never the name again
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    proxy = egress.EgressProxy(
        ["registry.test"], resolve=lambda h, p: [PUBLIC], own=(), connect=to_test_server
    ).start()
    monkeypatch.setattr(egress, "proxy_for", lambda hosts: proxy)
    wf = """
    on: push
    jobs:
      fetch:
        steps:
          - run: |
              echo "proxy=$HTTP_PROXY/$HTTPS_PROXY no=$NO_PROXY"
              python3 -c "import urllib.request as u
              print(u.urlopen('http://registry.test/simple/six/', timeout=5).read())"
    """
    try:
        (job,) = run_workflow(wf, runner=JobRunner(network_allowlist=("registry.test",)))
    finally:
        proxy.close()
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "hello from /simple/six/" in text
    assert "proxy=http://127.0.0.1:3128/http://127.0.0.1:3128 no=localhost" in text


def test_steps_have_no_network_by_default(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      offline:
        steps:
          - run: |
              test -z "${HTTP_PROXY:-}" && echo "no proxy"
              cat /proc/net/dev
    """
    (job,) = run_workflow(wf)
    text = job.read_log()
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "no proxy" in text and "eth0" not in text


# --------------------------------------------------------------------------- the rule
def _resolver(*addresses: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(addresses)


def _never(host: str, port: int) -> list[str]:
    raise AssertionError("a name off the allowlist is never resolved")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "169.254.169.254",
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.10",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
    ],
)
def test_an_allowlisted_name_with_a_forbidden_address_is_refused(address: str) -> None:
    decision = egress.decide("pypi.org", 443, ["pypi.org"], resolve=_resolver(address), own=())
    assert not decision.allowed and "pypi.org resolves to" in decision.reason


def test_the_rule() -> None:
    allow = ["pypi.org", "files.pythonhosted.org"]
    ok = egress.decide("PyPI.org.", 443, allow, resolve=_resolver(PUBLIC), own=())
    assert ok.allowed and ok.addresses == (PUBLIC,)
    for host, port, why in [
        ("evil.example", 443, "not on the allowlist"),
        ("sub.pypi.org", 443, "not on the allowlist"),
        ("169.254.169.254", 80, "not a host name"),
        ("127.0.0.1", 443, "not a host name"),
        ("[::1]", 443, "not a host name"),
        ("pypi.org", 22, "port 22 is not allowed"),
    ]:
        resolve = _resolver(PUBLIC) if why.startswith("port") else _never
        decision = egress.decide(host, port, allow, resolve=resolve, own=())
        assert not decision.allowed and why in decision.reason, (host, decision)
    mixed = egress.decide("pypi.org", 443, allow, resolve=_resolver(PUBLIC, "10.1.2.3"), own=())
    assert not mixed.allowed  # one forbidden address is enough
    own = [ipaddress.ip_address(PUBLIC)]
    mine = egress.decide("pypi.org", 443, allow, resolve=_resolver(PUBLIC), own=own)
    assert not mine.allowed and "this host's own" in mine.reason


def _ask(proxy: egress.EgressProxy, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(proxy.socket_path)
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_proxy_connects_only_to_the_address_it_checked(
    http_server: ThreadingHTTPServer,
) -> None:
    """DNS rebinding: the name answers a public address, then loopback; the proxy resolves
    once and connects to what it checked."""
    port = http_server.server_address[1]
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    calls: list[tuple[str, ...]] = []

    def connect(addresses: tuple[str, ...], _port: int) -> socket.socket | None:
        calls.append(addresses)
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    proxy = egress.EgressProxy(
        ["registry.test"], resolve=lambda h, p: next(answers), own=(), connect=connect
    ).start()
    try:
        got = _ask(proxy, b"GET http://registry.test/x HTTP/1.1\r\nHost: registry.test\r\n\r\n")
        refused = _ask(proxy, b"GET http://registry.test/y HTTP/1.1\r\nHost: registry.test\r\n\r\n")
        tunnel = _ask(proxy, b"POST http://registry.test/z HTTP/1.1\r\n\r\n")
    finally:
        proxy.close()
    assert b"200 OK" in got and b"hello from /x" in got
    assert b"403" in refused and b"loopback" in refused
    assert b"405" not in tunnel and b"POST is not allowed" in tunnel
    assert calls == [(PUBLIC,)]


def test_the_proxy_tunnels_connect(http_server: ThreadingHTTPServer) -> None:
    port = http_server.server_address[1]
    proxy = egress.EgressProxy(
        ["registry.test"],
        resolve=lambda h, p: [PUBLIC],
        own=(),
        connect=lambda a, p: socket.create_connection(("127.0.0.1", port), timeout=5),
    ).start()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(proxy.socket_path)
            s.sendall(b"CONNECT registry.test:443 HTTP/1.1\r\nHost: registry.test:443\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200 Connection established")
            s.sendall(b"GET /tunnelled HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
    finally:
        proxy.close()
    assert b"hello from /tunnelled" in reply


def test_the_allowlist_takes_host_names_only() -> None:
    config = load_config({"job_network_allowlist": ["PyPI.org", "files.pythonhosted.org"]})
    assert config.job_network_allowlist == ("pypi.org", "files.pythonhosted.org")
    assert load_config({}).job_network_allowlist == ()
    for bad in (["169.254.169.254"], ["*.example.org"], ["https://pypi.org"], ["pypi.org:443"]):
        with pytest.raises(ConfigError, match="host names only"):
            load_config({"job_network_allowlist": bad})
    with pytest.raises(ConfigError):
        load_config({"job_network_allowlist": "pypi.org"})


def test_a_process_leaves_no_proxy_socket_behind(tmp_path: Path) -> None:
    """Each process that replays a step starts its proxy on first use; when it exits, the
    socket and its private folder go with it (a worker runs thousands of such processes)."""
    script = (
        "import sys\n"
        "from cicd_orchestrator import egress\n"
        "print(egress.proxy_for(['registry.test']).socket_path)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        timeout=60,
        check=True,
    )
    socket_path = Path(proc.stdout.strip())
    assert socket_path.parent.parent == tmp_path, proc.stdout
    assert list(tmp_path.iterdir()) == []
