"""An SFTP server as a file source, read with paramiko.

paramiko is imported when an SftpSource is made, not when this package is, so servers that never
read SFTP never load it (the registry imports this module lazily too).

Authentication follows the connection spec's two auth specs: `password`, or `privateKeyContent` (the
base64 of an OpenSSH or PEM private key file: Ed25519, ECDSA or RSA; DSA is refused, as OpenSSH and
paramiko dropped it) with an optional `passPhrase`. The key is decoded when the source is made, so a
bad key or a wrong pass phrase fails before any network traffic. A pass phrase given for a key that is
not protected is ignored rather than refused: it is a harmless mistake.

Host keys, trust on first use: an ingestion service connects to hosts its users name and has no
known_hosts file to check them against, and refusing unknown keys would make the connector unusable.
So the first key a host:port presents is accepted and remembered, in memory, for the life of the
process (`HOST_KEYS`, shared by every source); any later connection to that host:port that presents
a different key (a different key of the same type, or a key of another type) is refused with
SourceRefused before a password or a key signature is sent. This protects a run against a host that
is replaced or intercepted while the process lives; it cannot protect the very first connection, and
a restart forgets every key, so a legitimate key change is accepted by restarting the process.

Paths are relative to `folderPath` (the server's "/" when there is none; a relative folderPath is
relative to the login folder, as in any SFTP client) and are written "/folder/file.csv"; listings and
explore hand back paths of the same shape. ".." segments, NUL bytes and backslashes (a separator on
Windows servers) are refused with PathNotAllowed, so a path cannot climb out of folderPath by its text.
With a folderPath, the path's real location (the server's REALPATH, which resolves symlinks) must lie
inside the folder's, so a symlink cannot lead out either; listings skip such links. The server's own
permissions stay the real boundary. Hidden names (starting with ".") are skipped, symlinked folders
are shown but not descended into by recursive listings (no loops), and only regular files are listed.

Addresses: `host` is resolved and every address checked against the outbound policy (egress.py)
each time a connection is made, and the connection is made to the address that was checked; a host
that resolves to a link-local or cloud metadata address is SourceRefused.

Connections: at most `maxConcurrentConnections` SSH connections (default 1) are open at once; an
operation waits for a free one. `list`, `explore` and `test` hold one for the call; a stream from
`open` holds one until it is closed. Idle connections are kept for reuse until `close()`, and an
idle connection that turns out to be dead is replaced once, transparently.

Timeouts: TCP connect 10 s; SSH banner, key exchange and authentication 10 s each; any SFTP request
60 s. Files are read in windows of pipelined 32 KiB requests (readv), so latency costs one round trip
per window, not per request, and memory stays bounded by the window.

Failures map to the connector errors of base.py by exception type and errno, never by text: network
errors, timeouts and SSH protocol failures are SourceUnreachable; authentication failures, unusable
keys and a changed host key are SourceRefused; ENOENT is ObjectMissing; EACCES and other refusals by
the server are SourceRefused. Messages name the host, port, user and path; never the password, key or
pass phrase (and `repr` shows none of them).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import io
import posixpath
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from flowservice import egress as outbound
from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    PathNotAllowed,
    SourceObject,
    SourceRefused,
    SourceUnreachable,
)

if TYPE_CHECKING:
    import paramiko

CONNECT_TIMEOUT_S = 10
AUTH_TIMEOUT_S = 10  # the SSH banner, the key exchange, authentication
CHANNEL_TIMEOUT_S = 60  # opening the SFTP channel and every request on it
REQUEST = 32 * 1024  # paramiko's largest read request
WINDOW = 2 * 1024 * 1024  # bytes asked for at once (64 pipelined requests)
CHUNK = 1024 * 1024

T = TypeVar("T")


class HostKeys:
    """Trust on first use: the first host key seen per host:port, remembered in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, int], tuple[str, bytes]] = {}

    def check(self, host: str, port: int, key: paramiko.PKey) -> str | None:
        """None if `key` is the key remembered for host:port (remembering it if none was);
        otherwise the fingerprint of the remembered key."""
        seen = (key.get_name(), key.asbytes())
        with self._lock:
            known = self._keys.setdefault((host.lower(), port), seen)
        if known == seen:
            return None
        return _fingerprint(known[0], known[1])


HOST_KEYS = HostKeys()  # the process's memory of host keys, shared by every SftpSource


def _fingerprint(name: str, blob: bytes) -> str:
    import hashlib

    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"{name} SHA256:{digest}"


