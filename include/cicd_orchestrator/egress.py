"""The egress proxy of replayed CI steps: the only way out of a sandbox's network namespace.

A step that may reach package registries (the configuration key ``job_network_allowlist``)
runs in a sandbox whose network namespace has only a loopback device; a small forwarder in
it (see :mod:`cicd_orchestrator.sandbox`) passes each connection of its loopback port to
this proxy's Unix socket, bound into the sandbox. The proxy runs outside, in the process
that started the step, and speaks just enough HTTP for package managers:

- ``CONNECT host:443`` (https): a tunnel, the TLS stays end to end;
- ``GET``/``HEAD http://host/...`` (plain http): the request is passed on with
  ``Connection: close``.

It refuses (``403``) every host whose name is not on the allowlist (exact names; an address
is never a name on it), every port but 80 and 443, and every name that resolves to an
address that is not public: loopback, link-local (``169.254.0.0/16``, ``fe80::/10``: cloud
metadata), private, shared, multicast, reserved, IPv4 in IPv6, or one of this host's own
addresses (the deployment's services). The name is resolved once, every address it gives is
checked, and the proxy connects to a checked address, never to the name again: a name that
answers differently the second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import ipaddress
import logging
import os
import re
import selectors
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: a host name and port to the addresses it resolves to
Resolver = Callable[[str, int], list[str]]
#: checked addresses and a port to a connected socket (None when none answers)
Connector = Callable[[tuple[str, ...], int], "socket.socket | None"]

ALLOWED_PORTS = frozenset({80, 443})
HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_MAX_HEAD = 16384
_HEAD_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 15.0
_IDLE_TIMEOUT = 300.0
_MAX_CONNECTIONS = 64
_SIOCGIFADDR = 0x8915


def normalize_host(host: str) -> str:
    """A host name as the allowlist holds it: lower case, no trailing dot, no brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def valid_host_name(host: str) -> bool:
    """Whether ``host`` is a DNS host name (not an address, not a pattern)."""
    name = normalize_host(host)
    if not HOST_RE.match(name):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return not name.replace(".", "").isdigit()
    return False


# --------------------------------------------------------------------------- addresses
def _interface_ipv4() -> set[str]:
    out: set[str] = set()
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            packed = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):
                raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, packed)
                out.add(socket.inet_ntoa(raw[20:24]))
    return out


def _interface_ipv6() -> set[str]:
    out: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/net/if_inet6", encoding="ascii") as f:
        for line in f:
            raw = line.split()[0] if line.strip() else ""
            if len(raw) == 32:
                out.add(str(ipaddress.IPv6Address(bytes.fromhex(raw))))
    return out


@functools.cache
def own_addresses() -> frozenset[IPAddress]:
    """This host's addresses (its interfaces and its name's): a step never reaches them."""
    found = _interface_ipv4() | _interface_ipv6()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    out: set[IPAddress] = set()
    for text in found:
        with contextlib.suppress(ValueError):
            out.add(ipaddress.ip_address(text.split("%", 1)[0]))
    return frozenset(out)


def forbidden_address(address: str, own: Iterable[IPAddress] = ()) -> str | None:
    """Why a step must not reach ``address`` (None when it is a public address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return f"{ip} carries an IPv4 address ({embedded})"
    checks = (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local (cloud metadata)"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_reserved, "reserved"),
        (ip.is_private, "private"),
        (not ip.is_global, "not public"),
        (ip in set(own), "this host's own"),
    )
    for hit, kind in checks:
        if hit:
            return f"{ip} is a {kind} address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (every family), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Decision:
    """Whether a step may reach ``host:port`` and, when it may, the address to connect to."""

    allowed: bool
    reason: str
    addresses: tuple[str, ...] = ()


def decide(
    host: str,
    port: int,
    allowlist: Iterable[str],
    *,
    resolve: Resolver = system_resolver,
    own: Iterable[IPAddress] | None = None,
) -> Decision:
    """The proxy's rule for one request (see the module docstring)."""
    name = normalize_host(host)
    allowed = {normalize_host(h) for h in allowlist}
    if not valid_host_name(name):
        return Decision(False, f"{name or '(empty)'} is not a host name on the allowlist")
    if name not in allowed:
        return Decision(False, f"{name} is not on the allowlist")
    if port not in ALLOWED_PORTS:
        return Decision(False, f"port {port} is not allowed (80 and 443 only)")
    try:
        addresses = resolve(name, port)
    except (OSError, UnicodeError) as exc:
        return Decision(False, f"{name} does not resolve: {exc}")
    if not addresses:
        return Decision(False, f"{name} does not resolve")
    mine = own_addresses() if own is None else frozenset(own)
    for address in addresses:
        why = forbidden_address(address, mine)
        if why is not None:
            return Decision(False, f"{name} resolves to {why}")
    return Decision(True, "allowed", tuple(addresses))


# --------------------------------------------------------------------------- the proxy
@dataclass
class _Request:
    method: str
    host: str
    port: int
    head: bytes  # what to send upstream first (empty for CONNECT)
    rest: bytes  # bytes the client sent after the head


