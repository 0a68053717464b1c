"""PostgreSQL stops (immediate shutdown: a crash, for its clients) while runs are at every stage, and
starts again.

The test runs a PostgreSQL of its own (initdb into a temporary folder, as the `postgres` user when
the test runs as root, on a free port), never the shared one. Against it run a real
`flowservice serve` (API, scheduler, notifier, retention and one executor) and two real
`flowservice worker` processes. The scheduler creates one run for each of RUNS flows; each of the
three executors claims one and stops at a different engine checkpoint, so that when the database
goes away there is a run at each of these points:

- `copy.file_done` (the server's executor): mid-copy, its next write is the Copy Activity's result;
- `promotion.file_done`: mid-promotion, its next write is the fenced commit of its batch;
- `promotion.committed`: the batch is committed, the run not yet finished (the next attempt must
  finish it from the batch, not write the batch again);

and the other runs wait, scheduled. The database is stopped, the executors are let go (each meets
the outage at its next write, which the test sees in the process's log before going on), the API is
asked during the outage, and then the database is started again.

What must hold: no process dies (no crash loop) and each reconnects (pool_pre_ping): the queued
runs, and the run of a flow made after the outage, are scheduled and executed by the same processes,
which then stop cleanly; the API answers a clean 5xx problem body during the outage and 200 at once
after it; every run ends in success (or fails with a documented code and its automatic retry
succeeds); every dataset holds its records exactly once in exactly one batch, the Catalog shows no
other batch, and no attempt leaves files.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests import factories
from tests.e2e.test_ingestion import dataset_rows
from tests.faults import support
from tests.live import LiveServer, free_port, serve
from tests.services import unavailable

RUNS, FILES, ROWS = 6, 4, 3000
SERVE_CHECKPOINT = "copy.file_done"  # held by the server's own executor
WORKER_CHECKPOINTS = ("promotion.file_done", "promotion.committed")
LEASE_SECONDS = 2.0
DOCUMENTED_RUN_CODES = {"CONNECTOR-1001-500", "CONNECTOR-2001-500"}


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of this test's own: stopping it disturbs nobody else."""

    bin: Path
    root: Path  # owned by the server's user: data, socket and log
    port: int
    run_as: list[str]  # the command prefix that runs a program as the server's user

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}\n{log}")

    def initdb(self) -> None:
        command = [*self.run_as, str(self.bin / "initdb"), "-D", str(self.data)]
        command += ["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            unavailable("initdb", done.stderr.strip() or done.stdout.strip())

    def start(self) -> None:
        """Start and wait until it accepts connections (after crash recovery, on a restart)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        options += " -c fsync=off"  # the machine does not crash, only the server: the OS keeps its writes
        self._ctl("-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every server process quits at once, with no checkpoint, as in a crash."""
        self._ctl("-m", mode, "-w", "stop")


def server_binaries() -> Path | None:
    """FLOWSERVICE_TEST_PG_BIN, or the newest Debian-style installation (initdb is not on PATH there)."""
    if "FLOWSERVICE_TEST_PG_BIN" in os.environ:
        chosen = Path(os.environ["FLOWSERVICE_TEST_PG_BIN"])
        return chosen if (chosen / "initdb").exists() else None
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0)
    return found[-1] if found else None


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    binaries = server_binaries()
    if binaries is None:
        unavailable("PostgreSQL's initdb", "none in FLOWSERVICE_TEST_PG_BIN or /usr/lib/postgresql/*/bin")
    assert binaries is not None  # unavailable() skipped or failed the test
    root = Path(tempfile.mkdtemp(prefix="flowservice-faults-pg-"))  # /tmp: reachable by its user
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            unavailable("a postgres user", "the test runs as root and initdb needs a non-root user")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = OwnPostgres(binaries, root, free_port(), run_as)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        with suppress(RuntimeError):  # not running
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Worker:
    checkpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(settings: Settings, checkpoint: str) -> Worker:
    """A `flowservice worker` (one executor) that stops at `checkpoint` until released."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")},
        "FLOWSERVICE_HOME": str(settings.home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url,
        "FLOWSERVICE_TEST_CONNECTORS": "1",
        "FLOWSERVICE_LEASE_SECONDS": str(LEASE_SECONDS),
        "FLOWSERVICE_POLL_SECONDS": "0.1",
        "FLOWSERVICE_HANG_AT": checkpoint,
    }
    log = settings.home / f"worker-{checkpoint}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowservice", "worker", "--concurrency", "1"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Worker(checkpoint, process, log)


def kill_if_alive(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.kill()
        worker.process.wait()


def met_outage(output: Callable[[], str]) -> bool:
    """The executor's run failed on the database (logged by execute), and recording that failed too
    (logged by the worker loop, which goes on): the run is left to its lease, as after a crash."""
    text = output()
    return "failed unexpectedly" in text and "could not claim a run" in text


def dummy_flow(client: TestClient, tenant: factories.Tenant, start: int) -> factories.Dataflow:
    """Generated CSV (FILES files of ROWS rows, ids 1..FILES*ROWS), scheduled once at `start`."""
    source = factories.dummy_source(client, tenant, files=FILES, rows=ROWS)
    return factories.dataflow(
        client,
        tenant,
        source=source,
        scheduleParams={"startTime": str(start), "frequency": "once"},
        mappings=factories.DUMMY_MAPPINGS,
    )


def run_ids_of(client: TestClient, tenant: factories.Tenant, flow_id: str) -> list[str]:
    return [r["id"] for r in support.runs_of(client, tenant, flow_id)]


def live_get(server: LiveServer, path: str, tenant: factories.Tenant) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=tenant.headers(), timeout=30)


def final_run(client: TestClient, tenant: factories.Tenant, flow_id: str) -> dict[str, Any]:
    """The run that ended the flow's story: its only run, or the retry of a run that failed."""
    runs = support.runs_of(client, tenant, flow_id)
    finished = [r for r in runs if r["state"] in ("success", "failed", "cancelled")]
    if len(finished) < len(runs) or not runs:
        return {}
    for run in runs:
        if run["state"] == "failed":  # allowed only with a documented code and a retry made
            codes = {e["code"] for e in run["metrics"]["statusSummary"]["errors"]}
            assert codes <= DOCUMENTED_RUN_CODES, run
            assert any(r.get("parentFlowRunId") == run["id"] for r in runs), run
    children = {r.get("parentFlowRunId") for r in runs}
    [last] = [r for r in runs if r["id"] not in children]
    return last


