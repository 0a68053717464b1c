"""The outbound address guard: which addresses are refused, in every spelling, and that S3, SFTP and
the webhook transport check the address they really connect to, each time (DNS answers change)."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import httpx
import pytest
from pydantic import ValidationError

from flowservice import egress
from flowservice.connectors.base import ObjectMissing, SourceRefused, SourceUnreachable
from flowservice.connectors.registry import file_source
from flowservice.connectors.s3 import S3Source
from flowservice.connectors.sftp import HostKeys, SftpSource
from flowservice.egress import AddressNotAllowed, Egress, parse_networks
from flowservice.settings import Settings
from tests.fake_dns import FakeDns, fake_dns
from tests.receiver import Receiver, receiver
from tests.sftp_server import start_sftp_server

METADATA = "169.254.169.254"
PASSWORD = "sftp-password-" + uuid.uuid4().hex


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    with fake_dns(monkeypatch) as found:
        yield found


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("168.63.129.16", "cloud metadata"),
        ("169.254.0.1", "link-local"),
        ("169.254.255.255", "link-local"),
        ("fe80::1", "link-local"),
        ("febf:ffff::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:169.254.169.254", "cloud metadata"),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", "cloud metadata"),  # 6to4 of 169.254.169.254
        ("::ffff:0.0.0.0", "unspecified"),
    ],
)
def test_refused_by_default(address: str, reason: str) -> None:
    assert egress.DEFAULT.refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "10.0.0.1",
        "172.16.5.5",
        "192.168.1.1",
        "8.8.8.8",
        "fd00::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "169.253.255.255",
        "169.255.0.0",
    ],
)
def test_loopback_private_and_public_addresses_stay_allowed_by_default(address: str) -> None:
    assert egress.DEFAULT.refusal(ipaddress.ip_address(address)) is None


def test_the_settings_extend_and_exempt() -> None:
    strict = Egress(blocked=parse_networks("127.0.0.0/8, ::1/128,10.0.0.0/8"))
    assert (
        strict.refusal(ipaddress.ip_address("127.0.0.1"))
        == "blocked by FLOWSERVICE_OUTBOUND_BLOCKED_NETWORKS"
    )
    assert strict.refusal(ipaddress.ip_address("::ffff:10.1.1.1")) is not None
    assert strict.refusal(ipaddress.ip_address("192.168.0.1")) is None
    ecs = Egress(allowed=parse_networks("169.254.170.2"))  # a bare address is a /32
    assert ecs.refusal(ipaddress.ip_address("169.254.170.2")) is None
    assert ecs.refusal(ipaddress.ip_address(METADATA)) == "cloud metadata"
    v6_only = Egress(allowed=parse_networks("::/0"))  # an address inside another is judged as both
    assert v6_only.refusal(ipaddress.ip_address("::ffff:169.254.169.254")) == "cloud metadata"
    off = Egress(allowed=parse_networks("0.0.0.0/0,::/0"))
    assert all(off.refusal(ipaddress.ip_address(a)) is None for a in (METADATA, "fe80::1", "0.0.0.0"))
    with pytest.raises(ValueError, match="not an IP network"):
        parse_networks("10.0.0.0/8,intranet")
    with pytest.raises(ValidationError, match="not an IP network"):
        Settings(outbound_blocked_networks="10.0.0.0/33")
    settings = Settings(outbound_allowed_networks="169.254.170.2/32", outbound_blocked_networks="10.0.0.0/8")
    assert egress.policy_of(settings) == Egress(
        parse_networks("169.254.170.2/32"), parse_networks("10.0.0.0/8")
    )


@pytest.mark.parametrize(
    "host",
    [
        METADATA,
        "2852039166",
        "0xa9.0xfe.0xa9.0xfe",
        "0251.0376.0251.0376",
        "169.254.43518",
        "[::ffff:169.254.169.254]",
        "::ffff:a9fe:a9fe",
        "0.0.0.0",
        "0",
        "[fe80::1]",
    ],
)
def test_every_spelling_of_a_refused_address_is_refused(host: str) -> None:
    with pytest.raises(AddressNotAllowed, match="flowservice does not connect to"):
        egress.DEFAULT.resolve(host, 80)
    with pytest.raises(AddressNotAllowed):
        egress.DEFAULT.check_url_now(
            f"http://{host if ':' not in host or host.startswith('[') else f'[{host}]'}/x"
        )


def test_a_name_is_judged_by_every_address_it_resolves_to(dns: FakeDns) -> None:
    dns.point("mixed.test", "127.0.0.1", METADATA)
    dns.point("metadata.google.internal", METADATA)
    dns.point("fine.test", "127.0.0.1", "::1")
    with pytest.raises(
        AddressNotAllowed, match=r"mixed.test \(resolved to 169.254.169.254\) is a cloud metadata"
    ):
        egress.DEFAULT.resolve("mixed.test", 80)
    with pytest.raises(AddressNotAllowed):
        egress.DEFAULT.check_host_now("metadata.google.internal")
    assert len(egress.DEFAULT.resolve("fine.test", 80)) == 2
    egress.DEFAULT.check_host_now("does-not-resolve.invalid")  # left to the check at connection time


def test_connect_reaches_the_address_it_checked(dns: FakeDns) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        dns.point("svc.test", "127.0.0.1")
        with egress.DEFAULT.connect("svc.test", port, 5) as sock:
            assert sock.getpeername() == ("127.0.0.1", port)
        asked = len(dns.asked)
        dns.point("svc.test", METADATA)  # re-pointed: the next connection checks the new answer
        with pytest.raises(AddressNotAllowed):
            egress.DEFAULT.connect("svc.test", port, 5)
        assert len(dns.asked) == asked + 1
        with pytest.raises(AddressNotAllowed):
            Egress(blocked=parse_networks("127.0.0.0/8")).connect("127.0.0.1", port, 5)


# -- S3 --------------------------------------------------------------------------------------------


def s3_params(url: str) -> dict[str, str]:
    return {"s3AccessKey": "AKIAEXAMPLE", "s3SecretKey": "s3-secret", "serviceUrl": url}


@pytest.mark.parametrize(
    "url",
    [
        f"http://{METADATA}",
        f"http://{METADATA}:80/latest",
        "http://[fd00:ec2::254]",
        "http://[fe80::1]:9000",
        "http://0.0.0.0:9000",
        "https://2852039166",
    ],
)
def test_s3_refuses_a_refused_endpoint_before_any_request(url: str) -> None:
    with pytest.raises(SourceRefused, match=r"S3 serviceUrl: .* flowservice does not connect to"):
        S3Source(s3_params(url))
    with pytest.raises(SourceRefused):
        file_source("ecadc60c-7455-4d87-84dc-2a0e293d997b", s3_params(url), landing_zone_root=None)


def test_s3_checks_the_endpoint_each_time_a_source_is_made(s3_server: str, dns: FakeDns) -> None:
    port = int(s3_server.rsplit(":", 1)[1])
    dns.point("minio.test", "127.0.0.1")
    source = S3Source(s3_params(f"http://minio.test:{port}"))
    try:
        with pytest.raises(ObjectMissing):  # reached through the name: moto answers (the name is no bucket)
            source.explore(None)
    finally:
        source.close()
    dns.point("minio.test", METADATA)
    with pytest.raises(SourceRefused, match=r"minio.test \(resolved to 169.254.169.254\)"):
        S3Source(s3_params(f"http://minio.test:{port}"))
    # a stricter policy from the settings refuses loopback too
    strict = Egress(blocked=parse_networks("127.0.0.0/8"))
    with pytest.raises(SourceRefused, match="FLOWSERVICE_OUTBOUND_BLOCKED_NETWORKS"):
        S3Source(s3_params(s3_server), egress=strict)
    # a name that does not resolve is not a refusal: boto3 reports it, as a retryable failure
    unresolved = S3Source(s3_params("http://nowhere.invalid:9000"))
    with pytest.raises(SourceUnreachable):
        unresolved.test()


# -- SFTP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sftp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root: Path = tmp_path_factory.mktemp("egress-sftp")
    (root / "a.csv").write_text("id\n1\n")
    key = asyncssh.generate_private_key("ssh-ed25519")
    _, port, stop = start_sftp_server(root, "reader", PASSWORD, key.export_public_key().decode())
    try:
        yield port
    finally:
        stop()


def sftp_source(host: str, port: int, policy: Egress | None = None) -> SftpSource:
    params = {"host": host, "port": port, "userName": "reader", "password": PASSWORD}
    return SftpSource(params, host_keys=HostKeys(), egress=policy)


def test_sftp_connects_only_to_checked_addresses(sftp: int, dns: FakeDns) -> None:
    dns.point("files.test", "127.0.0.1")
    source = sftp_source("files.test", sftp)
    try:
        assert [o.path for o in source.list("/")] == ["/a.csv"]
    finally:
        source.close()
    dns.point("files.test", METADATA)
    rebound = sftp_source("files.test", sftp)
    with pytest.raises(
        SourceRefused, match=r"files.test \(resolved to 169.254.169.254\) is a cloud metadata"
    ):
        rebound.test()
    for host in (METADATA, "fe80::1", "0.0.0.0"):
        with pytest.raises(SourceRefused, match="flowservice does not connect to"):
            sftp_source(host, sftp).test()
    with pytest.raises(SourceRefused, match="FLOWSERVICE_OUTBOUND_BLOCKED_NETWORKS"):
        sftp_source("127.0.0.1", sftp, Egress(blocked=parse_networks("127.0.0.0/8"))).test()
    with pytest.raises(SourceUnreachable):
        sftp_source("nowhere.invalid", sftp).test()


# -- the webhook transport -------------------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def test_the_webhook_transport_connects_only_to_checked_addresses(hook: Receiver, dns: FakeDns) -> None:
    port = int(hook.url.split(":")[2].split("/")[0])
    dns.point("hooks.test", "127.0.0.1")
    with httpx.Client(transport=egress.http_transport(egress.DEFAULT)) as client:
        answer = client.post(f"http://hooks.test:{port}/hooks/flows", content=b"{}")
        assert answer.status_code == 200
        [received] = hook.wait_for(1)
        assert received.headers["host"] == f"hooks.test:{port}"  # the name is sent; the address is connected
        dns.point("hooks.test", METADATA)
        with pytest.raises(AddressNotAllowed):
            client.post(f"http://hooks.test:{port}/again", content=b"{}")
        with pytest.raises(AddressNotAllowed):
            client.post(f"http://{METADATA}/latest/meta-data/", content=b"{}")
        with pytest.raises(httpx.ConnectError):
            client.post("http://nowhere.invalid/hook", content=b"{}")
    strict = Egress(blocked=parse_networks("127.0.0.0/8"))
    with httpx.Client(transport=egress.http_transport(strict)) as client, pytest.raises(AddressNotAllowed):
        client.post(hook.url, content=b"{}")
    assert len(hook.requests) == 1  # nothing refused ever reached a server
