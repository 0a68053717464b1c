"""Scale-out benchmark: runs dispatched through procrastinate to 1 and 2 `flowservice worker` processes.

    .venv/bin/python -m pip install -e '.[bench]'
    .venv/bin/python bench/scale.py [--runs 24] [--rows 400000] [--concurrency 2] [--empty 100] [--repeat 3]

Everything runs on one fresh PostgreSQL database with FLOWSERVICE_QUEUE=postgres; the landing zone and
the lake are a local folder that every process shares (on several machines: a shared filesystem or S3).

1. Throughput. `--runs` runs, each of its own flow over its own CSV of `--rows` rows in the landing zone
   (bench/ingest.py's 10-column orders: ~53 MB for 400,000 rows), all created at once, executed by 1 and
   then by 2 `flowservice worker --concurrency N` processes, and by 2 processes of N/2 (the same runs at
   once as one process of N): wall time from the first run's creation to the last run's completion, as
   runs per minute and MB of CSV per second.
2. Dispatch latency. Empty runs (nothing in their window) made one at a time on an idle system: creation
   to claim (the run's `startedAtUTC` minus its `createdAt`), through procrastinate (a worker process,
   woken by LISTEN/NOTIFY when the job's insert commits) and through the embedded queue in-process (a
   worker thread woken by the run's creation).
3. Cost of a run without data. `--empty` empty runs created at once; wall time over runs, through
   procrastinate (1 worker process), the embedded queue in a worker process (which finds runs by polling
   the store), and the embedded queue in-process. The differences are what dispatch costs per run.

Every measurement is repeated `--repeat` times, round-robin, so that each setup meets the same moments of
a shared machine; the tables show medians. Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parents[1]))

from common import FlowParts, bench_database, drop_pg_database, flow_parts
from ingest import SCHEMA, orders_csv

from flowservice import catalog
from flowservice.schemas.resources import FlowCreate, SourceConnectionCreate
from flowservice.services import resources, runs
from flowservice.services.context import Services
from flowservice.services.flows import KIND as FLOWS
from flowservice.services.source_connections import KIND as SOURCES
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.workers.inprocess import InProcessQueue

DATA = Path(__file__).parent / ".data"
PG_BENCH = "flowservice_bench_scale"
ORG = "BENCHSCALE00000000000000@AdobeOrg"
FINAL = ("success", "failed", "cancelled")


@dataclass
class World:
    settings: Settings
    services: Services  # queue=postgres: every run made through it gets its job
    embedded: Services  # the same database with the embedded queue: runs without jobs
    parts: FlowParts

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.services.db.engine.connect() as conn:
            return list(conn.execute(text(statement), params))


def flow_over(world: World, folder: str) -> str:
    """A flow scheduled once whose source is a landing-zone folder of its own; the flow's id."""
    caller = world.parts.caller
    source = resources.create(
        world.services,
        caller,
        SOURCES,
        SourceConnectionCreate.model_validate(
            {
                "name": folder,
                "data": {"format": "delimited"},
                "params": {"path": folder, "type": "folder"},
                "connectionSpec": {"id": catalog.DATA_LANDING_ZONE},
            }
        ),
    )
    body = FlowCreate.model_validate(
        {
            "name": folder,
            "flowSpec": {"id": catalog.CLOUD_STORAGE_TO_AEP},
            "sourceConnectionIds": [source.id],
            "targetConnectionIds": [world.parts.target_id],
            "scheduleParams": {"startTime": "4000000000", "frequency": "once"},  # never fired by a scheduler
        }
    )
    return resources.create(world.services, caller, FLOWS, body).id


def landing_zone(world: World) -> Path:
    return world.settings.landing_zone / ORG / "prod"


