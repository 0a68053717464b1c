"""The SFTP connector against a real SFTP server (asyncssh on loopback), with real keys and files."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from flowservice import catalog
from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    PathNotAllowed,
    SourceObject,
    SourceRefused,
    SourceUnreachable,
)
from flowservice.connectors.registry import file_source
from flowservice.connectors.sftp import CONNECT_TIMEOUT_S, HostKeys, SftpSource
from tests.sftp_server import ServerStats, start_sftp_server

USER = "ingest"
PASSWORD = "Tr0ub4dor&3-sftp-password"
PASSPHRASE = "correct horse battery staple"
MTIME = 1_700_000_000
BIG = 5 * 1024 * 1024 + 12_345  # not a multiple of the read window or of a request


@dataclass(frozen=True)
class Keys:
    """Client keys as the connection spec takes them (base64 of the key file), and the server's list."""

    ed25519: str
    ed25519_protected: str
    rsa_protected: str  # traditional PEM ("BEGIN RSA PRIVATE KEY"), encrypted
    ecdsa: str  # PKCS#8 PEM ("BEGIN PRIVATE KEY")
    stranger: str  # a valid key the server does not know
    authorized: str  # authorized_keys text of all but the stranger


def _b64(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def _public(key: Any) -> str:
    line: bytes = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return line.decode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    protect = serialization.BestAvailableEncryption(PASSPHRASE.encode())
    plain = serialization.NoEncryption()
    openssh = serialization.PrivateFormat.OpenSSH
    pem = serialization.Encoding.PEM
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_protected = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    stranger = ed25519.Ed25519PrivateKey.generate()
    return Keys(
        ed25519=_b64(ed.private_bytes(pem, openssh, plain)),
        ed25519_protected=_b64(ed_protected.private_bytes(pem, openssh, protect)),
        rsa_protected=_b64(
            rsa_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, protect)
        ),
        ecdsa=_b64(ec_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, plain)),
        stranger=_b64(stranger.private_bytes(pem, openssh, plain)),
        authorized="\n".join(_public(k) for k in (ed, ed_protected, rsa_key, ec_key)) + "\n",
    )


@pytest.fixture(scope="module")
def host_key() -> asyncssh.SSHKey:
    """One host key for every server of this module that does not test host keys: a port the system
    hands out again must not look like a server whose key changed."""
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sftp-root")
    files = {
        "note.txt": b"at the top\n",
        "data/a.csv": b"id,name\n1,a\n",
        "data/b.csv": b"id,name\n2,b\n3,c\n",
        "data/.hidden.csv": b"hidden\n",
        "data/.partial/x.csv": b"hidden folder\n",
        "data/sub/c.csv": b"id\n4\n",
        "data/sub/deep/d.json": b'{"id": 5}\n',
        "forbidden/x.csv": b"secret\n",
    }
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (root / "big").mkdir()
    (root / "big" / "big.bin").write_bytes(os.urandom(BIG))
    (root / "big" / "empty.bin").write_bytes(b"")
    os.symlink(".", root / "data" / "loop")  # a folder link back to itself
    os.symlink("a.csv", root / "data" / "alias.csv")
    os.symlink("missing.csv", root / "data" / "dangling.csv")
    os.symlink("../note.txt", root / "data" / "up.csv")  # out of /data, still inside the server's root
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (MTIME, MTIME))
    return root


@pytest.fixture(scope="module")
def server(tree: Path, keys: Keys, host_key: asyncssh.SSHKey) -> Iterator[tuple[str, int]]:
    host, port, stop = start_sftp_server(tree, USER, PASSWORD, keys.authorized, host_key=host_key)
    try:
        yield host, port
    finally:
        stop()


def params(host: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"host": host, "port": port, "userName": USER, "password": PASSWORD, **extra}


def key_params(host: str, port: int, key: str, **extra: Any) -> dict[str, Any]:
    return {"host": host, "port": port, "userName": USER, "privateKeyContent": key, **extra}


@pytest.fixture
def make(server: tuple[str, int]) -> Iterator[Callable[..., SftpSource]]:
    """SftpSource with the server's address and the password unless told otherwise; closed after the test."""
    made: list[SftpSource] = []

    def build(raw: dict[str, Any] | None = None, **extra: Any) -> SftpSource:
        made.append(SftpSource(raw if raw is not None else params(*server, **extra)))
        return made[-1]

    yield build
    for source in made:
        source.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def read_all(stream: Any, chunk: int) -> bytes:
    parts = []
    while block := stream.read(chunk):
        assert len(block) <= chunk
        parts.append(block)
    return b"".join(parts)


