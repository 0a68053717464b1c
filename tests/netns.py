"""A network namespace wired to this one by a veth pair, and a TCP forwarder into loopback services.

Why a namespace: the lease fence exists for a worker that is cut off from the database but keeps
running. Killing or pausing a process is not that; a worker in its own network namespace whose link
goes down is: its packets vanish, its sockets stay open and hang, and when the link comes back it
carries on as if nothing happened. Downing the host end of the veth (`Namespace.cut`) does exactly
this, for one process, without touching the rest of the machine.

Why a forwarder: the services under test (PostgreSQL) listen on 127.0.0.1 only, which a namespace
cannot reach. `Forwarder` listens on the host end's address, in this process, and carries bytes to
the loopback service and back; with the link down nothing reaches it, so it carries nothing, and a
session through it resumes when the link is restored (the TCP connections survive the cut).

Linux only, and root only (`ip netns`); `unsupported()` says why not before anything is tried.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

_serial = itertools.count()


class NetnsError(Exception):
    """An `ip` command failed (no privileges for namespaces, a name or address in use…)."""


def unsupported() -> str | None:
    """Why namespaces cannot be made here, or None when they can be tried."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "making network namespaces needs root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


def ip(*args: str) -> str:
    """Run `ip …`: its output, or NetnsError with its message when it fails."""
    command = ["ip", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise NetnsError(f"`{' '.join(command)}` failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _mac(*args: str) -> str:
    """The hardware address of the link `ip … link show` names."""
    [link] = json.loads(ip("-j", *args))
    address: str = link["address"]
    return address


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace `name` reached through `host_veth` (address `host_ip`) ↔ `ns_veth` (`ns_ip`)."""

    name: str
    host_veth: str
    ns_veth: str
    host_ip: str
    ns_ip: str

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the namespace (same filesystem, environment and pid space as ours)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self) -> None:
        """Take the link down: from now on the namespace's packets to us, and ours to it, are lost."""
        ip("link", "set", self.host_veth, "down")

    def restore(self) -> None:
        """Bring the link back up; connections that were open across the cut carry on."""
        ip("link", "set", self.host_veth, "up")


def _names() -> tuple[str, str, str, str, str]:
    """Names and a /30 unique to this process (and call): parallel sessions do not collide."""
    serial = next(_serial)
    tag = f"{os.getpid()}{serial}"
    key = (os.getpid() * 8 + serial) % 2**14  # 16384 /30s in 10.213.0.0/16
    net, low = f"10.213.{key >> 6}", (key & 63) * 4
    # interface names have at most 15 characters: "fsp" + pid (≤ 7 digits) + serial + "h"
    return f"fsp-{tag}", f"fsp{tag}h", f"fsp{tag}n", f"{net}.{low + 1}", f"{net}.{low + 2}"


def _remove(namespace: Namespace) -> None:
    """Delete the veth pair and the namespace, whatever state they are in; never raises."""
    with suppress(NetnsError, subprocess.SubprocessError, OSError):
        ip("link", "del", namespace.host_veth)  # deletes its peer too
    with suppress(NetnsError, subprocess.SubprocessError, OSError):
        ip("netns", "del", namespace.name)


@contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace with a veth pair up and addressed; removed on exit, also on failure.

    Processes started in it must be ended before the block exits: a namespace lives as long as a
    process is in it, and the block's exit only removes its name and link.
    """
    name, host_veth, ns_veth, host_ip, ns_ip = _names()
    made = Namespace(name, host_veth, ns_veth, host_ip, ns_ip)
    _remove(made)  # leftovers of a killed session whose pid we were given again
    try:
        ip("netns", "add", name)
        ip("link", "add", host_veth, "type", "veth", "peer", "name", ns_veth, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", host_veth)
        ip("link", "set", host_veth, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", ns_veth)
        ip("-n", name, "link", "set", ns_veth, "up")
        # Fixed neighbours (ARP entries) on both ends. Otherwise the retransmissions during a cut make
        # the kernel give up resolving the far end's address, and that failure lands right after the
        # link comes back: the next connection attempt fails with "no route to host". Here a cut
        # only loses packets, and nothing else changes.
        host_mac = _mac("link", "show", "dev", host_veth)
        ns_mac = _mac("-n", name, "link", "show", "dev", ns_veth)
        ip("neigh", "replace", ns_ip, "lladdr", ns_mac, "dev", host_veth, "nud", "permanent")
        ip("-n", name, "neigh", "replace", host_ip, "lladdr", host_mac, "dev", ns_veth, "nud", "permanent")
        yield made
    finally:
        _remove(made)


class Forwarder:
    """Carries TCP connections made to `listen_host:port` on to `target`, both ways, with threads.

    It does nothing about partitions itself: a cut link simply stops bytes from reaching it.
    `upstream_ports()` names its connections as the target sees them (PostgreSQL's
    `pg_stat_activity.client_port`), so a test can ask the server what the far side is doing.
    """

    def __init__(self, listen_host: str, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server((listen_host, 0))
        self.host: str = listen_host
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._stopped = False
        self._sockets: list[socket.socket] = []
        self._ports: list[int] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name=f"forward-{self.port}", daemon=True)

    def __enter__(self) -> Forwarder:
        self._acceptor.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def upstream_ports(self) -> list[int]:
        with self._lock:
            return list(self._ports)

    def stop(self) -> None:
        """Stop accepting and end every connection; the threads are joined."""
        with self._lock:
            self._stopped = True
            sockets = list(self._sockets)
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self._listener.close()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=10)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pumps blocked in recv/send
        for thread in self._threads:
            thread.join(timeout=10)
        for sock in sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._stopped:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
                self._ports.append(upstream.getsockname()[1])
                for source, sink in ((client, upstream), (upstream, client)):
                    thread = threading.Thread(target=_pump, args=(source, sink), daemon=True)
                    thread.start()
                    self._threads.append(thread)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction until its end closes, then pass the end on (a half-close, like TCP's)."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # reset, or shut down by stop()
    finally:
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