def _split_host_port(text: str, default: int) -> tuple[str, int] | None:
    m = re.match(r"^\[([^\]]+)\](?::(\d+))?$|^([^:\[\]]+)(?::(\d+))?$", text.strip())
    if not m:
        return None
    host = m.group(1) or m.group(3)
    port = m.group(2) or m.group(4)
    return host, int(port) if port else default


def _parse(data: bytes) -> _Request | str:
    """The request of a client, or why it is refused."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return "not an HTTP/1 request"
    method, target, version = parts
    if method == "CONNECT":
        where = _split_host_port(target, 443)
        if where is None:
            return f"bad CONNECT target {target!r}"
        return _Request(method, where[0], where[1], b"", rest)
    if method not in ("GET", "HEAD"):
        return f"{method} is not allowed (CONNECT, GET and HEAD only)"
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        return "a plain request must name an http:// URL"
    try:
        port = url.port or 80
    except ValueError:
        return f"bad port in {target!r}"
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    kept = [
        line
        for line in lines[1:]
        if not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
    ]
    upstream = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
    return _Request(method, url.hostname, port, upstream.encode("latin-1"), rest)


def _reason_phrase(text: str) -> str:
    return re.sub(r"[^\x20-\x7e]", "?", f"cicd-orchestrator egress: {text}")[:300]


class EgressProxy:
    """The proxy for one allowlist, listening on a Unix socket in a private folder."""

    def __init__(
        self,
        allowlist: Iterable[str],
        *,
        resolve: Resolver = system_resolver,
        own: Iterable[IPAddress] | None = None,
        connect: Connector | None = None,
    ) -> None:
        self.allowlist = frozenset(normalize_host(h) for h in allowlist)
        self.resolve = resolve
        self.own = own
        self.connect = connect or connect_first
        self._dir = tempfile.mkdtemp(prefix="cicd-egress-")
        self.socket_path = str(Path(self._dir, "proxy.sock"))
        self._server: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(_MAX_CONNECTIONS)
        self._closed = threading.Event()

    def start(self) -> EgressProxy:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept_loop, name="cicd-egress", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def decide(self, host: str, port: int) -> Decision:
        return decide(host, port, self.allowlist, resolve=self.resolve, own=self.own)

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    client.sendall(
                        b"HTTP/1.1 503 cicd-orchestrator egress: too many connections\r\n\r\n"
                    )
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self._handle(client)
        except OSError as exc:
            log.debug("egress connection ended: %s", exc)
        finally:
            client.close()
            self._slots.release()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(_HEAD_TIMEOUT)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                return
            data += chunk
            if len(data) > _MAX_HEAD:
                self._refuse(client, 431, "request head too large")
                return
        request = _parse(data)
        if isinstance(request, str):
            self._refuse(client, 400, request)
            return
        decision = self.decide(request.host, request.port)
        if not decision.allowed:
            log.warning(
                "egress refused: %s %s:%s: %s",
                request.method,
                request.host,
                request.port,
                decision.reason,
            )
            self._refuse(client, 403, decision.reason)
            return
        upstream = self.connect(decision.addresses, request.port)
        if upstream is None:
            self._refuse(client, 502, f"cannot connect to {request.host}:{request.port}")
            return
        with upstream:
            if request.method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(request.head)
            if request.rest:
                upstream.sendall(request.rest)
            _relay(client, upstream)

    @staticmethod
    def _refuse(client: socket.socket, status: int, reason: str) -> None:
        phrase = _reason_phrase(reason)
        body = (phrase + "\n").encode()
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            client.sendall(head.encode() + body)


def connect_first(addresses: tuple[str, ...], port: int) -> socket.socket | None:
    """A connection to the first of ``addresses`` that answers (each one already checked:
    never the name again)."""
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(_CONNECT_TIMEOUT)
        try:
            sock.connect((address, port))
        except OSError:
            sock.close()
            continue
        return sock
    return None


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides are done or nothing moves for the idle timeout."""
    a.setblocking(False)
    b.setblocking(False)
    peer = {a: b, b: a}
    open_ends = {a, b}
    with selectors.DefaultSelector() as sel:
        for s in open_ends:
            sel.register(s, selectors.EVENT_READ)
        while open_ends:
            ready = sel.select(_IDLE_TIMEOUT)
            if not ready:
                return
            for key, _ in ready:
                src = key.fileobj
                assert isinstance(src, socket.socket)
                try:
                    chunk = src.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(src)
                    open_ends.discard(src)
                    with contextlib.suppress(OSError):
                        peer[src].shutdown(socket.SHUT_WR)
                    continue
                dst = peer[src]
                dst.settimeout(_IDLE_TIMEOUT)  # a peer that stops reading ends the relay
                try:
                    dst.sendall(chunk)
                finally:
                    dst.setblocking(False)


_proxies: dict[frozenset[str], EgressProxy] = {}
_lock = threading.Lock()


def proxy_for(allowlist: Iterable[str]) -> EgressProxy:
    """The running proxy of this process for ``allowlist`` (started at its first use, closed
    with its socket's folder when the process exits: a task process runs the exit handlers
    registered after its fork)."""
    key = frozenset(normalize_host(h) for h in allowlist)
    with _lock:
        proxy = _proxies.get(key)
        if proxy is None:
            proxy = EgressProxy(key).start()
            atexit.register(proxy.close)
            _proxies[key] = proxy
        return proxy
