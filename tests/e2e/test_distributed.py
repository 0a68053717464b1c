"""The distributed queue: runs dispatched as procrastinate jobs on PostgreSQL, executed by
`flowservice worker` processes, surviving SIGKILL at any moment and SIGTERM with runs in flight.

Everything here is real: a PostgreSQL database per test, `flowservice worker` and `flowservice serve
--no-workers` as subprocesses, the landing zone and lake on disk. Tests wait on conditions (marker
files the engine writes at its checkpoints, rows in the database) with deadlines; the one sleep is the
random moment of a kill, not a synchronisation.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from flowservice.api.app import create_app
from flowservice.services import dispatch, execution, runs, scheduling
from flowservice.services.context import Services
from flowservice.settings import QUEUE_NEEDS_POSTGRES, Settings
from flowservice.store import migrate
from flowservice.store.repos import resources as repos
from tests import factories
from tests.conftest import create_pg_database, drop_pg_database
from tests.e2e.test_ingestion import customers, dataset_rows, dlz_flow, export_json, write_csv, zone
from tests.factories import BASE, Tenant
from tests.live import serve

LEASE_SECONDS = 2.0
FUTURE = str(4_000_000_000)  # a `once` flow starting here is never fired by a scheduler in a test
T0 = 1_800_000_000  # epoch seconds: run i reads the files last modified in (T0 + 100 i, T0 + 100 (i + 1)]


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


def settings_for(home: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": url,
        "public_url": "http://testserver",
        "test_connectors": True,
        "queue": "postgres",
        "lease_seconds": LEASE_SECONDS,
        "poll_seconds": 0.1,
        **overrides,
    }
    settings = Settings.load(**values)
    migrate.upgrade(settings.database_url)
    return settings


@contextmanager
def api(settings: Settings) -> Iterator[tuple[Services, TestClient]]:
    """The API in this process, with no workers: runs made here wait for the worker processes."""
    services = Services.from_settings(settings)
    try:
        with TestClient(create_app(services)) as client:
            yield services, client
    finally:
        services.close()


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    env.update(
        FLOWSERVICE_HOME=str(settings.home),
        FLOWSERVICE_DATABASE_URL=settings.database_url,
        FLOWSERVICE_QUEUE=settings.queue,
        FLOWSERVICE_TEST_CONNECTORS="1",
        FLOWSERVICE_LEASE_SECONDS=str(settings.lease_seconds),
        FLOWSERVICE_POLL_SECONDS="0.1",
        FLOWSERVICE_PUBLIC_URL="http://testserver",
    )
    env.update(extra)
    return env


def start_worker(
    settings: Settings, name: str, *, hang_at: str = "", **extra: str
) -> subprocess.Popen[bytes]:
    log = open(settings.home / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "flowservice", "worker", "--concurrency", "2"],
        env=environment(settings, FLOWSERVICE_HANG_AT=hang_at, **extra),
        stdout=log,
        stderr=log,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.05)


def sql(services: Services, statement: str, **params: Any) -> list[Any]:
    with services.db.engine.connect() as conn:
        return list(conn.execute(text(statement), params))


def jobs_of(services: Services, run_id: str) -> list[Any]:
    return sql(
        services,
        "SELECT task_name, queue_name, args, status, scheduled_at FROM procrastinate_jobs "
        "WHERE args->>'run_id' = :run_id ORDER BY id",
        run_id=run_id,
    )


def landing_zone_flow(client: TestClient, tenant: Tenant) -> factories.Dataflow:
    return dlz_flow(
        client,
        tenant,
        "incoming",
        mappings=factories.IDENTITY_MAPPINGS,
        scheduleParams={"startTime": FUTURE, "frequency": "once"},
    )


def put_files(settings: Settings, tenant: Tenant, run: int, files: int, rows: int) -> list[int]:
    """The files of run `run` (keys run * 10_000 + …), last modified inside its window; their keys."""
    keys: list[int] = []
    for part in range(files):
        first = run * 10_000 + part * rows + 1
        path = zone(settings, tenant) / "incoming" / f"run-{run:02d}" / f"part-{part}.csv"
        write_csv(path, customers(first, rows, {}))
        os.utime(path, (T0 + run * 100 + 50, T0 + run * 100 + 50))
        keys += range(first, first + rows)
    return keys


def start_run(client: TestClient, tenant: Tenant, flow_id: str, run: int) -> str:
    start, end = T0 + run * 100, T0 + (run + 1) * 100
    params = {"startTime": FUTURE, "windowStartTime": str(start), "windowEndTime": str(end)}
    response = client.post(
        f"{BASE}/runs", json={"flowId": flow_id, "params": params}, headers=tenant.headers()
    )
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


def state_of(services: Services, run_id: str) -> str:
    [(status,)] = sql(services, "SELECT status FROM runs WHERE id = :id", id=run_id)
    return str(status)


# --- (a) SQLite refuses the distributed queue ------------------------------------------------------


@pytest.mark.parametrize("command", [["worker"], ["serve", "--no-workers"]])
def test_sqlite_refuses_the_postgres_queue(tmp_path: Path, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    env.update(FLOWSERVICE_HOME=str(tmp_path), FLOWSERVICE_QUEUE="postgres")  # the default SQLite URL
    done = subprocess.run(
        [sys.executable, "-m", "flowservice", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {QUEUE_NEEDS_POSTGRES}"
    assert "Traceback" not in done.stderr + done.stdout


# --- (b) dispatch: a run and its job commit together -----------------------------------------------


def test_a_run_and_its_job_commit_together(tmp_path: Path, pg_url: str) -> None:
    settings = settings_for(tmp_path, pg_url)
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        dataflow = landing_zone_flow(client, tenant)

        run_id = start_run(client, tenant, dataflow.flow_id, 0)  # POST /runs
        assert [tuple(job) for job in jobs_of(services, run_id)] == [
            (dispatch.TASK, dispatch.QUEUE, {"run_id": run_id}, "todo", None)
        ]

        # a run made in a transaction that rolls back leaves no job behind either
        who = factories.domain_tenant(services, tenant)
        made: list[str] = []
        with pytest.raises(RuntimeError, match="changed my mind"), services.db.transaction() as session:
            flow = repos.flows(session, who).get(dataflow.flow_id, lock=True)
            assert flow is not None
            made.append(
                runs.insert_run(session, who, flow, services=services, now=services.clock.now_ms())["id"]
            )
            assert len(jobs_of(services, made[0])) == 0  # not visible outside the transaction
            raise RuntimeError("changed my mind")
        assert sql(services, "SELECT count(*) FROM runs WHERE id = :id", id=made[0]) == [(0,)]
        assert jobs_of(services, made[0]) == []

        # the scheduler's bulk insert queues every run it makes, in its transaction
        scheduled = factories.create(
            client,
            tenant,
            "flows",
            factories.flow(
                dataflow.source_id,
                dataflow.target_id,
                name="every quarter hour",
                scheduleParams={"startTime": "1700000000", "frequency": "minute", "interval": 15},
            ),
        )
        created = scheduling.tick(services)
        assert [c.flow_id for c in created] == [scheduled["id"]]
        assert [job.status for job in jobs_of(services, created[0].run_id)] == ["todo"]
        # re-trigger: a new run, its job with it
        runs.finish_run(services, who, run_id, "failed")
        response = client.post(
            f"{BASE}/runs/{run_id}/action", params={"op": "re-trigger"}, headers=tenant.headers()
        )
        assert response.status_code == 200, response.text
        [again] = sql(services, "SELECT id FROM runs WHERE retry_of = :id", id=run_id)
        assert [job.args for job in jobs_of(services, again.id)] == [{"run_id": again.id}]


def test_a_retry_waits_in_the_queue_for_its_backoff(tmp_path: Path, pg_url: str) -> None:
    settings = settings_for(tmp_path, pg_url, retry_backoff_seconds=600)
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        source = factories.dummy_source(client, tenant, failOn="list", failKind="transient")
        dataflow = factories.dataflow(
            client, tenant, source=source, scheduleParams={"startTime": FUTURE, "frequency": "once"}
        )
        run_id = factories.start_run(client, tenant, dataflow.flow_id)

        claim = runs.claim(services, run_id, "test-worker", lease_ms=60_000)  # what the job's task does
        assert claim is not None
        execution.execute(services, claim)  # the source is unreachable: failed, and a retry is made

        assert state_of(services, run_id) == "failed"
        [(retry_id, ready_at)] = sql(
            services, "SELECT id, ready_at FROM runs WHERE retry_of = :id", id=run_id
        )
        assert ready_at > services.clock.now_ms() + 500_000  # ten minutes ahead, less the time taken
        [job] = jobs_of(services, retry_id)
        assert job.status == "todo"
        assert round(job.scheduled_at.timestamp() * 1000) == ready_at  # procrastinate holds it until then

        # a job for a finished run, or one held under a live lease, ends without doing anything
        assert runs.claim(services, run_id, "late-worker", lease_ms=60_000) is None
        # a job that comes early (clocks differ) is queued again for when the run is due
        assert runs.claim(services, retry_id, "early-worker", lease_ms=60_000) is None
        assert state_of(services, retry_id) == "scheduled"
        assert [round(j.scheduled_at.timestamp() * 1000) for j in jobs_of(services, retry_id)] == [
            ready_at
        ] * 2


def test_runs_whose_jobs_were_lost_are_queued_again(tmp_path: Path, pg_url: str) -> None:
    settings = settings_for(tmp_path, pg_url)
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        dataflow = landing_zone_flow(client, tenant)
        held, lost = (start_run(client, tenant, dataflow.flow_id, i) for i in range(2))
        # both jobs fetched by workers (todo → doing); one worker holds its run, the other died with it
        sql_update = "UPDATE procrastinate_jobs SET status = 'doing' WHERE args->>'run_id' IN (:a, :b)"
        with services.db.engine.begin() as conn:
            conn.execute(text(sql_update), {"a": held, "b": lost})
        assert runs.claim(services, held, "live-worker", lease_ms=600_000) is not None
        assert runs.claim(services, lost, "dead-worker", lease_ms=1) is not None
        wait_until(
            lambda: (
                services.clock.now_ms()
                > 2 + sql(services, "SELECT lease_expires_at FROM runs WHERE id = :id", id=lost)[0][0]
            ),
            "the lease to expire",
            5,
        )

        assert dispatch.requeue_lost(services) == 1
        assert [job.status for job in jobs_of(services, lost)] == ["doing", "todo"]
        assert [job.status for job in jobs_of(services, held)] == ["doing"]
        assert dispatch.requeue_lost(services) == 0  # idempotent: the queued job is there now

        claim = runs.claim(services, lost, "rescuer", lease_ms=60_000)  # the new job's worker
        assert claim is not None and claim.attempt == 2
        assert runs.claim(services, held, "duplicate", lease_ms=60_000) is None  # a live lease: no-op


def test_serve_executes_jobs_only_when_asked(tmp_path: Path, pg_url: str) -> None:
    """With the postgres queue `serve` runs no executors by default; `--workers N` makes it a
    procrastinate worker too, and a server shutdown stops that worker with the server."""
    settings = settings_for(tmp_path, pg_url)
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        dataflow = landing_zone_flow(client, tenant)
        keys = put_files(settings, tenant, 0, files=1, rows=50)
        run_id = start_run(client, tenant, dataflow.flow_id, 0)
        with serve(tmp_path, "--workers", "1", env=environment(settings)) as server:
            run = factories.wait_for_run(client, tenant, run_id, timeout=60)
            assert run["state"] == "success", run
            assert run["metrics"]["recordSummary"]["outputRecordCount"] == len(keys)
            [(owner,)] = sql(services, "SELECT lease_owner FROM runs WHERE id = :id", id=run_id)
            assert f":{server.process.pid}:" in owner
        # its worker stopped with it: uvicorn finished the lifespan (and re-raised SIGTERM to exit)
        assert "Application shutdown complete." in server.output()


# --- (c) SIGKILL at random points, two workers, every record exactly once ---------------------------

CHECKPOINTS = ["copy.done", "promotion.file_done", "promotion.before_commit", "promotion.committed"]
SEED = int(os.environ.get("FLOWSERVICE_CHAOS_SEED", "20261204"))
FINAL = ("success", "failed", "cancelled")


def registered_workers(services: Services) -> int:
    """procrastinate's newest worker id: a worker started later has registered once one exceeds it."""
    return int(sql(services, "SELECT coalesce(max(id), 0) FROM procrastinate_workers")[0][0])