# -- authentication ---------------------------------------------------------------------------------


def test_password_authentication(make: Callable[..., SftpSource]) -> None:
    make().test()


@pytest.mark.parametrize(
    ("name", "passphrase"),
    [("ed25519", None), ("ed25519_protected", PASSPHRASE), ("rsa_protected", PASSPHRASE), ("ecdsa", None)],
)
def test_key_authentication(
    make: Callable[..., SftpSource], server: tuple[str, int], keys: Keys, name: str, passphrase: str | None
) -> None:
    raw = key_params(*server, getattr(keys, name))
    if passphrase:
        raw["passPhrase"] = passphrase
    source = make(raw)
    source.test()
    assert [o.path for o in source.list("/data/a.csv")] == ["/data/a.csv"]


def test_the_key_file_text_is_accepted_as_well_as_its_base64(
    make: Callable[..., SftpSource], server: tuple[str, int], keys: Keys
) -> None:
    make(key_params(*server, base64.b64decode(keys.ed25519).decode())).test()


def test_a_pass_phrase_for_an_unprotected_key_is_ignored(
    make: Callable[..., SftpSource], server: tuple[str, int], keys: Keys
) -> None:
    make(key_params(*server, keys.ed25519, passPhrase="not needed")).test()


def test_wrong_password_is_refused_without_naming_it(make: Callable[..., SftpSource]) -> None:
    source = make(password="not-the-password-at-all")
    with pytest.raises(SourceRefused, match="authentication with the password failed") as caught:
        source.test()
    assert "not-the-password-at-all" not in str(caught.value)
    assert f"127.0.0.1:{source.port}" in str(caught.value) and USER in str(caught.value)


def test_wrong_user_is_refused(make: Callable[..., SftpSource]) -> None:
    with pytest.raises(SourceRefused):
        make(userName="someone-else").test()


def test_unknown_key_is_refused(make: Callable[..., SftpSource], server: tuple[str, int], keys: Keys) -> None:
    with pytest.raises(SourceRefused, match="authentication with the key failed"):
        make(key_params(*server, keys.stranger)).test()


def test_wrong_pass_phrase_is_refused_without_naming_it(server: tuple[str, int], keys: Keys) -> None:
    with pytest.raises(SourceRefused, match="passPhrase is wrong") as caught:
        SftpSource(key_params(*server, keys.ed25519_protected, passPhrase="guess-again-phrase"))
    assert "guess-again-phrase" not in str(caught.value)


def test_a_protected_key_without_pass_phrase_is_refused(server: tuple[str, int], keys: Keys) -> None:
    with pytest.raises(SourceRefused, match="give passPhrase"):
        SftpSource(key_params(*server, keys.rsa_protected))


@pytest.mark.parametrize("content", ["not base64 at all!", base64.b64encode(b"just some bytes").decode()])
def test_an_unreadable_key_is_refused(server: tuple[str, int], content: str) -> None:
    with pytest.raises(SourceRefused, match="privateKeyContent"):
        SftpSource(key_params(*server, content))


def test_settings_are_checked(server: tuple[str, int]) -> None:
    with pytest.raises(SourceRefused, match="needs password or privateKeyContent"):
        SftpSource({"host": "127.0.0.1", "userName": USER})
    with pytest.raises(SourceRefused, match="needs host"):
        SftpSource({"userName": USER, "password": PASSWORD})
    with pytest.raises(SourceRefused, match="maxConcurrentConnections"):
        SftpSource(params(*server, maxConcurrentConnections=0))
    with pytest.raises(PathNotAllowed):
        SftpSource(params(*server, folderPath="/data/../.."))
    assert SftpSource(params("example.org", 2222)).port == 2222
    assert SftpSource({"host": "example.org", "userName": USER, "password": PASSWORD}).port == 22


def test_repr_and_messages_hold_no_secret(server: tuple[str, int], keys: Keys) -> None:
    by_password = SftpSource(params(*server))
    by_key = SftpSource(key_params(*server, keys.ed25519_protected, passPhrase=PASSPHRASE))
    assert PASSWORD not in repr(by_password) and "password" in repr(by_password)
    assert PASSPHRASE not in repr(by_key) and keys.ed25519_protected[:40] not in repr(by_key)
    with pytest.raises(ObjectMissing) as caught:
        by_key.list("/nowhere")
    assert PASSPHRASE not in str(caught.value) and "/nowhere" in str(caught.value)
    by_password.close()
    by_key.close()


