"""A worker killed with SIGKILL at the worst moments: the run still ends, with every record once.

Workers here are real `flowservice worker` processes. The first one is told (FLOWSERVICE_HANG_AT)
to stop at an engine checkpoint and say so in a marker file; the test waits for that file, kills
the process, starts a second worker, and waits for the run to finish after the lease expires.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests import factories
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.test_ingestion import dataset_rows

FILES, ROWS = 4, 3000


@pytest.fixture
def crash_settings(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'crash.db'}" if database_url.startswith("sqlite") else create_pg_database()
    settings = Settings.load(
        home=tmp_path,
        database_url=url,
        public_url="http://testserver",
        test_connectors=True,
        lease_seconds=1.5,
    )
    migrate.upgrade(settings.database_url)
    try:
        yield settings
    finally:
        if not url.startswith("sqlite"):
            drop_pg_database(url)


def worker(settings: Settings, hang_at: str = "") -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")},
        "FLOWSERVICE_HOME": str(settings.home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url,
        "FLOWSERVICE_TEST_CONNECTORS": "1",
        "FLOWSERVICE_LEASE_SECONDS": "1.5",
        "FLOWSERVICE_POLL_SECONDS": "0.1",
        "FLOWSERVICE_HANG_AT": hang_at,
    }
    log = open(settings.home / f"worker-{hang_at or 'clean'}.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "flowservice", "worker", "--concurrency", "1"], env=env, stdout=log, stderr=log
    )


def wait_for_file(folder: Path, prefix: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(p.name.startswith(prefix) for p in folder.iterdir()):
        assert process.poll() is None, "the worker died before reaching the checkpoint"
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {prefix}* in {folder}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("hang_at", ["promotion.file_done", "promotion.committed"])
def test_sigkill_mid_run_loses_and_duplicates_nothing(crash_settings: Settings, hang_at: str) -> None:
    services = Services.from_settings(crash_settings)
    with TestClient(create_app(services)) as client:  # no workers in this process
        tenant = factories.new_tenant(services, client)
        source = factories.dummy_source(client, tenant, files=FILES, rows=ROWS)
        dataflow = factories.dataflow(
            client,
            tenant,
            source=source,
            scheduleParams={"startTime": "1700000000", "frequency": "once"},
            mappings=factories.DUMMY_MAPPINGS,
        )
        run_id = factories.start_run(client, tenant, dataflow.flow_id)

        doomed = worker(crash_settings, hang_at)
        try:
            wait_for_file(crash_settings.home, f"hang-{hang_at}", doomed)
            running = client.get(f"{factories.BASE}/runs/{run_id}", headers=tenant.headers()).json()["items"][
                0
            ]
            assert running["state"] == "inProgress"
        finally:
            doomed.kill()
            doomed.wait()
        rescuer = worker(crash_settings)
        try:
            run = factories.wait_for_run(client, tenant, run_id, timeout=90)
        finally:
            rescuer.terminate()
            rescuer.wait(timeout=30)

        assert run["state"] == "success", run
        assert [a["name"] for a in run["activities"]] == [
            "Copy Activity",
            "Promotion Activity",
        ]  # this attempt's
        total = FILES * ROWS
        assert run["metrics"]["recordSummary"] == {
            "inputRecordCount": total,
            "outputRecordCount": total,
            "failedRecordCount": 0,
        }
        batch_id = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
        ids = dataset_rows(client, tenant, batch_id).column("id").to_pylist()
        assert len(ids) == total and sorted(ids) == list(range(1, total + 1))  # each record exactly once
        batches = client.get(
            "/data/foundation/catalog/batches",
            params={"dataSet": dataflow.dataset_id},
            headers=tenant.headers(),
        ).json()
        assert list(batches) == [batch_id]  # one batch, committed once
    services.close()