def holds_a_run(services: Services, pid: int) -> bool:
    query = "SELECT 1 FROM runs WHERE status = 'inProgress' AND lease_owner LIKE :owner"
    return bool(sql(services, query, owner=f"%:{pid}:%"))


def all_ended(services: Services, run_ids: list[str]) -> bool:
    return all(state_of(services, run_id) in FINAL for run_id in run_ids)


@dataclass
class Chaos:
    """The chaos test's world: the API, the landing-zone flow, the runs made so far."""

    settings: Settings
    services: Services
    client: TestClient
    tenant: Tenant
    dataflow: factories.Dataflow
    rng: random.Random
    expected: dict[str, list[int]] = field(default_factory=dict)  # run id → its source keys
    pids: set[int] = field(default_factory=set)

    def round(self, where: str, size: int) -> tuple[subprocess.Popen[bytes], bool]:
        """Start the chaos worker, make `size` runs, stop the worker with SIGKILL at `where` (a
        checkpoint, or a random moment once it holds a run); the process, and whether it held a run."""
        services, timed = self.services, where.startswith("at ")
        before = registered_workers(services)
        name = f"chaos-{len(self.expected)}"
        worker = start_worker(self.settings, name, hang_at="" if timed else where)
        self.pids.add(worker.pid)
        wait_until(lambda: registered_workers(services) > before, f"{name} to register")
        wave = []
        for _ in range(size):  # more runs than the steady worker takes at once: both get some
            index = len(self.expected)
            keys = put_files(self.settings, self.tenant, index, files=2, rows=150)
            wave.append(start_run(self.client, self.tenant, self.dataflow.flow_id, index))
            self.expected[wave[-1]] = keys
        if timed:
            wait_until(
                lambda: holds_a_run(services, worker.pid) or all_ended(services, wave),
                f"{name} to take a run",
            )
            time.sleep(self.rng.uniform(0.0, 0.4))  # the random moment itself, not a synchronisation
        else:
            marker = self.settings.home / f"hang-{where}-{worker.pid}"
            wait_until(lambda: marker.exists() or all_ended(services, wave), f"{name} at {where}")
        held = holds_a_run(services, worker.pid)
        assert worker.poll() is None, (self.settings.home / f"{name}.log").read_text()
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        return worker, held


