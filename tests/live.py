"""A real `flowservice serve` process on a free loopback port, for tests that need a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 60.0) -> None:
    """Poll /healthz until it answers: the condition we wait on, with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} did not come up in {timeout}s:\n{log.read_text()}")


@contextmanager
def serve(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = cwd / f"server-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    environment.update({"FLOWSERVICE_PUBLIC_URL": url, **(env or {})})
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowservice", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=cwd,
            env=environment,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_until_up(url, process, log)
        yield LiveServer(url, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def worker(env: dict[str, str], cwd: Path, concurrency: int = 1) -> Iterator[None]:
    """A `flowservice worker` process for as long as the block runs: tests start one when they want
    runs to move, so a run's earlier states are really seen before its later ones."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "flowservice", "worker", "--concurrency", str(concurrency)],
        env={**environment, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
