"""An app on a database of its own, with workers and a clock the test moves: for tests whose
background work (scheduler, retries, alerts) would otherwise see every other test's flows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.workers.inprocess import InProcessQueue
from tests.clock import FakeClock
from tests.conftest import create_pg_database, drop_pg_database


@dataclass
class Own:
    services: Services
    client: TestClient
    clock: FakeClock


@contextmanager
def own_app(database_url: str, home: Path, *, workers: int = 2, **settings: Any) -> Iterator[Own]:
    """`database_url` picks the backend (the suite's parameter); the database itself is new."""
    url = f"sqlite:///{home / 'own.db'}" if database_url.startswith("sqlite") else create_pg_database()
    loaded = Settings.load(
        home=home, database_url=url, public_url="http://testserver", poll_seconds=0.1, **settings
    )
    migrate.upgrade(loaded.database_url)
    clock = FakeClock(time.time_ns() // 1_000_000_000 * 1000)  # now, to the second
    services = Services.from_settings(loaded, clock=clock)
    queue = InProcessQueue(services, workers=workers) if workers else None
    try:
        with TestClient(create_app(services, queue=queue)) as client:
            yield Own(services, client, clock)
    finally:
        services.close()
        if not url.startswith("sqlite"):
            drop_pg_database(url)
