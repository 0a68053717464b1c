"""The embedded queue: N worker threads in this process, claiming runs from the store.

Threads suit the engine: Arrow's compute and Parquet writing release the GIL. Workers sleep on
an event that run creation sets (no polling delay for runs made here) and otherwise look for
runs every `poll_seconds`, which picks up runs made by other processes and runs whose lease
expired. A run stays in the store until a worker finishes it, so a restart loses nothing.

Stopping (SIGTERM to `flowservice worker`, or the server shutting down) ends claiming at once,
waits for the runs in flight up to the timeout, then releases those still going (`InFlight`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from flowservice.services import execution, runs
from flowservice.services.context import Services
from flowservice.workers import ready
from flowservice.workers.queue import InFlight

log = logging.getLogger("flowservice.workers")


class InProcessQueue:
    def __init__(self, services: Services, workers: int) -> None:
        self.services = services
        self.workers = workers
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.in_flight = InFlight()

    def start(self) -> None:
        ready.prepare_process()
        self.services.run_listeners.append(self.notify)
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, args=(index,), name=f"worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self, run_id: str) -> None:
        del run_id  # any worker may take it: wake them all
        self._wake.set()

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        if self.notify in self.services.run_listeners:
            self.services.run_listeners.remove(self.notify)
        self.in_flight.drain(timeout)
        for thread in self._threads:  # idle ones end at once; one that was claiming may start a run
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        # Whatever still runs is given back (and a claim made from now on, at once); its thread is a
        # daemon and fenced from the run, so nothing more is waited for.
        self.in_flight.release_all(self.services)

    def _work(self, index: int) -> None:
        owner = f"{self.identity}/{index}"
        lease_ms = int(self.services.settings.lease_seconds * 1000)
        while not self._stop.is_set():
            try:
                # slices first: they belong to runs under way, whose coordinators wait for them
                if execution.run_next_slice(self.services, owner):
                    continue
                claim = runs.claim_next(self.services, owner, lease_ms=lease_ms)
                if claim is not None:
                    self.in_flight.execute(self.services, claim)
                    continue  # there may be more: look again at once
            except Exception:  # a database outage must not kill the worker thread
                log.exception("worker %s could not claim a run", owner)
            self._wake.wait(self.services.settings.poll_seconds)
            self._wake.clear()
