"""The embedded queue: N worker threads in this process, claiming runs from the store.

Threads suit the engine: Arrow's compute and Parquet writing release the GIL. Workers sleep on
an event that run creation sets (no polling delay for runs made here) and otherwise look for
runs every `poll_seconds`, which picks up runs made by other processes and runs whose lease
expired. A run stays in the store until a worker finishes it, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from flowservice.services import execution
from flowservice.services.context import Services

log = logging.getLogger("flowservice.workers")


class InProcessQueue:
    def __init__(self, services: Services, workers: int) -> None:
        self.services = services
        self.workers = workers
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def start(self) -> None:
        self.services.run_listeners.append(self.notify)
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, args=(index,), name=f"worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def notify(self, run_id: str) -> None:
        del run_id  # any worker may take it: wake them all
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        if self.notify in self.services.run_listeners:
            self.services.run_listeners.remove(self.notify)
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _work(self, index: int) -> None:
        owner = f"{self.identity}/{index}"
        while not self._stop.is_set():
            try:
                if execution.run_next(self.services, owner):
                    continue  # there may be more: look again at once
            except Exception:  # a database outage must not kill the worker thread
                log.exception("worker %s could not claim a run", owner)
            self._wake.wait(self.services.settings.poll_seconds)
            self._wake.clear()
