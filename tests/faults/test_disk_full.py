"""The lake's disk fills up during a run: the run fails with a clear, documented error, leaves no
partial batch behind (nothing in the Catalog, nothing in the lake, its staging removed), and the
worker goes on to run the next flow once there is room.

The home (lake, staging and landing zone) is a tmpfs of SIZE, mounted by the test, so the disk
really answers ENOSPC; the database is a SQLite file elsewhere, as the fault under test is the
lake's. Two places can meet a full disk: the Promotion Activity writing Parquet (the landing zone's
files are staged as hard links, so only the output needs room) and the Copy Activity staging a
source's bytes. Mounting needs root: without it the test is skipped, or fails under
FLOWSERVICE_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.e2e.test_ingestion import HEADER, customers, dataset_rows, dlz_flow, write_csv, zone
from tests.faults import support
from tests.services import unavailable

SIZE = 8 * 2**20
BIG_CSV_BYTES = 5 * 2**20  # fits beside the output of a small run, but not beside its own Parquet
DUMMY_ROWS = 120_000  # two dummy files of ~5.4 MB each: the second cannot be staged
OUT_OF_SPACE = "No space left on device"
PROCESSING_FAILED = {
    "code": "CONNECTOR-2001-500",
    "message": "Error in processing (parsing, validation or transformation) the copied data.",
}
COPY_FAILED = {"code": "CONNECTOR-1001-500", "message": "Error in copying the data from Source."}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SIZE bytes, unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        unavailable("a tmpfs mount", "mounting a small disk for the lake needs root")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable("a tmpfs mount", mounted.stderr.strip() or f"mount exited with {mounted.returncode}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def random_customers(path: Path, size: int) -> int:
    """A Customers CSV of about `size` bytes whose text does not compress: its Parquet is nearly as
    large as itself. Returns the number of rows."""
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        while handle.tell() < size:
            rows += 1
            name = "".join(rng.choices(alphabet, k=48))
            email = "".join(rng.choices(string.hexdigits.lower()[:16], k=40)) + "@example.com"
            writer.writerow([rows, name, email, f"{rng.random() * 1000:.2f}", "2026-01-15", "true"])
    return rows


def open_files_under(folder: Path) -> list[str]:
    """Files this process holds open below `folder`: a handle on a discarded part would keep its
    space taken (a deleted file is freed only when its last handle closes)."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed since it was listed (the listing's own descriptor, for one)
            continue
        if target.startswith(f"{folder}/"):
            held.append(target)
    return held


def free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def dummy_flow(client: Any, tenant: factories.Tenant) -> factories.Dataflow:
    """Generated files larger than the disk: the Copy Activity cannot stage them all."""
    source = factories.dummy_source(client, tenant, files=2, rows=DUMMY_ROWS)
    return factories.dataflow(
        client,
        tenant,
        source=source,
        scheduleParams={"startTime": "1700000000", "frequency": "once"},
        mappings=[
            {"sourceType": "ATTRIBUTE", "source": "id", "destination": "id"},
            {"sourceType": "EXPRESSION", "source": "concat('u', id, '@example.com')", "destination": "email"},
        ],
    )


@pytest.mark.parametrize("stage", ["promotion", "copy"])
def test_a_full_lake_fails_the_run_cleanly_and_the_worker_recovers(
    small_disk: Path, tmp_path: Path, stage: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flowservice")
    home = small_disk
    with support.fault_app(home, f"sqlite:///{tmp_path / 'faults.db'}", workers=1) as app:
        client, services = app.client, app.services
        tenant = factories.new_tenant(services, client)
        big_file = zone(services.settings, tenant) / "big" / "customers.csv"
        if stage == "promotion":
            big_rows = random_customers(big_file, BIG_CSV_BYTES)
            big = dlz_flow(client, tenant, "big", mappings=factories.IDENTITY_MAPPINGS)
        else:
            big = dummy_flow(client, tenant)
        run_id = factories.start_run(client, tenant, big.flow_id)
        failed = factories.wait_for_run(client, tenant, run_id, timeout=60)

        # --- the run failed, saying why, under the documented code of the step that met the full disk
        assert failed["state"] == "failed", failed
        errors = failed["metrics"]["statusSummary"]["errors"]
        activities = {a["name"]: a for a in failed["activities"]}
        if stage == "promotion":
            assert errors == [PROCESSING_FAILED]
            assert activities["Copy Activity"]["statusSummary"]["status"] == "success"
            hit = activities["Promotion Activity"]
            assert hit["recordSummary"].get("outputRecordCount", 0) == 0
        else:
            assert errors == [COPY_FAILED]
            assert list(activities) == ["Copy Activity"]
            hit = activities["Copy Activity"]
        assert hit["statusSummary"]["status"] == "failed"
        [detail] = hit["statusSummary"]["extensions"]["errors"]
        assert detail["code"] == errors[0]["code"]
        assert OUT_OF_SPACE in detail["message"] and "Traceback" not in detail["message"]
        # reported as an expected condition: a warning, not an unexpected failure with a traceback
        engine = [r for r in caplog.records if r.name.startswith("flowservice")]
        assert any(OUT_OF_SPACE in r.getMessage() for r in engine)
        assert not [r for r in engine if r.exc_info], [r.getMessage() for r in engine if r.exc_info]

        # --- nothing half-written: no batch in the Catalog, no folder in the lake, staging removed
        assert support.dataset_batches(client, tenant, big.dataset_id) == {}
        assert support.committed_folders(services, tenant, big.dataset_id) == []
        assert support.lake_leftovers(services, tenant, big.dataset_id) == []
        assert open_files_under(home) == []

        # --- the worker recovers: once the big input is gone, a small run succeeds
        big_file.unlink(missing_ok=True)
        assert free_bytes(home) > SIZE - 2**20
        write_csv(zone(services.settings, tenant) / "small" / "a.csv", customers(1, 50, {}))
        small = dlz_flow(client, tenant, "small", mappings=factories.IDENTITY_MAPPINGS)
        done = factories.wait_for_run(client, tenant, factories.start_run(client, tenant, small.flow_id))
        assert done["state"] == "success", done
        assert done["metrics"]["recordSummary"]["outputRecordCount"] == 50
        batch_id = done["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
        assert sorted(dataset_rows(client, tenant, batch_id).column("id").to_pylist()) == list(range(1, 51))
        assert list(support.dataset_batches(client, tenant, small.dataset_id)) == [batch_id]
        assert support.lake_leftovers(services, tenant, small.dataset_id) == []
        if stage == "promotion":
            assert big_rows > 30_000  # the failed input really was larger than what was left
