"""Large runs promoted in slices by several workers, committed as one batch with exact metrics.

A low `slice_files` makes a run of a dozen landing-zone CSV files (some rows bad) a run of several
slices. Embedded worker threads share them; a slice that fails once is tried again alone; with the
PostgreSQL queue, a `flowservice worker` killed in the middle of a slice loses only that slice.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice.engine import promotion
from flowservice.services import dispatch
from flowservice.services.context import Services
from flowservice.workers.inprocess import InProcessQueue
from tests import factories
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.test_distributed import (
    FUTURE,
    api,
    settings_for,
    sql,
    start_run,
    start_worker,
    stop,
    wait_until,
)
from tests.e2e.test_ingestion import customers, dataset_rows, dlz_flow, export_json, write_csv, zone
from tests.factories import BASE, Tenant

FILES, ROWS = 12, 40
T0 = 1_800_000_000


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


def put_files(services: Services, tenant: Tenant) -> tuple[list[int], int]:
    """FILES csv files of ROWS rows inside run 0's window; (the good keys, the bad row count)."""
    good: list[int] = []
    bad_rows = 0
    for part in range(FILES):
        first = part * ROWS + 1
        bad = {first + 3: "missing-email", first + 17: "bad-amount"} if part % 3 == 0 else {}
        path = zone(services.settings, tenant) / "incoming" / f"part-{part:02d}.csv"
        write_csv(path, customers(first, ROWS, bad))
        os.utime(path, (T0 + 50, T0 + 50))
        good += [k for k in range(first, first + ROWS) if k not in bad]
        bad_rows += len(bad)
    return good, bad_rows


def flow(client: TestClient, tenant: Tenant) -> factories.Dataflow:
    return dlz_flow(
        client,
        tenant,
        "incoming",
        mappings=factories.IDENTITY_MAPPINGS,
        scheduleParams={"startTime": FUTURE, "frequency": "once"},
        options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
    )


def check_run(
    client: TestClient, tenant: Tenant, run_id: str, dataset_id: str, good: list[int], bad_rows: int
) -> dict[str, Any]:
    run: dict[str, Any] = client.get(f"{BASE}/runs/{run_id}", headers=tenant.headers()).json()["items"][0]
    assert run["state"] == "success", run
    total = FILES * ROWS
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": total,
        "outputRecordCount": total - bad_rows,
        "failedRecordCount": bad_rows,
    }
    assert run["metrics"]["fileSummary"]["inputFileCount"] == FILES
    batch_id = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
    ids = dataset_rows(client, tenant, batch_id).column("id").to_pylist()
    assert sorted(ids) == sorted(good)  # each key exactly once
    batches = export_json(client, tenant, f"/data/foundation/catalog/batches?dataSet={dataset_id}")
    assert list(batches) == [batch_id]  # one batch for all slices
    batch = batches[batch_id]
    assert batch["metrics"]["inputRecordCount"] == total
    assert batch["metrics"]["failedRecordCount"] == bad_rows
    assert sum(e.get("recordCount", 0) for e in batch["errors"]) == bad_rows
    return run


def slice_rows(services: Services, run_id: str) -> list[Any]:
    return sql(
        services, "SELECT idx, status, attempts FROM run_slices WHERE run_id = :id ORDER BY idx", id=run_id
    )


def test_embedded_workers_share_the_slices_and_a_failed_slice_is_retried_alone(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, pg_url, queue="embedded", slice_files=3)
    calls: Counter[str] = Counter()
    threads: set[str] = set()
    real = promotion.promote

    def flaky(*args: Any, **kwargs: Any) -> promotion.Result:
        prefix = str(kwargs.get("part_prefix", ""))
        calls[prefix] += 1
        threads.add(threading.current_thread().name)
        if prefix == "s00002-" and calls[prefix] == 1:
            raise OSError("the disk hiccuped")  # transient: the slice is tried again
        return real(*args, **kwargs)

    monkeypatch.setattr(promotion, "promote", flaky)
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        good, bad_rows = put_files(services, tenant)
        dataflow = flow(client, tenant)
        queue = InProcessQueue(services, 3)
        queue.start()
        try:
            run_id = start_run(client, tenant, dataflow.flow_id, 0)
            wait_until(
                lambda: (
                    sql(services, "SELECT status FROM runs WHERE id = :id", id=run_id)[0][0]
                    in ("success", "failed")
                ),
                "the run to end",
                30,
            )
        finally:
            queue.stop(5)
        check_run(client, tenant, run_id, dataflow.dataset_id, good, bad_rows)
        rows = slice_rows(services, run_id)
        assert len(rows) == 4
        assert [status for _, status, _ in rows] == ["done"] * 4
        assert [attempts for _, _, attempts in rows] == [1, 1, 2, 1]  # only the failed slice again
        assert calls == {"s00000-": 1, "s00001-": 1, "s00002-": 2, "s00003-": 1}
        assert len(threads) >= 2  # several workers took slices


def test_a_worker_killed_mid_slice_loses_only_that_slice(tmp_path: Path, pg_url: str) -> None:
    settings = settings_for(tmp_path, pg_url, slice_files=3)
    extra = {"FLOWSERVICE_SLICE_FILES": "3"}
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        good, bad_rows = put_files(services, tenant)
        dataflow = flow(client, tenant)
        hanging = start_worker(settings, "hanging", hang_at="slice.started", **extra)
        steady = None
        try:
            run_id = start_run(client, tenant, dataflow.flow_id, 0)
            wait_until(
                lambda: any(p.name.startswith("hang-slice.started-") for p in tmp_path.iterdir()),
                "a slice to be started",
                30,
            )
            os.kill(hanging.pid, signal.SIGKILL)
            hanging.wait()
            held = [r for r in slice_rows(services, run_id) if r[1] == "doing"]
            assert held  # the dead worker held slices (and maybe the run)
            steady = start_worker(settings, "steady", **extra)

            def ended() -> bool:
                dispatch.requeue_lost(services)  # the scheduler's sweep: the run's job died too
                status = sql(services, "SELECT status FROM runs WHERE id = :id", id=run_id)[0][0]
                return bool(status in ("success", "failed"))

            wait_until(ended, "the run to end", 40)
        finally:
            stop(hanging)
            if steady is not None:
                stop(steady)
        check_run(client, tenant, run_id, dataflow.dataset_id, good, bad_rows)
        rows = slice_rows(services, run_id)
        assert [status for _, status, _ in rows] == ["done"] * len(rows)
        retried = {idx for idx, _, attempts in rows if attempts > 1}
        assert retried == {idx for idx, _, _ in held}  # only the slices the dead worker held
