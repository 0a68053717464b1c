"""A real HTTP server on loopback that webhooks are delivered to, for the alert tests.

It records every request and answers with the statuses a test lines up (200 once the line is
empty), optionally after a pause, so a test can see retries after a 500, a timeout, or a refusal.
Waiting is on a condition variable: a test waits for the n-th request, never for time to pass.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers still to give, in order
    pause: float = 0.0  # seconds to wait before answering
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def answer_next(self, *statuses: int) -> None:
        with self._changed:
            self.statuses.extend(statuses)

    def record(self, received: Received) -> None:
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()

    def take_status(self) -> int:
        with self._changed:
            return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived in {timeout}s")
            return list(self.requests[:count])


@contextmanager
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = holder["receiver"]
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            status = target.take_status()
            if target.pause:
                stop.wait(target.pause)
            try:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client gave up (a timeout test): still recorded below
                pass
            target.record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/flows")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["receiver"]
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