@contextmanager
def workers(world: World, count: int, concurrency: int, queue: str = "postgres") -> Iterator[None]:
    """`count` worker processes, started and registered before the block, stopped (SIGTERM) after it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    env.update(
        FLOWSERVICE_HOME=str(world.settings.home),
        FLOWSERVICE_DATABASE_URL=world.settings.database_url,
        FLOWSERVICE_QUEUE=queue,
    )
    before = world.sql("SELECT coalesce(max(id), 0) FROM procrastinate_workers")[0][0]
    logs = [world.settings.home / f"worker-{queue}-{count}-{i}.log" for i in range(count)]
    processes = []
    for log in logs:
        with open(log, "wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "flowservice", "worker", "--concurrency", str(concurrency)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        if queue == "postgres":  # ready once procrastinate has registered them
            query = "SELECT count(*) FROM procrastinate_workers WHERE id > :n"
            wait(lambda: world.sql(query, n=before)[0][0] >= count, "the workers to register")
        else:  # the embedded worker claims as soon as it has printed its banner
            wait(lambda: all(b"executors" in log.read_bytes() for log in logs), "the workers to start")
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process, log in zip(processes, logs, strict=True):
            if process.wait(timeout=120) != 0:
                raise SystemExit(f"a worker failed:\n{log.read_text()[-3000:]}")


def wait(condition: Callable[[], bool], what: str, timeout: float = 600.0, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(every)


def finished(world: World, run_ids: list[str]) -> list[Any]:
    """The runs' status, timestamps and output once every one has ended (waiting for that)."""
    query = "SELECT count(*) FROM runs WHERE id = ANY(:ids) AND status IN ('scheduled', 'inProgress')"
    wait(lambda: world.sql(query, ids=run_ids)[0][0] == 0, f"{len(run_ids)} runs to end")
    return world.sql(
        "SELECT status, created_at, started_at, completed_at, output_record_count FROM runs WHERE id = ANY(:ids)",
        ids=run_ids,
    )


def throughput(world: World, flows: list[str], processes: int, concurrency: int, rows: int) -> float:
    """Seconds from the first run's creation to the last one's completion."""
    with workers(world, processes, concurrency):
        started = time.time()
        made = [runs.create_run(world.services, world.parts.caller.tenant, f)["id"] for f in flows]
        done = finished(world, made)
    assert all(r.status == "success" and r.output_record_count == rows for r in done), done
    return float(max(r.completed_at for r in done) / 1000 - started)


def latency(world: World, flow_id: str, count: int, queue: str) -> list[float]:
    """Creation to claim of `count` empty runs made one after the other, in milliseconds."""
    services = world.services if queue == "postgres" else world.embedded
    tenant = world.parts.caller.tenant
    found = []
    for _ in range(count):
        run_id = runs.create_run(services, tenant, flow_id)["id"]
        [run] = finished(world, [run_id])
        assert run.status == "success", run
        found.append(float(run.started_at - run.created_at))
    return found


def empty_runs(world: World, flow_id: str, count: int, services: Services) -> float:
    """Seconds per run for `count` empty runs created at once."""
    started = time.time()
    made = [runs.create_run(services, world.parts.caller.tenant, flow_id)["id"] for _ in range(count)]
    done = finished(world, made)
    assert all(r.status == "success" for r in done), done
    return float(max(r.completed_at for r in done) / 1000 - started) / count


