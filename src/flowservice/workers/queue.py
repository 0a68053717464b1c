"""The seam between "a run exists" and "someone executes it", and what both queues share.

Two queues implement `RunQueue`: the embedded one (workers/inprocess.py: threads claiming runs
from the store) and the distributed one (workers/procrastinate_queue.py: procrastinate jobs on
PostgreSQL, executed by `flowservice worker` processes anywhere). Both execute claimed runs through
`InFlight`, which is how a worker shutting down gives back the runs it could not finish in time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from flowservice.services import execution, runs
from flowservice.services.context import Services
from flowservice.services.runs import Claim

log = logging.getLogger("flowservice.workers")


class RunQueue(Protocol):
    """Executes the store's runnable runs; `notify` is a hint that one was just created."""

    def start(self) -> None: ...

    def notify(self, run_id: str) -> None: ...

    def stop(self, timeout: float) -> None:
        """Stop claiming; wait up to `timeout` seconds for runs in flight, then release the rest."""


class InFlight:
    """The runs this process is executing, so that a graceful shutdown can wait for them, and give
    back (`runs.release`: lease ended, epoch moved on, job queued again) those still going when its
    time is up. A run released here cannot be committed by the thread still executing it: every
    write it would make is fenced by the epoch it no longer holds."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._claims: dict[tuple[str, int], tuple[Claim, Callable[[], None] | None]] = {}
        self._closed = False

    def execute(self, services: Services, claim: Claim, *, abandon: Callable[[], None] | None = None) -> None:
        """Execute a claimed run in this thread. `abandon` is called if the run is released while it
        executes (the procrastinate worker then stops waiting for it)."""
        key = (claim.run_id, claim.epoch)
        with self._changed:
            accepted = not self._closed
            if accepted:
                self._claims[key] = (claim, abandon)
        if not accepted:  # claimed while the process was giving its runs back: give this one back too
            runs.release(services, claim)
            return
        try:
            execution.execute(services, claim)
        finally:
            with self._changed:
                self._claims.pop(key, None)
                self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._claims)

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the runs in flight to end; True if they all did."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._claims, timeout=timeout)

    def release_all(self, services: Services) -> int:
        """Give back every run still executing, and any claimed from now on; how many were released."""
        with self._changed:
            self._closed = True
            held = list(self._claims.values())
        released = 0
        for claim, abandon in held:
            try:
                if runs.release(services, claim):
                    released += 1
                    log.warning("released run %s (attempt %s) unfinished", claim.run_id, claim.attempt)
            except Exception:  # its lease will expire and the run be taken again anyway
                log.exception("could not release run %s", claim.run_id)
            if abandon is not None:
                abandon()
        return released
