"""The scheduler loop, in `flowservice serve` (a thread) or alone (`flowservice scheduler`).

It ticks, then sleeps until the earliest next slot (at most `poll_seconds`, so flows created or
enabled elsewhere are seen soon). Ticking is idempotent and keyed, so any number of schedulers may
run: they share the due flows and never create a run twice.

The same process runs the retention purge, on a thread of its own so that a long first purge (a
history reaching past the limit) never delays a slot; purges are idempotent and share work by
SKIP LOCKED, so several schedulers purging at once is harmless.

With the distributed queue (FLOWSERVICE_QUEUE=postgres) each round also queues new jobs for runs
whose jobs were lost with a killed worker (`dispatch.requeue_lost`; a no-op for the embedded queue,
whose workers find such runs in the store by themselves).
"""

from __future__ import annotations

import logging
import threading
import time

from flowservice.services import dispatch, retention, scheduling
from flowservice.services.context import Services

log = logging.getLogger("flowservice.scheduler")


class Scheduler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._purger: threading.Thread | None = None

    def tick(self) -> list[scheduling.Created]:
        """Create every run that is due now, in batches.

        When the first batch comes back full (a popular slot) and the database lets writers work at
        once (PostgreSQL: SKIP LOCKED hands each its own flows), the rest is shared by two threads;
        SQLite serialises writers, so there one thread does it all.
        """
        created = scheduling.tick(self.services)
        if len(created) < scheduling.BATCH:
            return created
        lanes = 2 if self.services.db.dialect != "sqlite" else 1
        results: list[list[scheduling.Created]] = [[] for _ in range(lanes)]

        errors: list[BaseException] = []

        def drain(lane: int) -> None:
            try:
                while True:
                    batch = scheduling.tick(self.services)
                    results[lane] += batch
                    if len(batch) < scheduling.BATCH:
                        return
            except BaseException as exc:  # handed to the caller below, like the first lane's
                errors.append(exc)

        threads = [
            threading.Thread(target=drain, args=(lane,), name=f"scheduler-{lane}") for lane in range(1, lanes)
        ]
        for thread in threads:
            thread.start()
        drain(0)
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return created + [item for lane in results for item in lane]

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="scheduler", daemon=True)
        self._thread.start()
        self._purger = threading.Thread(target=self.purge_forever, name="retention", daemon=True)
        self._purger.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for thread in (self._thread, self._purger):
            if thread is not None:
                thread.join(timeout=timeout)

    def purge_forever(self) -> None:
        """Purge now, then every `retention_interval_seconds` (of the service clock)."""
        last: int | None = None
        poll = self.services.settings.poll_seconds
        while not self._stop.is_set():
            now = self.services.clock.now_ms()
            if retention.due(last, now, self.services.settings):
                last = now
                try:
                    retention.purge(self.services, now)
                except Exception:  # an outage skips one purge, not all the ones after it
                    log.exception("retention purge failed")
            self._stop.wait(poll)

    def run(self) -> None:
        poll = self.services.settings.poll_seconds
        swept = float("-inf")
        while not self._stop.is_set():
            try:
                self.tick()
                upcoming = scheduling.next_due(self.services)
            except Exception:  # a database outage must not end scheduling for good
                log.exception("scheduler tick failed")
                upcoming = None
            if time.monotonic() - swept >= poll:  # at most once a poll, however busy the slots
                swept = time.monotonic()
                try:
                    dispatch.requeue_lost(self.services)
                except Exception:
                    log.exception("could not queue lost runs again")
            now = self.services.clock.now_ms()
            wait = poll if upcoming is None else min(poll, max(0.0, (upcoming - now) / 1000))
            self._stop.wait(wait)