def test_registry_makes_an_sftp_source(server: tuple[str, int]) -> None:
    source = file_source(catalog.SFTP, params(*server), landing_zone_root=None)
    try:
        assert isinstance(source, SftpSource)
        source.test()
    finally:
        source.close()


# -- reachability -----------------------------------------------------------------------------------


def test_closed_port_is_unreachable_quickly() -> None:
    source = SftpSource(params("127.0.0.1", closed_port()))
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match="cannot connect"):
        source.test()
    assert time.monotonic() - started < CONNECT_TIMEOUT_S


def test_a_server_that_does_not_speak_ssh_is_unreachable() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        with pytest.raises(SourceUnreachable, match="SSH failed"):
            SftpSource(params("127.0.0.1", listener.getsockname()[1])).test()
    finally:
        thread.join(timeout=10)
        listener.close()


# -- listing ----------------------------------------------------------------------------------------


def test_list_a_file(make: Callable[..., SftpSource], tree: Path) -> None:
    assert list(make().list("/data/b.csv")) == [
        SourceObject("/data/b.csv", (tree / "data/b.csv").stat().st_size, MTIME * 1000)
    ]


def test_list_a_folder_skips_hidden_names_and_follows_file_links(make: Callable[..., SftpSource]) -> None:
    found = list(make().list("/data"))
    assert [o.path for o in found] == ["/data/a.csv", "/data/alias.csv", "/data/b.csv", "/data/up.csv"]
    assert found[0].size == found[1].size == len(b"id,name\n1,a\n")
    assert all(o.modified_ms == MTIME * 1000 for o in found)


def test_list_recursive_descends_folders_but_not_folder_links(make: Callable[..., SftpSource]) -> None:
    assert [o.path for o in make().list("data/", recursive=True)] == [
        "/data/a.csv",
        "/data/alias.csv",
        "/data/b.csv",
        "/data/sub/c.csv",
        "/data/sub/deep/d.json",
        "/data/up.csv",
    ]


def test_list_of_the_root(make: Callable[..., SftpSource]) -> None:
    assert [o.path for o in make().list("/")] == ["/note.txt"]


def test_list_of_a_missing_path(make: Callable[..., SftpSource]) -> None:
    with pytest.raises(ObjectMissing, match="'/data/nope.csv'"):
        list(make().list("/data/nope.csv"))


def test_server_refusals_are_source_refused(make: Callable[..., SftpSource]) -> None:
    source = make()
    with pytest.raises(SourceRefused, match="permission denied"):
        list(source.list("/forbidden"))
    with pytest.raises(SourceRefused, match="permission denied"):
        source.open("/forbidden/x.csv")
    assert [o.path for o in source.list("/data/a.csv")] == ["/data/a.csv"]  # the connection is fine


@pytest.mark.parametrize(
    "path", ["/data/../forbidden", "../etc/passwd", "/data/a.csv\x00.txt", "data\\..\\x"]
)
def test_paths_that_could_climb_out_are_refused(make: Callable[..., SftpSource], path: str) -> None:
    source = make()
    with pytest.raises(PathNotAllowed):
        list(source.list(path))
    with pytest.raises(PathNotAllowed):
        source.open(path)
    with pytest.raises(PathNotAllowed):
        source.explore(path)


# -- reading ----------------------------------------------------------------------------------------


def test_open_reads_a_large_file_in_chunks(make: Callable[..., SftpSource], tree: Path) -> None:
    expected = (tree / "big" / "big.bin").read_bytes()
    with make().open("/big/big.bin") as stream:
        data = read_all(stream, 64 * 1024)
    assert len(data) == BIG
    assert hashlib.sha256(data).digest() == hashlib.sha256(expected).digest()


def test_open_a_small_file_and_a_file_link(make: Callable[..., SftpSource]) -> None:
    source = make()
    with source.open("/data/b.csv") as stream:
        assert stream.read() == b"id,name\n2,b\n3,c\n"
    with source.open("data/alias.csv") as stream:
        assert stream.read() == b"id,name\n1,a\n"


