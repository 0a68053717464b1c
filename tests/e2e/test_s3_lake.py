"""Runs with the lake on S3 (a real S3-compatible server, moto), on both database backends.

The app is built from settings as a deployment's would be (`lake_url=s3://…`, the endpoint, keys,
path-style requests) and has no workers of its own: the test executes runs as a worker does
(`execution.run_next`), so it decides which worker holds a run when, and can stop one between its
upload and its commit (`FLOWSERVICE_HANG_AT=promotion.published`) to play a crashed or partitioned
worker on another machine while a second one takes the run over.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowservice.services import execution, export
from flowservice.services.context import Services
from flowservice.services.retention import DAY_MS, PurgeReport, purge
from tests import factories
from tests.e2e.test_ingestion import (
    EXPORT,
    customers,
    dataset_rows,
    dlz_flow,
    export_json,
    failed_records,
    write_csv,
)
from tests.factories import Tenant
from tests.worlds import Own, own_app

KEY, SECRET = "AKIALAKEEXAMPLE", "lake-secret-" + uuid.uuid4().hex
LEASE_SECONDS = 300  # heartbeats every 100 s: none renews a lease while a test moves the clock past it
HANG = "promotion.published"


@dataclass
class World:
    own: Own
    s3: Any
    bucket: str
    home: Path

    @property
    def services(self) -> Services:
        return self.own.services

    def keys(self, prefix: str = "") -> dict[str, int]:
        """Every object of the lake under `prefix` (relative to the lake's root): key -> size."""
        found: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix="lake/" + prefix
        ):
            found.update((o["Key"].removeprefix("lake/"), o["Size"]) for o in page.get("Contents") or [])
        return found


@pytest.fixture(scope="module")
def world(database_url: str, s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    )
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    home = tmp_path_factory.mktemp("s3-lake")
    with own_app(
        database_url,
        home,
        workers=0,
        lake_url=f"s3://{bucket}/lake",
        s3_endpoint_url=s3_server,
        s3_region="us-east-1",
        s3_access_key_id=KEY,
        s3_secret_access_key=SECRET,
        s3_path_style=True,
        test_connectors=True,
        lease_seconds=LEASE_SECONDS,
    ) as own:
        yield World(own, s3, bucket, own.services.settings.home)


def batch_of(run: dict[str, Any]) -> str:
    batch_id: str = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
    return batch_id


