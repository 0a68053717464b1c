"""Which addresses the service may connect to when a tenant names a host (S3 endpoints, SFTP hosts,
alert webhooks): the guard against server-side request forgery.

A tenant who can type a URL into a connection or an alert rule could otherwise make the server call
addresses only the server can reach. The worst of them are the cloud instance-metadata services
(169.254.169.254, fd00:ec2::254, Alibaba's 100.100.100.200, Azure's wire server 168.63.129.16), which
hand out the machine's own cloud credentials, and link-local addresses in general. Those, and the
"unspecified" addresses 0.0.0.0/8 and :: (a connection to 0.0.0.0 reaches the local host on Linux
while looking like no address at all), are refused by default.

Loopback and private networks stay allowed by default: the tests, `make run` and most self-hosted
deployments keep their MinIO, SFTP server and webhook receiver on 127.0.0.1 or a private network, and
an operator who wants them refused lists them in `FLOWSERVICE_OUTBOUND_BLOCKED_NETWORKS` (e.g.
`127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7`). Networks in
`FLOWSERVICE_OUTBOUND_ALLOWED_NETWORKS` are exempt from both lists (`169.254.170.2/32` for ECS task
credentials, or `0.0.0.0/0,::/0` to switch the guard off).

Names are checked by what they resolve to, and every address a name resolves to must pass: a DNS
answer that mixes a public address with the metadata address is refused whole. IPv4 addresses
written inside IPv6 ones (::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are checked as the IPv4
address they carry, and numeric spellings such as `2852039166` or `0xa9.0xfe.0xa9.0xfe` are resolved
the way the socket library would connect to them, so none of them is a way around the rules.

The check is made twice: when a connection or alert rule is created or changed (a clear 400 at once,
when the name resolves then), and again each time a connection is made, because DNS answers change.
At connection time `connect()` (SFTP) and `http_transport()` (webhooks) resolve, check and then connect
to the very address that was checked, so a name cannot be re-pointed between check and use. For S3,
boto3 does its own connecting: the endpoint's name is resolved and checked each time a source is made
(for every run, explore and test), which leaves the window of one source's life (at most one run) to
a DNS answer that changes meanwhile.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

    from flowservice.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, why it is refused): the default block list
DEFAULT_BLOCKED: tuple[tuple[Network, str], ...] = (
    (ipaddress.ip_network("169.254.169.254/32"), "cloud metadata"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "cloud metadata"),
    (ipaddress.ip_network("100.100.100.200/32"), "cloud metadata"),  # Alibaba Cloud
    (ipaddress.ip_network("168.63.129.16/32"), "cloud metadata"),  # Azure's wire server
    (ipaddress.ip_network("169.254.0.0/16"), "link-local"),
    (ipaddress.ip_network("fe80::/10"), "link-local"),
    (ipaddress.ip_network("0.0.0.0/8"), "unspecified"),
    (ipaddress.ip_network("::/128"), "unspecified"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressNotAllowed(Exception):
    """A host that resolves to an address the service does not connect to; the message says which
    and why, and names the setting that would allow it (it holds no credential: only host and address)."""


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (a bare address is a /32 or /128); ValueError names a bad one."""
    networks = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP network (write e.g. 10.0.0.0/8 or fd00::/8)") from None
    return tuple(networks)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries for the v4 internet, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class Egress:
    """The outbound address policy: the default block list plus `blocked`, minus `allowed`."""

    allowed: tuple[Network, ...] = ()
    blocked: tuple[Network, ...] = ()

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be connected to (e.g. "cloud metadata"), or None if it may.

        An IPv6 address that carries an IPv4 one is judged as both: each must be allowed or not refused.
        """
        candidates: list[Address] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inner = _embedded_v4(address)
            if inner is not None:
                candidates.append(inner)
        for candidate in candidates:
            if any(candidate in network for network in self.allowed if network.version == candidate.version):
                continue
            for network, reason in DEFAULT_BLOCKED:
                if network.version == candidate.version and candidate in network:
                    return reason
            for network in self.blocked:
                if network.version == candidate.version and candidate in network:
                    return "blocked by FLOWSERVICE_OUTBOUND_BLOCKED_NETWORKS"
        return None

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Raise AddressNotAllowed if any of the addresses `host` resolved to is refused."""
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            reason = self.refusal(address)
            if reason is not None:
                shown = host if _bare_host(host) == str(address) else f"{host} (resolved to {address})"
                raise AddressNotAllowed(
                    f"{shown} is a {reason} address, which flowservice does not connect to "
                    "(FLOWSERVICE_OUTBOUND_ALLOWED_NETWORKS can allow it)"
                )

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """getaddrinfo's answer for a TCP connection to host:port, once every address in it passed.

        socket.gaierror (a name that does not resolve) is left to the caller, which knows how to say it.
        """
        infos = socket.getaddrinfo(_bare_host(host), port, type=socket.SOCK_STREAM)
        self.check_addresses(host, [str(info[4][0]) for info in infos])
        return infos

    def check_host_now(self, host: str, port: int = 0) -> None:
        """The check made when a connection or rule is saved: refuse a host that resolves to a refused
        address; accept one that does not resolve (yet): the check at connection time decides then."""
        try:
            self.resolve(host, port)
        except (socket.gaierror, UnicodeError, ValueError):
            return

    def check_url_now(self, url: str) -> None:
        """`check_host_now` for the host of an http(s) URL (a URL without a host is left to others)."""
        try:
            parts = urlsplit(url.strip())
            host, port = parts.hostname, parts.port
        except ValueError:
            return
        if host:
            self.check_host_now(host, port or (443 if parts.scheme == "https" else 80))

    def connect(self, host: str, port: int, timeout: float | None) -> socket.socket:
        """A TCP connection to host:port made to an address that was checked (no second lookup), trying
        each address in turn like socket.create_connection. AddressNotAllowed or OSError."""
        infos = self.resolve(host, port)
        error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error or OSError(f"{host!r} resolved to no address")