@pytest.mark.slow
def test_database_restart_mid_runs_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    began = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - began, 1)

    with ExitStack() as stack:
        database = stack.enter_context(own_postgres())
        settings = Settings.load(
            home=home,
            database_url=database.url,
            public_url="http://testserver",
            test_connectors=True,
            lease_seconds=LEASE_SECONDS,
        )
        migrate.upgrade(settings.database_url)
        services = Services.from_settings(settings)
        stack.callback(services.close)
        client = stack.enter_context(TestClient(create_app(services)))  # no executors in this process
        tenant = factories.new_tenant(services, client)
        start = int(time.time()) - 60  # due at once: the scheduler creates every run
        flows = [dummy_flow(client, tenant, start) for _ in range(RUNS)]
        phase("postgres up, flows made")

        # the workers start first (they wait for runs), so that their start overlaps the server's
        workers = [start_worker(settings, checkpoint) for checkpoint in WORKER_CHECKPOINTS]
        for worker in workers:
            stack.callback(kill_if_alive, worker)
        server = stack.enter_context(
            serve(
                tmp_path,
                env={
                    "FLOWSERVICE_HOME": str(home),
                    "FLOWSERVICE_DATABASE_URL": database.url,
                    "FLOWSERVICE_TEST_CONNECTORS": "1",
                    "FLOWSERVICE_WORKERS": "1",  # the server executes runs too, and is held like the workers
                    "FLOWSERVICE_HANG_AT": SERVE_CHECKPOINT,
                    "FLOWSERVICE_POLL_SECONDS": "0.1",
                    "FLOWSERVICE_LEASE_SECONDS": str(LEASE_SECONDS),
                },
            )
        )
        logs: dict[str, Callable[[], str]] = {SERVE_CHECKPOINT: server.output}
        logs.update({w.checkpoint: w.output for w in workers})
        held = {checkpoint: support.wait_hung(home, checkpoint) for checkpoint in logs}
        run_ids = [
            support.wait_until(
                partial(run_ids_of, client, tenant, flow.flow_id), f"the scheduled run of flow {flow.flow_id}"
            )[0]
            for flow in flows
        ]
        states = [support.get_run(client, tenant, run_id)["state"] for run_id in run_ids]
        assert sorted(states) == ["inProgress"] * len(held) + ["scheduled"] * (RUNS - len(held))
        phase("runs held")

        # --- the fault ---------------------------------------------------------------------------
        outage_started = time.monotonic()
        database.stop("immediate")
        for checkpoint, pid in held.items():
            support.release(home, checkpoint, pid)
        # each executor meets the outage at its next write: the run fails, then so does recording it
        for checkpoint, output in logs.items():
            support.wait_until(
                partial(met_outage, output), f"the executor at {checkpoint} to meet the outage"
            )
        # the API, during the outage: a clean problem body, never a traceback
        during: list[int] = []
        for path in (
            f"{factories.BASE}/runs/{run_ids[0]}",
            f"{factories.BASE}/flows",
            "/data/foundation/catalog/batches",
        ):
            answer = live_get(server, path, tenant)
            assert 500 <= answer.status_code < 600, (path, answer.status_code, answer.text)
            body = answer.json()
            assert body["type"].startswith("https://ns.adobe.com/aep/errors/FLOW-"), body
            assert body["status"] == answer.status_code and body["report"]["request-id"]
            assert "Traceback" not in answer.text and "psycopg" not in answer.text, answer.text
            during.append(answer.status_code)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # alive, only degraded
        assert server.process.poll() is None and all(w.process.poll() is None for w in workers)
        database.start()
        outage_seconds = time.monotonic() - outage_started
        phase("outage over")

        # --- recovery ----------------------------------------------------------------------------
        answer = live_get(server, f"{factories.BASE}/runs/{run_ids[0]}", tenant)
        assert answer.status_code == 200, answer.text  # at once: dead connections are replaced
        # the scheduler lived through it too: a flow made now gets its run, and it is executed
        flows.append(dummy_flow(client, tenant, int(time.time()) - 60))
        finals = [
            support.wait_until(
                partial(final_run, client, tenant, flow.flow_id), f"flow {flow.flow_id} to end", timeout=60
            )
            for flow in flows
        ]
        phase("runs ended")
        total = FILES * ROWS
        batches: dict[str, dict[str, Any]] = {}
        for flow, run in zip(flows, finals, strict=True):
            assert run["state"] == "success", run
            assert run["metrics"]["recordSummary"] == {
                "inputRecordCount": total,
                "outputRecordCount": total,
                "failedRecordCount": 0,
            }
            batch_id = run["activities"][-1]["targetInfo"][0]["reference"]["ids"][0]
            ids = dataset_rows(client, tenant, batch_id).column("id").to_pylist()
            assert len(ids) == total and sorted(ids) == list(range(1, total + 1))  # each record once
            shown = support.dataset_batches(client, tenant, flow.dataset_id)
            assert list(shown) == [batch_id] and shown[batch_id]["status"] == "success"
            assert support.committed_folders(services, tenant, flow.dataset_id) == [batch_id]
            assert support.lake_leftovers(services, tenant, flow.dataset_id) == []
            batches.update(shown)
        every = client.get(
            "/data/foundation/catalog/batches", params={"limit": 100}, headers=tenant.headers()
        )
        assert every.status_code == 200 and set(every.json()) == set(batches)  # no orphan batch anywhere
        made = [len(support.runs_of(client, tenant, flow.flow_id)) for flow in flows]

        # --- every process lived through it, and stops cleanly --------------------------------------
        assert server.process.poll() is None
        processes: list[subprocess.Popen[Any]] = [server.process, *(w.process for w in workers)]
        for process in processes:
            process.terminate()  # all at once: they stop side by side
        codes = [process.wait(timeout=60) for process in processes]
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -15 is its clean exit
        assert codes[0] in (0, -signal.SIGTERM) and "Application shutdown complete" in server.output()
        assert codes[1:] == [0] * len(workers), [w.output()[-3000:] for w in workers]
        phase("processes stopped")
        print(
            f"\nfaults: 1 database crash ({outage_seconds:.1f}s down); runs held at {', '.join(logs)}, "
            f"{RUNS - len(held)} queued; API during the outage: {during}; runs made per flow: {made}; "
            f"records {len(flows) * total} ingested, lost 0, duplicated 0; phases {phases}"
        )