def test_open_an_empty_file(make: Callable[..., SftpSource]) -> None:
    source = make()
    assert [(o.path, o.size) for o in source.list("/big/empty.bin")] == [("/big/empty.bin", 0)]
    with source.open("/big/empty.bin") as stream:
        assert stream.read() == b""


def test_a_stream_closed_early_gives_back_a_usable_connection(
    make: Callable[..., SftpSource], tree: Path
) -> None:
    source = make(maxConcurrentConnections=1)
    with source.open("/big/big.bin") as stream:
        head = stream.read(64 * 1024)
    assert head == (tree / "big" / "big.bin").read_bytes()[: 64 * 1024]
    assert [o.path for o in source.list("/data/a.csv")] == ["/data/a.csv"]
    with source.open("/data/a.csv") as stream:
        assert stream.read() == b"id,name\n1,a\n"


def test_open_refuses_folders_and_missing_files(make: Callable[..., SftpSource]) -> None:
    source = make()
    with pytest.raises(ObjectMissing, match="is a folder"):
        source.open("/data")
    with pytest.raises(ObjectMissing, match="does not exist"):
        source.open("/data/nope.csv")
    with pytest.raises(ObjectMissing):
        source.open("/data/dangling.csv")


# -- explore ----------------------------------------------------------------------------------------


def test_explore_the_root(make: Callable[..., SftpSource]) -> None:
    assert make().explore(None) == [
        ExploreItem("folder", "big", "/big"),
        ExploreItem("folder", "data", "/data"),
        ExploreItem("folder", "forbidden", "/forbidden"),
        ExploreItem("file", "note.txt", "/note.txt"),
    ]


def test_explore_a_folder(make: Callable[..., SftpSource]) -> None:
    assert make().explore("/data") == [
        ExploreItem("folder", "loop", "/data/loop"),
        ExploreItem("folder", "sub", "/data/sub"),
        ExploreItem("file", "a.csv", "/data/a.csv"),
        ExploreItem("file", "alias.csv", "/data/alias.csv"),
        ExploreItem("file", "b.csv", "/data/b.csv"),
        ExploreItem("file", "up.csv", "/data/up.csv"),
    ]
    assert make().explore("/data/sub/") == [
        ExploreItem("folder", "deep", "/data/sub/deep"),
        ExploreItem("file", "c.csv", "/data/sub/c.csv"),
    ]


def test_explore_a_file_or_a_missing_folder(make: Callable[..., SftpSource]) -> None:
    with pytest.raises(ObjectMissing, match="is a file"):
        make().explore("/data/a.csv")
    with pytest.raises(ObjectMissing):
        make().explore("/nope")


# -- folderPath -------------------------------------------------------------------------------------


def test_folder_path_is_the_root_of_every_path(make: Callable[..., SftpSource]) -> None:
    source = make(folderPath="/data")
    source.test()
    assert [o.path for o in source.list("/")] == ["/a.csv", "/alias.csv", "/b.csv"]  # up.csv leads out
    assert [o.path for o in source.list("/sub", recursive=True)] == ["/sub/c.csv", "/sub/deep/d.json"]
    assert [i.path for i in source.explore(None)] == ["/loop", "/sub", "/a.csv", "/alias.csv", "/b.csv"]
    with source.open("/sub/c.csv") as stream:
        assert stream.read() == b"id\n4\n"


def test_folder_path_cannot_be_left(make: Callable[..., SftpSource]) -> None:
    source = make(folderPath="data/")  # relative to the login folder, "/" on this server
    for path in ("/../note.txt", "..", "sub/../../note.txt"):
        with pytest.raises(PathNotAllowed):
            source.open(path)
    with pytest.raises(PathNotAllowed, match="outside folderPath"):
        source.open("/up.csv")  # a link to a file above the folder
    assert [o.path for o in source.list("/loop")] == ["/loop/a.csv", "/loop/alias.csv", "/loop/b.csv"]


def test_a_missing_folder_path_fails_the_test(make: Callable[..., SftpSource]) -> None:
    with pytest.raises(ObjectMissing, match="'/nope'"):
        make(folderPath="/nope").test()
    with pytest.raises(ObjectMissing, match="not a folder"):
        make(folderPath="/note.txt").test()


# -- connections ------------------------------------------------------------------------------------


def test_close_releases_everything(make: Callable[..., SftpSource]) -> None:
    source = make(maxConcurrentConnections=2)
    stream = source.open("/data/a.csv")
    source.test()
    source.close()
    stream.close()  # after close(): nothing left to give back, and no error
    with pytest.raises(ConnectorError, match="closed"):
        source.test()


