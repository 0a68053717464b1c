"""What the fault tests share: waiting on conditions, an app on a database of their own, the engine's
checkpoints, and what a dataset shows through the API and leaves in the lake.

Faults are injected at known points (an engine checkpoint holds the run there until the test has
broken something, then lets it go on), and every wait is on a condition with a deadline, never a
sleep: a fault test that passes by timing luck would prove nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.domain.clock import SYSTEM_CLOCK, Clock
from flowservice.engine.lake import LocalLake
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.workers.inprocess import InProcessQueue
from tests.factories import BASE, Tenant

T = TypeVar("T")
CATALOG = "/data/foundation/catalog"


def wait_until(check: Callable[[], T], what: str, timeout: float = 30.0, poll: float = 0.05) -> T:
    """Poll `check` until it returns something truthy (returned); fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(poll)


@dataclass
class App:
    services: Services
    client: TestClient


@contextmanager
def fault_app(
    home: Path, database_url: str, *, workers: int, clock: Clock = SYSTEM_CLOCK, **settings: Any
) -> Iterator[App]:
    """An app with `workers` run executors on a migrated database of its own (no other test's runs
    for its workers to claim), with the dummy connector and a short poll."""
    loaded = Settings.load(
        home=home,
        database_url=database_url,
        public_url="http://testserver",
        poll_seconds=0.1,
        test_connectors=True,
        **settings,
    )
    migrate.upgrade(loaded.database_url)
    services = Services.from_settings(loaded, clock=clock)
    queue = InProcessQueue(services, workers=workers) if workers else None
    try:
        with TestClient(create_app(services, queue=queue)) as client:
            yield App(services, client)
    finally:
        services.close()


# --- the engine's checkpoints (services/execution._checkpoint) ------------------------------------------


def hung_at(home: Path, checkpoint: str) -> list[int]:
    """The pids of the processes stopped at `checkpoint` (their marker files in the home)."""
    return [int(p.read_text()) for p in home.glob(f"hang-{checkpoint}-*") if p.read_text().isdigit()]


def wait_hung(home: Path, checkpoint: str, timeout: float = 60.0) -> int:
    """Until a worker has stopped at `checkpoint`: its pid."""
    return wait_until(lambda: hung_at(home, checkpoint), f"a worker at {checkpoint}", timeout)[0]


def release(home: Path, checkpoint: str, pid: int) -> None:
    """Let the worker `pid` go on from `checkpoint` (and pass it from now on)."""
    (home / f"release-{checkpoint}-{pid}").write_text("")


# --- what the API and the lake show ----------------------------------------------------------------------


def get_run(client: TestClient, tenant: Tenant, run_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/runs/{run_id}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["items"][0]
    return run


def runs_of(client: TestClient, tenant: Tenant, flow_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{BASE}/runs?property=flowId=={flow_id}&limit=100", headers=tenant.headers())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def dataset_batches(client: TestClient, tenant: Tenant, dataset_id: str) -> dict[str, dict[str, Any]]:
    """The dataset's batches as the Catalog lists them, by id."""
    response = client.get(f"{CATALOG}/batches", params={"dataSet": dataset_id}, headers=tenant.headers())
    assert response.status_code == 200, response.text
    batches: dict[str, dict[str, Any]] = response.json()
    return batches


def lake_leftovers(services: Services, tenant: Tenant, dataset_id: str) -> list[str]:
    """Files an attempt left behind: batch staging of the dataset and any run's staged input.

    Neither is visible through the API (batches are read by their catalog row), but a leftover
    would hold disk space forever, and on a full disk that is the difference between a worker that
    recovers and one that keeps failing.
    """
    root = lake_root(services) / tenant.org_id / tenant.sandbox
    staging = root / "datasets" / dataset_id / "batches" / ".staging"
    found = list(staging.rglob("*")) if staging.exists() else []
    runs = root / "runs"
    found += list(runs.glob("*/staging/*")) if runs.exists() else []
    return sorted(str(p.relative_to(lake_root(services))) for p in found)


def committed_folders(services: Services, tenant: Tenant, dataset_id: str) -> list[str]:
    """The batch folders readers can reach in the lake (staging excluded)."""
    batches = lake_root(services) / tenant.org_id / tenant.sandbox / "datasets" / dataset_id / "batches"
    if not batches.exists():
        return []
    return sorted(p.name for p in batches.iterdir() if not p.name.startswith("."))


def lake_root(services: Services) -> Path:
    """The folder of the local lake these tests run on."""
    lake = services.lake
    assert isinstance(lake, LocalLake), "these tests need the local lake"
    return lake.root
