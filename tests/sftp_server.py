"""A real SFTP server on a loopback port (asyncssh), for the SFTP connector's tests.

A real server, not a mock, so the connector goes through paramiko's key exchange, host-key check,
authentication and SFTP protocol exactly as it would against OpenSSH. asyncssh is asyncio-based, so
it runs on an event loop of its own in a background thread; `start_sftp_server` returns once the
listener is bound (an event set by the thread, no polling) and `stop` closes the listener and every
open connection, then ends the loop and joins the thread.

The server serves one folder as its root (asyncssh's virtual chroot: "/" is that folder) to one user,
who may log in with the password or with any key of `authorized_key`. Any path with a segment named
"forbidden" is answered with "permission denied", so tests can see a server's refusal even when they
run as root (for whom file modes deny nothing).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

FORBIDDEN = b"forbidden"


@dataclass
class ServerStats:
    """Connections the server has open now and the most it has had open at once."""

    open: int = 0
    peak: int = 0


class _Sftp(asyncssh.SFTPServer):
    def map_path(self, path: bytes) -> bytes:
        if FORBIDDEN in path.split(b"/"):
            raise asyncssh.SFTPPermissionDenied("permission denied")
        return super().map_path(path)


class _Ssh(asyncssh.SSHServer):
    def __init__(
        self,
        username: str,
        password: str,
        keys: asyncssh.SSHAuthorizedKeys,
        conns: set[asyncssh.SSHServerConnection],
        stats: ServerStats,
    ) -> None:
        self._username = username
        self._password = password
        self._keys = keys
        self._conns = conns
        self._stats = stats
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._conns.add(conn)
        self._stats.open += 1
        self._stats.peak = max(self._stats.peak, self._stats.open)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._conns.discard(self._conn)
        self._stats.open -= 1

    def begin_auth(self, username: str) -> bool:
        if username == self._username and self._conn is not None:
            self._conn.set_authorized_keys(self._keys)
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._username and hmac.compare_digest(password.encode(), self._password.encode())


def start_sftp_server(
    root: Path,
    username: str,
    password: str,
    authorized_key: str,
    *,
    port: int = 0,
    host_key: asyncssh.SSHKey | None = None,
    stats: ServerStats | None = None,
) -> tuple[str, int, Callable[[], None]]:
    """Serve `root` over SFTP on 127.0.0.1; return (host, port, stop).

    `authorized_key` is authorized_keys text: one or more "ssh-ed25519 AAAA…" lines. `port` 0 lets the
    system choose a free port; a given port (that of a stopped server) lets a test restart a server
    in the same place, with `host_key` choosing its key (a new Ed25519 key when None). `stats` is
    updated as clients connect and disconnect.
    """
    keys = asyncssh.import_authorized_keys(authorized_key)
    server_key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    counts = stats if stats is not None else ServerStats()
    conns: set[asyncssh.SSHServerConnection] = set()
    chroot = os.fsencode(root)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    started: dict[str, asyncssh.SSHAcceptor] = {}
    failed: list[BaseException] = []

    async def listen() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[server_key],
            server_factory=lambda: _Ssh(username, password, keys, conns, counts),
            sftp_factory=lambda chan: _Sftp(chan, chroot=chroot),
            allow_scp=False,
            login_timeout=10,
            reuse_address=True,
        )

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["acceptor"] = loop.run_until_complete(listen())
        except BaseException as exc:
            failed.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=f"sftp-server-{username}", daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the SFTP test server did not start listening within 30 s")
    if failed:
        thread.join()
        raise failed[0]
    acceptor = started["acceptor"]
    bound = acceptor.get_port()
    stopped = threading.Lock()

    async def shutdown() -> None:
        acceptor.close()
        await acceptor.wait_closed()
        for conn in list(conns):
            conn.close()
        for conn in list(conns):
            await conn.wait_closed()

    def stop() -> None:
        if not stopped.acquire(blocking=False):
            return  # stopped already
        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    return "127.0.0.1", bound, stop