@pytest.fixture
def counted(tree: Path, keys: Keys, host_key: asyncssh.SSHKey) -> Iterator[tuple[str, int, ServerStats]]:
    """A server of this test alone, counting the connections it has open."""
    stats = ServerStats()
    host, port, stop = start_sftp_server(
        tree, USER, PASSWORD, keys.authorized, host_key=host_key, stats=stats
    )
    try:
        yield host, port, stats
    finally:
        stop()


def open_in_thread(
    source: SftpSource, path: str, before: threading.Event
) -> tuple[threading.Thread, dict[str, Any]]:
    """Open and read `path` in a thread; the result records whether `before` was set when open returned."""
    result: dict[str, Any] = {}

    def work() -> None:
        with source.open(path) as stream:
            result["after"] = before.is_set()
            result["data"] = stream.read()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, result


def test_one_connection_at_most_means_a_second_open_waits_for_the_first(
    counted: tuple[str, int, ServerStats],
) -> None:
    host, port, stats = counted
    source = SftpSource(params(host, port, maxConcurrentConnections=1))
    try:
        first = source.open("/data/a.csv")
        closing = threading.Event()
        thread, result = open_in_thread(source, "/data/b.csv", closing)
        thread.join(timeout=0.2)
        assert thread.is_alive()  # still waiting for the connection the first stream holds
        assert first.read() == b"id,name\n1,a\n"
        closing.set()
        first.close()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert result == {"after": True, "data": b"id,name\n2,b\n3,c\n"}
        assert stats.peak == 1
    finally:
        source.close()


def test_two_connections_at_most(counted: tuple[str, int, ServerStats], tree: Path) -> None:
    host, port, stats = counted
    source = SftpSource(params(host, port, maxConcurrentConnections=2))
    try:
        big = source.open("/big/big.bin")
        small = source.open("/data/a.csv")  # a second connection, at the same time
        assert stats.peak == 2
        closing = threading.Event()
        thread, result = open_in_thread(source, "/data/b.csv", closing)
        thread.join(timeout=0.2)
        assert thread.is_alive()  # a third has to wait
        head = big.read(1000)  # the two streams read independently
        assert small.read() == b"id,name\n1,a\n"
        assert head + big.read() == (tree / "big" / "big.bin").read_bytes()
        closing.set()
        small.close()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert result == {"after": True, "data": b"id,name\n2,b\n3,c\n"}
        big.close()
        assert stats.peak == 2
    finally:
        source.close()


def test_a_dead_idle_connection_is_replaced(tree: Path, keys: Keys, host_key: asyncssh.SSHKey) -> None:
    host, port, stop = start_sftp_server(tree, USER, PASSWORD, keys.authorized, host_key=host_key)
    source = SftpSource(params(host, port))
    try:
        source.test()  # leaves an idle connection behind
        stop()
        host, port, stop = start_sftp_server(
            tree, USER, PASSWORD, keys.authorized, port=port, host_key=host_key
        )
        assert [o.path for o in source.list("/data/a.csv")] == ["/data/a.csv"]
    finally:
        source.close()
        stop()


# -- host keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("new_type", ["ssh-ed25519", "ecdsa-sha2-nistp256"])
def test_a_changed_host_key_is_refused(tree: Path, keys: Keys, new_type: str) -> None:
    memory = HostKeys()  # this test's own memory, not the process's
    first_key = asyncssh.generate_private_key("ssh-ed25519")

    def connect(port: int, host_key: asyncssh.SSHKey) -> tuple[SftpSource, int, Callable[[], None]]:
        host, bound, stop = start_sftp_server(
            tree, USER, PASSWORD, keys.authorized, port=port, host_key=host_key
        )
        return SftpSource(params(host, bound), host_keys=memory), bound, stop

    source, port, stop = connect(0, first_key)
    try:
        source.test()  # first use: the key is remembered
    finally:
        source.close()
        stop()
    source, _, stop = connect(port, asyncssh.generate_private_key(new_type))
    try:
        with pytest.raises(SourceRefused, match="host key has changed") as caught:
            source.test()
        assert f"127.0.0.1:{port}" in str(caught.value)
    finally:
        source.close()
        stop()
    source, _, stop = connect(port, first_key)
    try:
        source.test()  # the remembered key is still welcome
    finally:
        source.close()
        stop()
