"""The S3 server disappears in the middle of a run's Copy Activity, and comes back later.

The server is moto's, as a separate process, so that killing it really drops every connection
(an in-process moto keeps serving a kept-alive connection after it is "stopped"). The worker is
held at the `copy.file_done` checkpoint after the first of the source's files is staged; the test
kills the server, then lets the worker go on. The run must fail with the documented Transient code
(CONNECTOR-1001-500), an automatic retry must be made for later, and nothing of the failed attempt
may be visible: no batch in the Catalog, no folder in the lake, no staged input left on disk. Once a
new server holds the same files, the retry (released by moving the service clock past its backoff,
not by sleeping) ingests every record exactly once.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests import factories
from tests.clock import FakeClock
from tests.e2e.test_ingestion import HEADER, customers, dataset_rows
from tests.faults import support
from tests.live import free_port

FILES, ROWS = 6, 400
BUCKET = "landing"
BACKOFF_SECONDS = 60  # far longer than the test: only the test's clock can make the retry due


class MotoServer:
    """moto's S3 server as a process of its own on a fixed loopback port, killed like a crash."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        support.wait_until(self._answers, f"moto on port {self.port}", timeout=30)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"moto exited with {self.process.returncode}:\n{self.log.read_text()}")
        try:
            httpx.get(f"{self.url}/", timeout=1.0)
        except httpx.TransportError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: the server vanishes with its connections, as on a crash or a network cut."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="k",
            aws_secret_access_key="s",
            region_name="us-east-1",
        )


@contextmanager
def moto_server(folder: Path) -> Iterator[MotoServer]:
    server = MotoServer(free_port(), folder / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def csv_file(start: int, count: int) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADER)
    writer.writerows(customers(start, count, {}))
    return text.getvalue().encode()


def upload(server: MotoServer) -> None:
    """The source's files: FILES CSV files of ROWS customers each, ids 1..FILES*ROWS."""
    s3 = server.client()
    s3.create_bucket(Bucket=BUCKET)
    for index in range(FILES):
        s3.put_object(Bucket=BUCKET, Key=f"in/part-{index}.csv", Body=csv_file(index * ROWS + 1, ROWS))


def test_s3_server_lost_mid_copy_fails_transiently_and_the_retry_ingests_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    clock = FakeClock(time.time_ns() // 1_000_000)
    with (
        moto_server(tmp_path) as server,
        support.fault_app(
            home,
            f"sqlite:///{tmp_path / 'faults.db'}",
            workers=1,
            clock=clock,
            hang_at="copy.file_done",
            retry_backoff_seconds=BACKOFF_SECONDS,
        ) as app,
    ):
        client, services = app.client, app.services
        upload(server)
        tenant = factories.new_tenant(services, client)
        params = {"s3AccessKey": "k", "s3SecretKey": "s", "serviceUrl": server.url, "bucketName": BUCKET}
        connection = factories.create(
            client,
            tenant,
            "connections",
            factories.s3_connection(auth={"specName": "Access Key", "params": params}),
        )
        dataflow = factories.dataflow(
            client,
            tenant,
            source=factories.s3_source(connection["id"], params={"path": "/in", "type": "folder"}),
            mappings=factories.IDENTITY_MAPPINGS,
            scheduleParams={"startTime": "1700000000", "frequency": "once"},
        )
        run_id = factories.start_run(client, tenant, dataflow.flow_id)

        # --- the fault: the first file is staged, then the server is gone -------------------------
        pid = support.wait_hung(home, "copy.file_done")
        try:
            running = support.get_run(client, tenant, run_id)
            assert running["state"] == "inProgress"
            assert [a["name"] for a in running["activities"]] == ["Copy Activity"]
            staging = services.lake.run_staging(tenant.org_id, tenant.sandbox, run_id)
            assert len(list(staging.iterdir())) == 1  # really mid-copy: one of FILES files staged
            server.kill()
        finally:
            support.release(home, "copy.file_done", pid)

        failed = factories.wait_for_run(client, tenant, run_id, timeout=60)
        assert failed["state"] == "failed", failed
        assert failed["metrics"]["statusSummary"]["errors"] == [
            {"code": "CONNECTOR-1001-500", "message": "Error in copying the data from Source."}
        ]
        [copy] = failed["activities"]
        assert copy["statusSummary"]["status"] == "failed"
        [detail] = copy["statusSummary"]["extensions"]["errors"]
        assert detail["code"] == "CONNECTOR-1001-500" and server.url in detail["message"]
        assert "Traceback" not in detail["message"]
        assert copy["fileSummary"]["inputFileCount"] == FILES  # listed before the server went away

        # nothing of the failed attempt is visible, or left on disk
        assert support.dataset_batches(client, tenant, dataflow.dataset_id) == {}
        assert support.committed_folders(services, tenant, dataflow.dataset_id) == []
        assert support.lake_leftovers(services, tenant, dataflow.dataset_id) == []

        # a retry was made, for after the backoff
        [retry] = [r for r in support.runs_of(client, tenant, dataflow.flow_id) if r["id"] != run_id]
        assert retry["parentFlowRunId"] == run_id and retry["state"] == "scheduled"

        # --- recovery: the same files on a new server, and the backoff over -----------------------
        server.start()
        upload(server)
        clock.advance((BACKOFF_SECONDS + 1) * 1000)
        done = factories.wait_for_run(client, tenant, retry["id"], timeout=60)

        assert done["state"] == "success", done
        total = FILES * ROWS
        assert done["metrics"]["recordSummary"] == {
            "inputRecordCount": total,
            "outputRecordCount": total,
            "failedRecordCount": 0,
        }
        assert done["metrics"]["fileSummary"]["inputFileCount"] == FILES
        batch_id = done["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
        ids = dataset_rows(client, tenant, batch_id).column("id").to_pylist()
        assert sorted(ids) == list(range(1, total + 1))  # every record, each exactly once
        assert list(support.dataset_batches(client, tenant, dataflow.dataset_id)) == [batch_id]
        assert support.committed_folders(services, tenant, dataflow.dataset_id) == [batch_id]
        assert support.lake_leftovers(services, tenant, dataflow.dataset_id) == []
