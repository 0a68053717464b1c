"""Names that resolve where a test says, and can be re-pointed mid-test (DNS rebinding).

`socket.getaddrinfo` is replaced for the test's duration; names the test did not set resolve as
before. Every library that connects through the socket module (botocore's urllib3, httpx's httpcore,
paramiko's socket, our egress checks) sees the same answers.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class FakeDns:
    def __init__(self, real: Callable[..., list[Any]]) -> None:
        self._real = real
        self.names: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def point(self, name: str, *addresses: str) -> None:
        self.names[name.lower()] = list(addresses)

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower() in self.names:
            self.asked.append(name.lower())
            answers: list[Any] = []
            for address in self.names[name.lower()]:
                for info in self._real(address, port, family, type, proto, socket.AI_NUMERICHOST):
                    answers.append(info)
            return answers
        return self._real(host, port, family, type, proto, flags)


@contextmanager
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    dns = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    yield dns