@pytest.mark.slow
def test_two_workers_one_killed_at_random_points(tmp_path: Path, pg_url: str) -> None:
    """Two workers (concurrency 2); one is SIGKILLed at a checkpoint (after the copy, mid-promotion,
    just before or just after the commit) or at a random moment, and restarted, wave after wave."""
    rng = random.Random(SEED)
    settings = settings_for(tmp_path, pg_url)
    plan = CHECKPOINTS + ["at a random time"] * 2
    rng.shuffle(plan)
    waves = [4, 4, 3, 3, 3, 3]  # 20 runs
    rng.shuffle(waves)
    killed: list[tuple[str, bool]] = []  # where, and whether the worker held a run then

    with (
        api(settings) as (services, client),
        serve(
            tmp_path, "--no-workers", env=environment(settings)
        ) as server,  # scheduler: re-queues lost runs
    ):
        tenant = factories.new_tenant(services, client)
        chaos = Chaos(settings, services, client, tenant, landing_zone_flow(client, tenant), rng)
        steady = start_worker(settings, "steady")
        chaos.pids.add(steady.pid)
        final: subprocess.Popen[bytes] | None = None
        try:
            for where, size in zip(plan, waves, strict=True):
                _, held = chaos.round(where, size)
                killed.append((where, held))
            # the last restart runs clean; the scheduler queues again what the killed workers held
            final = start_worker(settings, "chaos-final")
            chaos.pids.add(final.pid)
            wait_until(lambda: all_ended(services, list(chaos.expected)), "every run to end", 120)
            assert steady.poll() is None
        finally:
            stop(steady)
            if final is not None:
                stop(final)
        assert server.process.poll() is None

        print(f"seed {SEED}: killed {killed}")
        assert sum(held for _, held in killed) >= 4, killed  # most kills caught runs in flight
        owners = sql(services, "SELECT lease_owner FROM runs WHERE id = ANY(:ids)", ids=list(chaos.expected))
        assert {
            int(owner.split(":")[1]) for (owner,) in owners
        } <= chaos.pids  # `serve --no-workers` ran none
        ingested: list[int] = []
        for run_id, keys in chaos.expected.items():
            run = client.get(f"{BASE}/runs/{run_id}", headers=tenant.headers()).json()["items"][0]
            assert run["state"] == "success", run
            assert run["metrics"]["recordSummary"] == {
                "inputRecordCount": len(keys),
                "outputRecordCount": len(keys),
                "failedRecordCount": 0,
            }
            batch_id = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
            ingested += dataset_rows(client, tenant, batch_id).column("id").to_pylist()
        assert sorted(ingested) == sorted(k for keys in chaos.expected.values() for k in keys)  # each once
        batches = export_json(
            client, tenant, f"/data/foundation/catalog/batches?dataSet={chaos.dataflow.dataset_id}"
        )
        assert len(batches) == len(chaos.expected)  # one batch per run, committed once