def run_by_id(world: World, tenant: Tenant, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = export_json(world.own.client, tenant, f"{factories.BASE}/runs/{run_id}")["items"][0]
    return run


def checksums(world: World, tenant: Tenant, batch_id: str) -> dict[str, str]:
    client = world.own.client
    sums = {}
    for item in export_json(client, tenant, f"{EXPORT}/files/{batch_id}")["data"]:
        response = client.get(
            item["_links"]["self"]["href"].removeprefix("http://testserver"), headers=tenant.headers()
        )
        assert response.status_code == 200
        sums[item["name"]] = hashlib.sha256(response.content).hexdigest()
    return sums


def test_a_run_lands_in_the_s3_lake_and_is_served_from_it(world: World) -> None:
    client, services = world.own.client, world.services
    tenant = factories.new_tenant(services, client)
    zone = services.settings.landing_zone / tenant.org_id / tenant.sandbox
    size = write_csv(zone / "incoming" / "a.csv", customers(1, 10, {3: "missing-email", 7: "bad-amount"}))
    dataflow = dlz_flow(
        client,
        tenant,
        "incoming",
        mappings=factories.IDENTITY_MAPPINGS,
        options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
    )
    run_id = factories.start_run(client, tenant, dataflow.flow_id)
    assert execution.run_next(services, "worker-a")
    run = run_by_id(world, tenant, run_id)

    assert run["state"] == "success", run
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 10,
        "outputRecordCount": 8,
        "failedRecordCount": 2,
    }
    assert run["metrics"]["sizeSummary"]["inputBytes"] == size
    assert run["metrics"]["fileSummary"]["inputFileCount"] == 1
    batch_id = batch_of(run)
    listing = export_json(client, tenant, f"{EXPORT}/files/{batch_id}")["data"]
    assert run["metrics"]["sizeSummary"]["outputBytes"] == sum(int(f["length"]) for f in listing) > 0
    ids = dataset_rows(client, tenant, batch_id).column("id").to_pylist()
    assert sorted(ids) == [1, 2, 4, 5, 6, 8, 9, 10]

    # the manifest and the diagnostics come from the bucket, through the run's own links
    promotion = run["activities"][1]
    files = export_json(client, tenant, promotion["fileSummary"]["extensions"]["manifest"]["fileInfo"])[
        "files"
    ]
    assert [(f["path"], f["size"], f["records"]) for f in files] == [("incoming/a.csv", size, 10)]
    diagnostics = promotion["statusSummary"]["extensions"]["manifest"]
    failed = failed_records(client, tenant, diagnostics["failedRecords"])
    assert sorted(f["record"] for f in failed) == [3, 7]
    assert len(export_json(client, tenant, diagnostics["sampleErrors"])) == 2

    # in the bucket: this batch's one upload, the one its row names, and nothing pending
    who = factories.domain_tenant(services, tenant)
    place = export.place_of(services, who, batch_id)
    assert place.attempt.startswith("1-")  # the first claim's epoch, and random bits
    batch_keys = world.keys(f"{tenant.org_id}/{tenant.sandbox}/")
    prefix = f"{tenant.org_id}/{tenant.sandbox}/datasets/{dataflow.dataset_id}/batches/{batch_id}/.attempts/{place.attempt}/"
    assert sorted(k.removeprefix(prefix) for k in batch_keys) == sorted(
        [f["name"] for f in listing] + ["input_files", "row_error_samples.json", "row_errors/part-00000.json"]
    )
    assert not (world.home / "lake").exists()  # nothing of the lake on local disk…
    assert not services.lake.run_staging(tenant.org_id, tenant.sandbox, run_id).exists()  # …nor left behind

    # retention on S3: day 31 removes the diagnostics, and only them
    data = checksums(world, tenant, batch_id)
    diagnostics_bytes = sum(size for key, size in batch_keys.items() if "/row_error" in key)
    report = purge(services, time.time_ns() // 1_000_000 + 31 * DAY_MS)
    assert (report.diagnostics_removed, report.bytes_freed, report.uploads_removed) == (
        1,
        diagnostics_bytes,
        0,
    )
    assert (
        client.get(
            diagnostics["failedRecords"].removeprefix("http://testserver"), headers=tenant.headers()
        ).status_code
        == 404
    )
    assert checksums(world, tenant, batch_id) == data
    assert (
        export_json(client, tenant, promotion["fileSummary"]["extensions"]["manifest"]["fileInfo"])["files"]
        == files
    )


def test_an_upload_no_commit_names_is_never_visible_and_retention_removes_it(world: World) -> None:
    client, services, clock = world.own.client, world.services, world.own.clock
    tenant = factories.new_tenant(services, client)
    source = factories.dummy_source(client, tenant, files=2, rows=50)
    dataflow = factories.dataflow(
        client,
        tenant,
        source=source,
        scheduleParams={"startTime": "1700000000", "frequency": "once"},
        mappings=factories.DUMMY_MAPPINGS,
    )
    run_id = factories.start_run(client, tenant, dataflow.flow_id)
    datasets = f"{tenant.org_id}/{tenant.sandbox}/datasets/{dataflow.dataset_id}/batches/"

    # worker A, on a machine of its own, uploads the batch and stops before its commit
    home_a = world.home.parent / f"{world.home.name}-worker-a"
    settings_a = services.settings.model_copy(update={"home": home_a, "hang_at": HANG})
    services_a = Services.from_settings(settings_a, clock=clock)
    worker_a = threading.Thread(target=execution.run_next, args=(services_a, "worker-a"), daemon=True)
    worker_a.start()
    stopped = home_a / f"hang-{HANG}-{os.getpid()}"
    deadline = time.monotonic() + 60
    while not stopped.exists():
        assert worker_a.is_alive() and time.monotonic() < deadline, "worker A did not reach its commit"
        time.sleep(0.02)
    uploaded = world.keys(datasets)
    [attempt_a] = {k.split("/.attempts/")[1].split("/")[0] for k in uploaded}
    assert attempt_a.startswith("1-") and any(k.endswith(".parquet") for k in uploaded)
    assert len(services.lake.pending_uploads(tenant.org_id, tenant.sandbox, 2**62)) == 1
    assert run_by_id(world, tenant, run_id)["state"] == "inProgress"

    # A's lease runs out; worker B takes the run over and commits its own upload
    clock.advance(LEASE_SECONDS * 1000 + 1)
    assert execution.run_next(services, "worker-b")
    run = run_by_id(world, tenant, run_id)
    assert run["state"] == "success", run
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 100,
        "outputRecordCount": 100,
        "failedRecordCount": 0,
    }
    batch_id = batch_of(run)
    place = export.place_of(services, factories.domain_tenant(services, tenant), batch_id)
    assert place.attempt.startswith("2-")
    ids = dataset_rows(client, tenant, batch_id).column("id").to_pylist()
    assert sorted(ids) == list(range(1, 101))  # every record once: A's upload is not read
    served = export_json(client, tenant, f"{EXPORT}/files/{batch_id}")["data"]
    kept = {k: s for k, s in world.keys(datasets).items() if f"/.attempts/{place.attempt}/" in k}
    assert sorted(f["name"] for f in served) == sorted(
        k.split(f"/.attempts/{place.attempt}/")[1] for k in kept if k.endswith(".parquet")
    )
    assert set(world.keys(datasets)) == set(uploaded) | set(kept)  # A's upload is there, unreferenced

    # retention, a day on, deletes A's upload: its run is over and its batch row names B's
    a_bytes = sum(uploaded.values())
    report = purge(services, time.time_ns() // 1_000_000 + DAY_MS + 60_000)
    assert report == PurgeReport(uploads_removed=1, bytes_freed=a_bytes)
    assert world.keys(datasets) == kept
    assert world.keys(f"{tenant.org_id}/{tenant.sandbox}/.pending/") == {}

    # A comes back, finds itself fenced out, and changes nothing
    (home_a / f"release-{HANG}-{os.getpid()}").write_text("go")
    worker_a.join(timeout=60)
    assert not worker_a.is_alive()
    services_a.close()
    assert world.keys(datasets) == kept
    assert run_by_id(world, tenant, run_id)["metrics"] == run["metrics"]
    assert sorted(dataset_rows(client, tenant, batch_id).column("id").to_pylist()) == list(range(1, 101))
    assert purge(services, time.time_ns() // 1_000_000 + DAY_MS + 60_000) == PurgeReport()