def _bare_host(host: str) -> str:
    """ "[::1]" → "::1": getaddrinfo takes IPv6 literals without the brackets URLs put around them."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@lru_cache(maxsize=8)
def _policy(allowed: str, blocked: str) -> Egress:
    return Egress(parse_networks(allowed), parse_networks(blocked))


def policy_of(settings: Settings) -> Egress:
    """The policy the settings describe (built once per distinct setting)."""
    return _policy(settings.outbound_allowed_networks, settings.outbound_blocked_networks)


DEFAULT = Egress()


def http_transport(policy: Egress, *, verify: bool = True) -> httpx.HTTPTransport:
    """An httpx transport that connects only to checked addresses (webhooks).

    httpcore asks its network backend for a TCP connection to the URL's host; this backend resolves
    the host, checks every address and connects to a checked one, by address, so what was checked is
    what is reached. TLS still verifies the certificate against the URL's host name (httpcore sends the
    origin's name as SNI, not the address connected to). Proxies from the environment are not used: a
    proxy would make the connection, and the check, elsewhere. AddressNotAllowed reaches the caller
    as it is, not as an httpx error, so a refusal is never mistaken for a network failure worth retrying.
    """
    import httpcore
    import httpx

    class _CheckedBackend(httpcore.SyncBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            try:
                infos = policy.resolve(host, port)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(f"{host}: {exc.strerror or exc}") from exc
            error: Exception | None = None
            for info in infos:
                try:
                    return super().connect_tcp(str(info[4][0]), port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    error = exc
            raise error or httpcore.ConnectError(f"{host} resolved to no address")

    class _CheckedTransport(httpx.HTTPTransport):
        def __init__(self) -> None:
            super().__init__(verify=verify, trust_env=False)
            # The one pool httpx would make, with our backend: HTTPTransport takes no backend argument.
            self._pool = httpcore.ConnectionPool(
                ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
                network_backend=_CheckedBackend(),
            )

    return _CheckedTransport()