def _parts(path: str | None) -> builtins.list[str]:
    """The folderPath-relative segments of `path`, or PathNotAllowed if its text could climb out."""
    if not path:
        return []
    if "\x00" in path:
        raise PathNotAllowed(f"SFTP path {path!r} contains a NUL byte")
    if "\\" in path:
        raise PathNotAllowed(f"SFTP path {path!r} contains a backslash; use '/' between folders")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathNotAllowed(f"SFTP path {path!r} contains '..'")
    return parts


def _load_key(content: str, passphrase: str | None) -> paramiko.PKey:
    """The paramiko key for `privateKeyContent` (base64 of the key file; the file's text is accepted too)."""
    import paramiko
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    text = content.strip()
    if text.startswith("-----BEGIN"):
        data = text.encode()
    else:
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise SourceRefused("privateKeyContent is not base64 (encode the whole key file)") from None
    if b"-----BEGIN" not in data:
        raise SourceRefused("privateKeyContent is not an OpenSSH or PEM private key file")

    def load(password: bytes | None) -> Any:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            return serialization.load_ssh_private_key(data, password)
        return serialization.load_pem_private_key(data, password)

    secret = passphrase.encode() if passphrase else None
    try:
        try:
            key = load(secret)
        except TypeError:
            if secret is None:
                raise SourceRefused(
                    "the private key is protected by a pass phrase; give passPhrase"
                ) from None
            key = load(None)  # a pass phrase for a key that has none: ignore it
    except ConnectorError:
        raise
    except TypeError:
        raise SourceRefused("the private key could not be decrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        # Deliberately vague: cryptography says the same for a corrupt key and a wrong pass phrase.
        raise SourceRefused(
            "privateKeyContent is not a readable private key, or passPhrase is wrong"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return paramiko.RSAKey(key=key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ecdsa = paramiko.ECDSAKey(vals=(key, key.public_key()))
        if ecdsa.ecdsa_curve is None:
            raise SourceRefused(f"ECDSA keys on curve {key.curve.name} are not supported; use P-256/384/521")
        return ecdsa
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # paramiko builds Ed25519 keys from key files only: hand it one, unencrypted, in memory.
        plain = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        return paramiko.Ed25519Key(file_obj=io.StringIO(plain.decode()))
    if isinstance(key, dsa.DSAPrivateKey):
        raise SourceRefused("DSA keys are no longer supported by SSH; use an Ed25519, ECDSA or RSA key")
    raise SourceRefused(f"{type(key).__name__} keys are not supported; use an Ed25519, ECDSA or RSA key")


def _positive_int(params: dict[str, Any], name: str, default: int, maximum: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SourceRefused(f"SFTP {name} must be a whole number")
    try:
        number = int(value)
    except ValueError:
        raise SourceRefused(f"SFTP {name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise SourceRefused(f"SFTP {name} must be at least 1, not {number}")
    if maximum is not None and number > maximum:
        raise SourceRefused(f"SFTP {name} must be at most {maximum}, not {number}")
    return number


def _breaks_connection(exc: BaseException, conn: _Connection) -> bool:
    """Whether `exc` left the SSH connection unusable (as opposed to being a server's answer)."""
    if isinstance(exc, FileNotFoundError | PermissionError):
        return False  # SFTP status: no such file, permission denied
    if _bare(exc):
        # paramiko raises a bare OSError(message) for the server's other SFTP statuses, and also for
        # a channel that is closed: which of the two it was, the connection's state tells.
        return not conn.alive()
    return True  # socket errors, timeouts, SSHException, EOFError, SFTPError (a malformed answer), …


def _bare(exc: BaseException) -> bool:
    return type(exc) is OSError and exc.errno is None


class _Connection:
    """One SSH connection with its SFTP session."""

    def __init__(self, transport: paramiko.Transport, sftp: paramiko.SFTPClient) -> None:
        self.transport = transport
        self.sftp = sftp

    def alive(self) -> bool:
        channel = self.sftp.get_channel()
        return self.transport.is_active() and channel is not None and not channel.closed

    def close(self) -> None:
        try:
            self.sftp.close()
        finally:
            self.transport.close()


class _Pool:
    """At most `size` connections at once; idle ones are kept for reuse until `close()`."""

    def __init__(self, size: int, connect: Callable[[], _Connection]) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._connect = connect
        self._lock = threading.Lock()
        self._idle: builtins.list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._shut = threading.Event()  # set by close(); checked and changed under the lock

    def acquire(self) -> tuple[_Connection, bool]:
        """A connection of this caller's alone, and whether it was reused (so may have gone stale)."""
        self._slots.acquire()
        try:
            stale: builtins.list[_Connection] = []
            with self._lock:
                if self._shut.is_set():
                    raise ConnectorError("this SFTP source has been closed")
                conn = None
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    if candidate.alive():
                        conn = candidate
                    else:
                        stale.append(candidate)
            for dead in stale:
                _quietly_close(dead)
            reused = conn is not None
            if conn is None:
                conn = self._connect()
            with self._lock:
                closed = self._shut.is_set()
                if not closed:
                    self._busy.add(conn)
            if closed:
                _quietly_close(conn)
                raise ConnectorError("this SFTP source has been closed")
            return conn, reused
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: _Connection, *, broken: bool = False) -> None:
        with self._lock:
            if conn not in self._busy:
                return  # released twice, or closed by close(): the slot was given back already
            self._busy.discard(conn)
            keep = not broken and not self._shut.is_set() and conn.alive()
            if keep:
                self._idle.append(conn)
        if not keep:
            _quietly_close(conn)
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._shut.set()
            conns = self._idle + builtins.list(self._busy)
            self._idle.clear()
            busy = len(self._busy)
            self._busy.clear()
        for conn in conns:
            _quietly_close(conn)
        for _ in range(busy):
            self._slots.release()


def _quietly_close(conn: _Connection) -> None:
    with contextlib.suppress(Exception):  # closing what is already broken: nothing to report
        conn.close()


class SftpSource:
    """Files on an SFTP server, reached with a password or a private key."""

    def __init__(
        self,
        params: dict[str, Any],
        *,
        host_keys: HostKeys | None = None,
        egress: outbound.Egress | None = None,
    ) -> None:
        self.host = str(params.get("host") or "").strip()
        self.user = str(params.get("userName") or "")
        if not self.host:
            raise SourceRefused("an SFTP connection needs host")
        if not self.user:
            raise SourceRefused(f"an SFTP connection to {self.host} needs userName")
        self.port = _positive_int(params, "port", 22, 65535)
        self.max_connections = _positive_int(params, "maxConcurrentConnections", 1)
        folder = str(params.get("folderPath") or "")
        _parts(folder)  # the same rules as any path
        self.folder = folder.rstrip("/") if folder.strip("/") else ""  # "/" is the same as none
        self._host_keys = host_keys or HOST_KEYS
        self._egress = egress or outbound.DEFAULT
        self._password: str | None = None
        self._pkey: paramiko.PKey | None = None
        self._secrets: builtins.list[str] = []
        key_content = params.get("privateKeyContent")
        if key_content:
            passphrase = str(params.get("passPhrase") or "") or None
            self._secrets = [s for s in (str(key_content), passphrase or "") if s]
            self._pkey = _load_key(str(key_content), passphrase)
        elif params.get("password"):
            self._password = str(params["password"])
            self._secrets = [self._password]
        else:
            raise SourceRefused(f"an SFTP connection to {self._where()} needs password or privateKeyContent")
        self._root: str | None = None  # the folder's real path on the server, once known
        self._root_lock = threading.Lock()
        self._pool = _Pool(self.max_connections, self._connect)

    def __repr__(self) -> str:
        auth = "key" if self._pkey is not None else "password"
        return (
            f"SftpSource(host={self.host!r}, port={self.port}, user={self.user!r}, "
            f"folder={self.folder!r}, auth={auth!r}, max_connections={self.max_connections})"
        )

    # -- errors --------------------------------------------------------------------------------------

    def _where(self) -> str:
        where = f"SFTP server {self.host}:{self.port} (user {self.user!r}"
        if self.folder:
            where += f", folder {self.folder!r}"
        return where + ")"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, exc: BaseException, path: str | None, *, broken: bool) -> ConnectorError:
        """The connector error for a failure of a request about `path` (as this source names it);
        `broken`: the failure took the connection down."""
        import paramiko

        target = self._where() + (f", path {path!r}" if path else "")
        detail = self._scrub(str(exc) or type(exc).__name__)
        if isinstance(exc, FileNotFoundError):
            return ObjectMissing(f"{target}: does not exist")
        if isinstance(exc, PermissionError):
            return SourceRefused(f"{target}: permission denied")
        if isinstance(exc, TimeoutError):
            return SourceUnreachable(f"{target}: the server did not answer within {CHANNEL_TIMEOUT_S} s")
        if _bare(exc) and not broken:
            return SourceRefused(f"{target}: the server refused the request: {detail}")
        if isinstance(exc, OSError | EOFError | paramiko.SSHException | paramiko.SFTPError):
            return SourceUnreachable(f"{target}: connection failed: {detail}")
        return ConnectorError(f"{target}: {type(exc).__name__}: {detail}")

    # -- connections ---------------------------------------------------------------------------------

    def _connect(self) -> _Connection:
        import paramiko

        where = self._where()
        try:
            sock = self._egress.connect(self.host, self.port, CONNECT_TIMEOUT_S)
        except outbound.AddressNotAllowed as exc:
            raise SourceRefused(f"{where}: {exc}") from None
        except OSError as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            raise SourceUnreachable(f"{where}: cannot connect: {reason}") from None
        try:
            transport = paramiko.Transport(sock)
        except Exception as exc:
            sock.close()
            raise SourceUnreachable(f"{where}: cannot start SSH: {self._scrub(str(exc))}") from None
        try:
            transport.banner_timeout = AUTH_TIMEOUT_S
            transport.handshake_timeout = AUTH_TIMEOUT_S
            transport.auth_timeout = AUTH_TIMEOUT_S
            transport.channel_timeout = CHANNEL_TIMEOUT_S
            transport.start_client(timeout=AUTH_TIMEOUT_S)
            key = transport.get_remote_server_key()
            known = self._host_keys.check(self.host, self.port, key)
            if known is not None:
                raise SourceRefused(
                    f"{where}: the server's host key has changed (it was {known}, it is now "
                    f"{_fingerprint(key.get_name(), key.asbytes())}); refusing to log in. If the change "
                    "is legitimate, restart flowservice to forget the old key"
                )
            if self._pkey is not None:
                transport.auth_publickey(self.user, self._pkey)
            else:
                # fallback: a server that takes passwords only through keyboard-interactive
                transport.auth_password(self.user, self._password or "", fallback=True)
            if not transport.is_authenticated():
                raise SourceRefused(f"{where}: the server asks for more than one authentication method")
            sftp = paramiko.SFTPClient.from_transport(transport)
            channel = sftp.get_channel() if sftp is not None else None
            if sftp is None or channel is None:
                raise SourceUnreachable(f"{where}: the server did not open an SFTP session")
            channel.settimeout(CHANNEL_TIMEOUT_S)
            return _Connection(transport, sftp)
        except BaseException as exc:
            transport.close()
            if isinstance(exc, ConnectorError):
                raise
            if isinstance(exc, paramiko.AuthenticationException):
                kind = "key" if self._pkey is not None else "password"
                raise SourceRefused(f"{where}: authentication with the {kind} failed") from None
            if isinstance(exc, paramiko.SSHException | OSError | EOFError):
                raise SourceUnreachable(f"{where}: SSH failed: {self._scrub(str(exc))}") from None
            raise

    def _hold(self, path: str | None, work: Callable[[_Connection], T]) -> tuple[T, _Connection]:
        """`work` done on a connection that stays held; a reused connection found dead is replaced once."""
        for attempt in (1, 2):
            conn, reused = self._pool.acquire()
            try:
                return work(conn), conn
            except ConnectorError:
                self._pool.release(conn)
                raise
            except Exception as exc:
                broken = _breaks_connection(exc, conn)
                self._pool.release(conn, broken=broken)
                if broken and reused and attempt == 1:
                    continue
                raise self._error(exc, path, broken=broken) from exc
            except BaseException:
                self._pool.release(conn, broken=True)
                raise
        raise AssertionError("unreachable")

    def _run(self, path: str | None, work: Callable[[_Connection], T]) -> T:
        value, conn = self._hold(path, work)
        self._pool.release(conn)
        return value

    # -- paths ---------------------------------------------------------------------------------------

    def _root_of(self, sftp: paramiko.SFTPClient) -> str:
        with self._root_lock:
            if self._root is None:
                self._root = sftp.normalize(self.folder) if self.folder else "/"
            return self._root

    def _locate(self, sftp: paramiko.SFTPClient, parts: builtins.list[str]) -> str:
        """The server path of `parts`; with a folderPath, refused if its real path is outside it."""
        root = self._root_of(sftp)
        server = posixpath.join(root, *parts) if parts else root
        if parts and self.folder and not self._inside(root, sftp.normalize(server)):
            raise PathNotAllowed(f"{self._where()}: path {_show(parts)!r} leads outside folderPath")
        return server

    @staticmethod
    def _inside(root: str, real: str) -> bool:
        return root == "/" or real == root or real.startswith(root.rstrip("/") + "/")

    def _entry(
        self, sftp: paramiko.SFTPClient, folder: str, attr: paramiko.SFTPAttributes
    ) -> tuple[str, paramiko.SFTPAttributes, bool] | None:
        """("file" | "folder", attributes, is a link) of a visible entry of `folder`, else None."""
        name = attr.filename
        if name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
            return None
        mode = attr.st_mode
        link = mode is not None and stat.S_ISLNK(mode)
        if mode is None or link:
            child = posixpath.join(folder, name)
            try:
                if link and self.folder and not self._inside(self._root_of(sftp), sftp.normalize(child)):
                    return None  # a link out of folderPath
                attr = sftp.stat(child)  # follows the link
            except (FileNotFoundError, PermissionError):
                return None  # a dangling link, or one into a place we may not see
            except OSError as exc:
                channel = sftp.get_channel()
                if not _bare(exc) or channel is None or channel.closed:
                    raise
                return None  # e.g. a link loop, which servers answer with a plain failure
            mode = attr.st_mode
        if mode is not None and stat.S_ISREG(mode):
            return "file", attr, link
        if mode is not None and stat.S_ISDIR(mode):
            return "folder", attr, link
        return None  # fifos, sockets, devices: never data

    def _scan(
        self, sftp: paramiko.SFTPClient, folder: str
    ) -> builtins.list[tuple[str, str, paramiko.SFTPAttributes, bool]]:
        """(kind, name, attributes, is a link) of the visible entries of `folder`, by name."""
        found = []
        for attr in sftp.listdir_attr(folder):
            entry = self._entry(sftp, folder, attr)
            if entry is not None:
                found.append((entry[0], attr.filename, entry[1], entry[2]))
        found.sort(key=lambda e: e[1])
        return found

    # -- FileSource ----------------------------------------------------------------------------------

    def test(self) -> None:
        def check(conn: _Connection) -> None:
            root = self._root_of(conn.sftp)
            mode = conn.sftp.stat(root).st_mode
            if mode is None or not stat.S_ISDIR(mode):
                raise ObjectMissing(f"{self._where()}: the folder is not a folder")

        self._run(self.folder or "/", check)

    def list(self, path: str, *, recursive: bool = False) -> Iterator[SourceObject]:
        parts = _parts(path)
        shown = _show(parts)

        def collect(conn: _Connection) -> builtins.list[SourceObject]:
            server = self._locate(conn.sftp, parts)
            attr = conn.sftp.stat(server)
            if attr.st_mode is not None and stat.S_ISREG(attr.st_mode):
                return [_object(shown, attr)]
            if attr.st_mode is None or not stat.S_ISDIR(attr.st_mode):
                raise ObjectMissing(f"{self._where()}: {shown!r} is neither a file nor a folder")
            found: builtins.list[SourceObject] = []
            self._collect(conn.sftp, server, parts, recursive, found)
            found.sort(key=lambda o: o.path)
            return found

        # Collected whole, so no connection is held while the caller iterates (and perhaps opens files).
        return iter(self._run(shown, collect))

    def _collect(
        self,
        sftp: paramiko.SFTPClient,
        folder: str,
        parts: builtins.list[str],
        recursive: bool,
        found: builtins.list[SourceObject],
    ) -> None:
        for kind, name, attr, link in self._scan(sftp, folder):
            if kind == "file":
                found.append(_object(_show([*parts, name]), attr))
            elif recursive and not link:  # a linked folder could lead back up: never descend into one
                self._collect(sftp, posixpath.join(folder, name), [*parts, name], recursive, found)

    def open(self, path: str) -> BinaryIO:
        parts = _parts(path)
        shown = _show(parts)

        def start(conn: _Connection) -> tuple[paramiko.SFTPFile, int]:
            server = self._locate(conn.sftp, parts)
            attr = conn.sftp.stat(server)
            if attr.st_mode is not None and stat.S_ISDIR(attr.st_mode):
                raise ObjectMissing(f"{self._where()}: {shown!r} is a folder, not a file")
            if attr.st_mode is not None and not stat.S_ISREG(attr.st_mode):
                raise ObjectMissing(f"{self._where()}: {shown!r} is not a regular file")
            return conn.sftp.open(server, "rb"), attr.st_size or 0

        (handle, size), conn = self._hold(shown, start)
        return io.BufferedReader(_Reader(self, conn, handle, size, shown), buffer_size=CHUNK)

    def explore(self, path: str | None = None) -> builtins.list[ExploreItem]:
        parts = _parts(path)
        shown = _show(parts)

        def scan(conn: _Connection) -> builtins.list[ExploreItem]:
            server = self._locate(conn.sftp, parts)
            attr = conn.sftp.stat(server)
            if attr.st_mode is not None and stat.S_ISREG(attr.st_mode):
                raise ObjectMissing(f"{self._where()}: {shown!r} is a file, not a folder")
            items = [
                ExploreItem("folder" if kind == "folder" else "file", name, _show([*parts, name]))
                for kind, name, _, _ in self._scan(conn.sftp, server)
            ]
            items.sort(key=lambda i: (i.type != "folder", i.name))
            return items

        return self._run(shown, scan)

    def close(self) -> None:
        """Close every connection, idle or in use (streams still open then fail)."""
        self._pool.close()


def _show(parts: builtins.list[str]) -> str:
    return "/" + "/".join(parts)


def _object(path: str, attr: paramiko.SFTPAttributes) -> SourceObject:
    # SFTP version 3 (what OpenSSH speaks) carries modification times in whole seconds.
    return SourceObject(path, int(attr.st_size or 0), int(attr.st_mtime or 0) * 1000)


class _Reader(io.RawIOBase):
    """A remote file read a window at a time; closing it gives its connection back to the pool.

    Windows are fetched with readv (pipelined requests). From the second window on, the next window
    is asked for before the current one is taken, so the server always has requests queued and the
    pipeline never drains at a window's edge; the first is asked for alone, so reading only a file's
    head (a preview) costs one window. At most three windows are held in memory (the one being read,
    two in flight). A stream closed early first takes what is in flight, so no request is left on the
    connection it gives back.
    """

    def __init__(
        self, source: SftpSource, conn: _Connection, handle: paramiko.SFTPFile, size: int, path: str
    ) -> None:
        super().__init__()
        self._source = source
        self._conn: _Connection | None = conn
        self._handle = handle
        self._size = size  # as stat saw it; a file that grew is read on to its end
        self._path = path
        self._asked = 0  # the end of the last window asked for
        self._offset = 0  # the end of the data handed to `_window`
        self._pending: deque[tuple[Iterator[bytes], bytes]] = deque()  # windows in flight, first blocks
        self._window = memoryview(b"")
        self._used = 0
        self._broken = False
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("read from a closed SFTP stream")
        if self._used >= len(self._window) and not self._fill():
            return 0
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._window) - self._used)
        view[:count] = self._window[self._used : self._used + count]
        self._used += count
        return count

    def _ask(self) -> None:
        """Put the next window in flight (readv starts when its first block is asked for)."""
        if self._asked >= self._size:
            return
        end = min(self._size, self._asked + WINDOW)
        blocks = self._handle.readv([(at, min(REQUEST, end - at)) for at in range(self._asked, end, REQUEST)])
        self._pending.append((blocks, next(blocks, b"")))
        self._asked = end

    def _take(self) -> bytes:
        """The whole of the oldest window in flight (b"" when none is)."""
        if not self._pending:
            return b""
        blocks, first = self._pending.popleft()
        return first + b"".join(blocks)

    def _fill(self) -> bool:
        try:
            ahead = self._asked > 0  # past the first window the caller is reading on: keep one ahead
            if not self._pending:
                self._ask()
            if ahead:
                self._ask()
            data = self._take()
            if not data and self._offset >= self._size:
                # Past the size stat gave: the file may have grown since; read on plainly to its end.
                self._handle.seek(self._offset)
                data = self._handle.read(CHUNK)
        except Exception as exc:
            self._broken = self._broken or self._conn is None or _breaks_connection(exc, self._conn)
            raise self._source._error(exc, self._path, broken=self._broken) from exc
        self._window = memoryview(data)
        self._used = 0
        self._offset += len(data)
        return bool(data)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if not self._broken:
                    while self._pending:  # requests in flight must be answered before the handle goes
                        self._take()
                    self._handle.close()
            except Exception:
                self._broken = True  # the close did not go through: do not reuse the connection
            finally:
                self._source._pool.release(conn, broken=self._broken)
        super().close()