# --- (d) SIGTERM: finish in time, or give the run back ----------------------------------------------


@pytest.mark.parametrize("queue", ["embedded", "postgres"])
@pytest.mark.parametrize("outcome", ["finished", "released"])
def test_sigterm_finishes_or_releases_runs_in_flight(
    tmp_path: Path, pg_url: str, queue: str, outcome: str
) -> None:
    # a long lease: only the release (not an expiry) can let the second worker in within the test
    settings = settings_for(tmp_path, pg_url, queue=queue, lease_seconds=60)
    with api(settings) as (services, client):
        tenant = factories.new_tenant(services, client)
        dataflow = landing_zone_flow(client, tenant)
        keys = put_files(settings, tenant, 0, files=2, rows=100)
        run_id = start_run(client, tenant, dataflow.flow_id, 0)

        timeout = 30 if outcome == "finished" else 3  # finished: ample; released: soon reached
        first = start_worker(
            settings, "first", hang_at="copy.done", FLOWSERVICE_SHUTDOWN_TIMEOUT_SECONDS=str(timeout)
        )
        try:
            wait_until(
                lambda: (settings.home / f"hang-copy.done-{first.pid}").exists(), "the run to be in flight"
            )
            first.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            if outcome == "finished":  # the run goes on (the checkpoint lets go) and ends within the timeout
                (settings.home / f"release-copy.done-{first.pid}").touch()
            assert first.wait(timeout=timeout + 30) == 0, (settings.home / "first.log").read_text()
            took = time.monotonic() - sent
        finally:
            stop(first)
        log = (settings.home / "first.log").read_text()
        assert "stopping: no new runs" in log

        if outcome == "finished":  # the worker waited for the run, no longer: it exited once it ended
            assert took < timeout and "released run" not in log, log
            run = factories.wait_for_run(client, tenant, run_id, timeout=1)
            [(owner,)] = sql(services, "SELECT lease_owner FROM runs WHERE id = :id", id=run_id)
            assert f":{first.pid}:" in owner
        else:
            assert timeout <= took < timeout + 10, log
            assert f"released run {run_id}" in log
            [(status, expires)] = sql(
                services, "SELECT status, lease_expires_at FROM runs WHERE id = :id", id=run_id
            )
            assert (status, expires) == ("inProgress", 0)
            if queue == "postgres":
                assert "todo" in [job.status for job in jobs_of(services, run_id)]
            second = start_worker(settings, "second")
            try:
                run = factories.wait_for_run(client, tenant, run_id, timeout=30)
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=30) == 0

        assert run["state"] == "success", run
        assert run["metrics"]["recordSummary"]["outputRecordCount"] == len(keys), json.dumps(run)
        batch_id = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
        assert sorted(dataset_rows(client, tenant, batch_id).column("id").to_pylist()) == keys
