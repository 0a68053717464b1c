"""Retention over real runs: what a purge removes, and that it never touches what runs committed.

The world has a database, a lake, workers and a clock of its own (a purge serves every tenant of
its database, so it must not run over the other tests' runs). Runs are made by the workers from
landing-zone CSVs with bad rows and diagnostics on; time moves by the clock and by `now_ms`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flowservice.api.app import create_app
from flowservice.domain.tenancy import Tenant as DomainTenant
from flowservice.engine.lake import BatchPlace, LakePathError, LocalLake
from flowservice.services import runs
from flowservice.services.context import Services
from flowservice.services.retention import DAY_MS, PurgeReport, due, purge
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.store.repos import resources as repos
from flowservice.store.tables import AlertDelivery, FlowTotals, IngestionRollup
from flowservice.workers.inprocess import InProcessQueue
from tests import factories
from tests.clock import FakeClock
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.test_ingestion import EXPORT, customers, dlz_flow, export_json, write_csv
from tests.factories import BASE, Tenant

BAD = {3: "missing-email", 7: "bad-amount"}
OPTIONS = {"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True}


@dataclass
class World:
    services: Services
    client: TestClient
    clock: FakeClock
    t0: int

    def tenant(self) -> Tenant:
        return factories.new_tenant(self.services, self.client)

    def flow(self, tenant: Tenant, folder: str) -> factories.Dataflow:
        """A landing-zone flow over a CSV with two bad rows, diagnostics on."""
        zone = self.services.settings.landing_zone / tenant.org_id / tenant.sandbox
        write_csv(zone / folder / "a.csv", customers(1, 10, BAD))
        return dlz_flow(self.client, tenant, folder, options=OPTIONS)

    def run(self, tenant: Tenant, flow_id: str) -> dict[str, Any]:
        run = factories.wait_for_run(self.client, tenant, factories.start_run(self.client, tenant, flow_id))
        assert run["state"] == "success" and run["metrics"]["recordSummary"]["failedRecordCount"] == 2, run
        return run

    def at(self, day: int) -> int:
        return self.t0 + day * DAY_MS


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("retention")
    url = f"sqlite:///{home / 'retention.db'}" if database_url.startswith("sqlite") else create_pg_database()
    settings = Settings.load(home=home, database_url=url, public_url="http://testserver", poll_seconds=0.1)
    migrate.upgrade(settings.database_url)
    t0 = time.time_ns() // 1_000_000  # the wall clock's now: the lake's files are dated by it
    clock = FakeClock(t0)
    services = Services.from_settings(settings, clock=clock)
    try:
        with TestClient(create_app(services, queue=InProcessQueue(services, workers=2))) as client:
            yield World(services, client, clock, t0)
    finally:
        services.close()
        if not url.startswith("sqlite"):
            drop_pg_database(url)


def batch_of(run: dict[str, Any]) -> str:
    batch_id: str = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
    return batch_id


def data_checksums(client: TestClient, tenant: Tenant, batch_id: str) -> dict[str, str]:
    """Every data file of the batch, downloaded through the export API: name -> SHA-256."""
    sums = {}
    for item in export_json(client, tenant, f"{EXPORT}/files/{batch_id}")["data"]:
        response = client.get(
            item["_links"]["self"]["href"].removeprefix("http://testserver"), headers=tenant.headers()
        )
        assert response.status_code == 200
        sums[item["name"]] = hashlib.sha256(response.content).hexdigest()
    assert sums and all(name.startswith("part-") for name in sums)
    return sums


def meta(client: TestClient, tenant: Tenant, batch_id: str, path: str) -> tuple[int, bytes]:
    response = client.get(f"{EXPORT}/batches/{batch_id}/meta?path={path}", headers=tenant.headers())
    return response.status_code, response.content


def diagnostics_bytes(world: World, tenant: Tenant, run: dict[str, Any], dataset_id: str) -> int:
    place = BatchPlace(tenant.org_id, tenant.sandbox, dataset_id, batch_of(run))
    files = world.services.lake.files(place, "row_errors") + world.services.lake.files(
        place, "row_error_samples.json"
    )
    assert len(files) >= 2
    return sum(f.size for f in files)


def run_status(client: TestClient, tenant: Tenant, run_id: str) -> int:
    status: int = client.get(f"{BASE}/runs/{run_id}", headers=tenant.headers()).status_code
    return status


def run_ids(client: TestClient, tenant: Tenant) -> set[str]:
    body = export_json(client, tenant, f"{BASE}/runs?limit=100")
    return {r["id"] for r in body["items"]}


def who(world: World, tenant: Tenant) -> DomainTenant:
    return factories.domain_tenant(world.services, tenant)


def in_flight_run(world: World, tenant: Tenant, flow_id: str) -> str:
    """An inProgress run no worker will take (ready far ahead, no lease): a run still going."""
    domain = who(world, tenant)
    with world.services.db.transaction() as session:
        flow = repos.flows(session, domain).get(flow_id, lock=True)
        assert flow is not None
        now = world.clock.now_ms()
        doc = runs.insert_run(
            session, domain, flow, services=world.services, now=now, ready_at=now + 3650 * DAY_MS
        )
    runs.start_run(world.services, domain, doc["id"])
    return str(doc["id"])


def finished_runs(world: World, tenant: Tenant, flow_id: str, count: int) -> None:
    """Finished runs of the flow, bulk-loaded as the API would hold them (the workers are not needed)."""
    flow = factories.get(world.client, tenant, "flows", flow_id)
    now = world.clock.now_ms()
    docs = [
        runs.RunState("success", started_at=now + i, completed_at=now + i + 1).apply(
            runs.new_run_document(who(world, tenant), flow, client_id="bulk", now=now + i)
        )
        for i in range(count)
    ]
    runs.import_runs(world.services, who(world, tenant), docs)


def deliveries(world: World, tenant: Tenant, rows: list[tuple[str, int]]) -> None:
    with world.services.db.transaction() as session:
        for n, (status, created) in enumerate(rows):
            session.add(
                AlertDelivery(
                    id=f"{tenant.org_id[:24]}-{n}",
                    ims_org_id=tenant.org_id,
                    sandbox_name=tenant.sandbox,
                    created_at=created,
                    updated_at=created,
                    etag="e",
                    doc={},
                    rule_id=tenant.org_id[:24],
                    event_code="flow_run_success",
                    dedupe_key=f"key-{n}",
                    status=status,
                    attempts=1,
                )
            )


def delivery_statuses(world: World, tenant: Tenant) -> list[tuple[str, int]]:
    with world.services.db.reader() as session:
        rows = session.execute(
            select(AlertDelivery.status, AlertDelivery.created_at)
            .where(AlertDelivery.ims_org_id == tenant.org_id)
            .order_by(AlertDelivery.created_at, AlertDelivery.status)
        )
        return [(status, created) for status, created in rows]


def metrics_rows(world: World) -> list[tuple[Any, ...]]:
    """Every rollup and flow total, as plain values: what metrics are answered from."""
    with world.services.db.reader() as session:
        rollups = session.scalars(select(IngestionRollup)).all()
        totals = session.scalars(select(FlowTotals)).all()
        return sorted(
            [tuple(getattr(r, c.key) for c in IngestionRollup.__table__.columns) for r in rollups]
        ) + sorted([tuple(str(getattr(t, c.key)) for c in FlowTotals.__table__.columns) for t in totals])


def test_purge_removes_old_runs_diagnostics_and_staging_and_keeps_the_data(world: World) -> None:
    services, client, lake = world.services, world.client, world.services.lake
    a = world.tenant()
    kept_flow, gone_flow, busy_flow = (world.flow(a, name) for name in ("kept", "gone", "busy"))
    a1 = world.run(a, kept_flow.flow_id)
    a2 = world.run(a, gone_flow.flow_id)
    a3 = in_flight_run(world, a, busy_flow.flow_id)
    deliveries(world, a, [("delivered", world.t0), ("failed", world.t0), ("pending", world.t0)])
    assert metrics_rows(world), "finished runs are in the rollups and flow totals"
    # what a crash leaves: staging of a run that is over, and of one still going
    leftover = lake.run_staging(a.org_id, a.sandbox, a1["id"])
    leftover.mkdir(parents=True)
    (leftover / "a.csv").write_bytes(b"x" * 1000)
    busy_staging = lake.run_staging(a.org_id, a.sandbox, a3)
    busy_staging.mkdir(parents=True)
    (busy_staging / "a.csv").write_bytes(b"y" * 10)

    a1_batch = batch_of(a1)
    data = data_checksums(client, a, a1_batch)
    manifest = meta(client, a, a1_batch, "input_files")
    assert manifest[0] == 200
    assert meta(client, a, a1_batch, "row_error_samples.json")[0] == 200
    diag_a = diagnostics_bytes(world, a, a1, kept_flow.dataset_id) + diagnostics_bytes(
        world, a, a2, gone_flow.dataset_id
    )

    # day 31: diagnostics and the crash's staging go; every run stays
    world.clock.set(world.at(31))
    a = a.renewed(client)
    assert purge(services, batch=2) == PurgeReport(
        diagnostics_removed=2, staging_removed=1, bytes_freed=diag_a + 1000
    )
    assert run_ids(client, a) == {a1["id"], a2["id"], a3}
    for path in ("row_errors", "row_error_samples.json"):
        assert meta(client, a, a1_batch, path)[0] == 404
    assert data_checksums(client, a, a1_batch) == data
    assert meta(client, a, a1_batch, "input_files") == manifest
    assert not leftover.parent.exists() and (busy_staging / "a.csv").exists()
    assert lake.stale_runs(a.org_id, a.sandbox, world.at(31)) == [a3]  # the other run folders are gone

    # day 60: a newer run of a kept flow, another tenant's run, and many finished runs of a third
    world.clock.set(world.at(60))
    a = a.renewed(client)
    a4 = world.run(a, kept_flow.flow_id)
    b = world.tenant()
    b_flow = world.flow(b, "b")
    b1 = world.run(b, b_flow.flow_id)
    diag_new = diagnostics_bytes(world, a, a4, kept_flow.dataset_id) + diagnostics_bytes(
        world, b, b1, b_flow.dataset_id
    )
    deliveries(world, b, [("delivered", world.at(60))])
    world.clock.set(world.t0)
    c = world.tenant()
    c_flow = world.flow(c, "c")
    finished_runs(world, c, c_flow.flow_id, 120)

    # day 91, by two purges at once: runs of day 0 go, except the one in flight; day 60 stays
    metrics = metrics_rows(world)
    world.clock.set(world.at(91))
    a, b, c = (t.renewed(client) for t in (a, b, c))
    reports: list[PurgeReport] = []

    def one_purge() -> None:
        reports.append(purge(services, world.at(91), batch=25))

    threads = [threading.Thread(target=one_purge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reports) == 2
    assert sum(r.runs_deleted for r in reports) == 2 + 120
    assert sum(r.alert_deliveries_deleted for r in reports) == 2
    assert sum(r.bytes_freed for r in reports) == diag_new
    assert sum(r.staging_removed for r in reports) == 0

    for run_id in (a1["id"], a2["id"]):
        assert run_status(client, a, run_id) == 404
    assert run_ids(client, a) == {a3, a4["id"]}
    assert run_ids(client, b) == {b1["id"]}
    assert run_ids(client, c) == set()
    assert factories.get(client, a, "flows", kept_flow.flow_id)["lastRunDetails"]["id"] == a4["id"]
    assert "lastRunDetails" not in factories.get(client, a, "flows", gone_flow.flow_id)
    assert factories.get(client, a, "flows", busy_flow.flow_id)["lastRunDetails"]["id"] == a3
    assert "lastRunDetails" not in factories.get(client, c, "flows", c_flow.flow_id)
    assert delivery_statuses(world, a) == [("pending", world.t0)]
    assert delivery_statuses(world, b) == [("delivered", world.at(60))]
    assert (busy_staging / "a.csv").exists()

    # what runs committed is all there: batches, data files byte for byte, the input manifest
    assert data_checksums(client, a, a1_batch) == data
    assert meta(client, a, a1_batch, "input_files") == manifest
    batch = export_json(client, a, f"/data/foundation/catalog/batches/{a1_batch}")[a1_batch]
    assert batch["status"] == "success"
    assert meta(client, a, batch_of(a2), "input_files")[0] == 200
    assert metrics_rows(world) == metrics

    # nothing is left to do
    assert purge(services, world.at(91)) == PurgeReport()


def test_due() -> None:
    settings = Settings(retention_interval_seconds=60)
    assert due(None, 0, settings)
    assert not due(1_000, 60_999, settings)
    assert due(1_000, 61_000, settings)


def test_remove_diagnostics_deletes_only_the_two_names(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    place = BatchPlace("ORG@AdobeOrg", "prod", "ds1", "01BATCH")
    folder = lake.batch_dir(place)
    (folder / "row_errors" / "nested").mkdir(parents=True)
    (folder / "row_errors" / "part-00000.json").write_bytes(b"1" * 100)
    (folder / "row_errors" / "nested" / "x.json").write_bytes(b"2" * 10)
    (folder / "row_error_samples.json").write_bytes(b"3" * 7)
    (folder / "part-00000.parquet").write_bytes(b"data")
    (folder / "input_files").write_bytes(b"{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep")
    (folder / "row_errors" / "link").symlink_to(outside, target_is_directory=True)

    assert lake.remove_diagnostics(place) == 117
    assert sorted(p.name for p in folder.iterdir()) == ["input_files", "part-00000.parquet"]
    assert (outside / "precious").read_bytes() == b"keep"  # a link is unlinked, never followed
    assert lake.remove_diagnostics(place) is None
    assert lake.remove_diagnostics(BatchPlace("ORG@AdobeOrg", "prod", "ds1", "absent")) is None

    for bad in ("..", ".staging", "a/b", ""):
        with pytest.raises(LakePathError):
            lake.remove_diagnostics(BatchPlace("ORG@AdobeOrg", "prod", "ds1", bad))
    with pytest.raises(LakePathError):
        lake.remove_diagnostics(BatchPlace("..", "prod", "ds1", "01BATCH"))
    with pytest.raises(LakePathError):
        lake.remove_run_staging("ORG@AdobeOrg", "prod", "../../datasets")
