"""The notifier thread: posts queued alert deliveries and looks for delayed runs.

It runs beside the scheduler (in `flowservice serve` and `flowservice scheduler`); any number may
run, as deliveries are claimed under row locks. Between rounds it sleeps until the earliest due
delivery, at most `poll_seconds`, so deliveries queued by other processes are seen soon.
"""

from __future__ import annotations

import logging
import threading

import httpx

from flowservice import egress
from flowservice.services import alerts
from flowservice.services.context import Services

log = logging.getLogger("flowservice.notifier")
BATCH = 50


class Notifier:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def round(self, client: httpx.Client) -> int:
        """One round: queue delay alerts, then deliver everything due; the deliveries attempted."""
        alerts.sweep_delays(self.services)
        attempted = 0
        while True:
            done = alerts.deliver_due(self.services, client, BATCH)
            attempted += done
            if done < BATCH or self._stop.is_set():
                return attempted

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def run(self) -> None:
        poll = self.services.settings.poll_seconds
        # redirects are not followed (a 3xx is an answer, not a second address to call), and the
        # transport connects only to addresses the outbound policy allows (egress.py)
        transport = egress.http_transport(egress.policy_of(self.services.settings))
        with httpx.Client(follow_redirects=False, transport=transport) as client:
            while not self._stop.is_set():
                try:
                    self.round(client)
                    upcoming = alerts.next_due(self.services)
                except Exception:  # a database outage must not end notifying for good
                    log.exception("notifier round failed")
                    upcoming = None
                now = self.services.clock.now_ms()
                wait = poll if upcoming is None else min(poll, max(0.0, (upcoming - now) / 1000))
                self._stop.wait(wait)