@contextmanager
def in_process(world: World, concurrency: int) -> Iterator[None]:
    queue = InProcessQueue(world.embedded, concurrency)
    queue.start()
    try:
        yield
    finally:
        queue.stop(timeout=60)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=24, help="runs with data, per worker count")
    parser.add_argument("--rows", type=int, default=400_000, help="CSV rows per run")
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once per worker process")
    parser.add_argument("--empty", type=int, default=100, help="runs without data, per dispatch path")
    parser.add_argument("--latency", type=int, default=40, help="runs made one at a time, per dispatch path")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median counts")
    args = parser.parse_args()

    csv_path = orders_csv(args.rows)
    size_mb = csv_path.stat().st_size / 1e6
    home = DATA / "scale-home"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings.load(home=home, database_url=bench_database("postgresql", PG_BENCH), queue="postgres")
    migrate.upgrade(settings.database_url)
    services = Services.from_settings(settings)
    embedded = Services.from_settings(settings.model_copy(update={"queue": "embedded"}))
    world = World(settings, services, embedded, flow_parts(services, ORG, schema=SCHEMA))
    zone = landing_zone(world)

    configs = [(1, args.concurrency), (2, args.concurrency)]
    if args.concurrency >= 2:
        configs.append((2, args.concurrency // 2))
    print(f"{args.runs} runs x {csv_path.name} ({size_mb:,.1f} MB) per worker setup and round", flush=True)
    flows: dict[tuple[int, int, int], list[str]] = {}
    for round_ in range(args.repeat):
        for processes, concurrency in configs:  # each setup and round gets runs of flows of its own
            key = (processes, concurrency, round_)
            flows[key] = []
            for i in range(args.runs):
                folder = f"r{round_}-w{processes}x{concurrency}-run-{i:03d}"
                (zone / folder).mkdir(parents=True)
                os.link(csv_path, zone / folder / csv_path.name)  # the file arrives (not timed)
                flows[key].append(flow_over(world, folder))
    (zone / "empty").mkdir(parents=True)
    empty_flow = flow_over(world, "empty")

    # round-robin, so that every setup meets the same moments of a shared machine; medians count
    seconds: dict[tuple[int, int], list[float]] = {config: [] for config in configs}
    for round_ in range(args.repeat):
        for processes, concurrency in configs:
            took = throughput(world, flows[processes, concurrency, round_], processes, concurrency, args.rows)
            seconds[processes, concurrency].append(took)
            print(
                f"  {processes} worker(s) x {concurrency}: {took:.2f} s, {args.runs / took * 60:.0f} runs/min, "
                f"{args.runs * size_mb / took:.0f} MB/s",
                flush=True,
            )

    queued: list[float] = []
    woken: list[float] = []
    per_run: dict[str, list[float]] = {}
    paths: list[tuple[str, Callable[[], Any], Services]] = [
        ("procrastinate, 1 worker process x 1", lambda: workers(world, 1, 1), services),
        (
            f"procrastinate, 1 worker process x {args.concurrency}",
            lambda: workers(world, 1, args.concurrency),
            services,
        ),
        (
            f"embedded, 1 worker process x {args.concurrency} (polling)",
            lambda: workers(world, 1, args.concurrency, queue="embedded"),
            embedded,
        ),
        (f"embedded, in-process x {args.concurrency}", lambda: in_process(world, args.concurrency), embedded),
    ]
    for _ in range(args.repeat):
        with workers(world, 1, 1):
            latency(world, empty_flow, 3, "postgres")  # warm up: connections, imports
            queued += latency(world, empty_flow, args.latency, "postgres")
        with in_process(world, 1):
            latency(world, empty_flow, 3, "embedded")
            woken += latency(world, empty_flow, args.latency, "embedded")
        for name, setup, through in paths:
            with setup():
                per_run.setdefault(name, []).append(empty_runs(world, empty_flow, args.empty, through))
    services.close()
    embedded.close()
    shutil.rmtree(home, ignore_errors=True)  # the lake holds every run's Parquet: gigabytes
    drop_pg_database(PG_BENCH)

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(
        f"input: {args.runs} runs per worker setup, each a {size_mb:,.1f} MB CSV of {args.rows:,} rows "
        f"x 10 columns; median of {args.repeat} rounds (range)\n"
    )
    print("| worker processes x concurrency | runs | seconds | runs/min | MB/s | vs 1 process |")
    print("|---|---|---|---|---|---|")
    first = statistics.median(seconds[configs[0]])
    for (processes, concurrency), found in seconds.items():
        took = statistics.median(found)
        print(
            f"| {processes} x {concurrency} | {args.runs} | {took:.2f} ({min(found):.2f}–{max(found):.2f}) | "
            f"{args.runs / took * 60:.0f} | {args.runs * size_mb / took:.0f} | {first / took:.2f}x |"
        )
    print("\n| dispatch | runs | creation → claim p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, values in (("procrastinate (worker process)", queued), ("embedded, in-process", woken)):
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | "
            f"{max(values):.1f} |"
        )
    print(f"\n| empty runs ({args.empty} at once) | ms per run (range) |")
    print("|---|---|")
    for name, found in per_run.items():
        print(
            f"| {name} | {statistics.median(found) * 1000:.1f} ({min(found) * 1000:.0f}–{max(found) * 1000:.0f}) |"
        )


if __name__ == "__main__":
    main()
