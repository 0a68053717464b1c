"""Ingestion benchmark: one CSV file into Parquet, by flowservice and by the tools people compare it with.

    .venv/bin/python -m pip install -e '.[bench]'
    .venv/bin/python bench/ingest.py [--rows 2000000] [--only ours,duckdb,polars,dlt-csv,dlt-arrow]

Generates a CSV of `--rows` rows × 10 mixed columns (integers, decimals, text, e-mail, ISO date-times,
booleans), then converts the same file with each contender, each in a child process of its own so
its peak RSS is its own (`os.wait4`):

- ours: a complete flowservice run in-process: SQLite store, landing zone, schema, dataset,
  mapping set, flow; Copy Activity, mapping, vectorized validation, Parquet commit and metrics
- duckdb: `COPY (SELECT * FROM read_csv(...)) TO 'x.parquet'`
- polars: `scan_csv().sink_parquet()`
- dlt-csv: dlt's filesystem source with its default CSV reader, to its filesystem destination
- dlt-arrow: dlt with pyarrow batches from pyarrow's CSV reader, to the same destination

Throughput is the CSV's bytes (and rows) over wall time. The ratio compares ours with the fastest
baseline from the same invocation. Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

DATA = Path(__file__).parent / ".data"
CONTENDERS = ("ours", "duckdb", "polars", "dlt-csv", "dlt-arrow")

SCHEMA = {
    "title": "Bench orders",
    "type": "object",
    "properties": {
        "order_id": {"type": "integer"},
        "customer": {"type": "string", "maxLength": 64},
        "email": {"type": "string", "format": "email"},
        "amount": {"type": "number", "minimum": 0},
        "quantity": {"type": "integer", "minimum": 0},
        "ordered_at": {"type": "string", "format": "date-time"},
        "paid": {"type": "boolean"},
        "country": {"type": "string", "enum": ["DE", "FR", "US", "JP", "BR", "IN", "GB", "ES"]},
        "score": {"type": "number"},
        "note": {"type": "string"},
    },
    "required": ["order_id", "email"],
}


def generate(path: Path, rows: int) -> None:
    """A deterministic CSV written with pyarrow (fast), chunk by chunk (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(7)
    countries = np.array(SCHEMA["properties"]["country"]["enum"])  # type: ignore[index]
    chunk = 500_000
    with pacsv.CSVWriter(path, _columns_schema(pa)) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = np.arange(start + 1, start + n + 1)
            seconds = 1_700_000_000 + rng.integers(0, 30_000_000, n)
            table = pa.table(
                {
                    "order_id": ids,
                    "customer": pa.array([f"customer {i % 100_000}" for i in ids]),
                    "email": pa.array([f"c{i}@example.com" for i in ids]),
                    "amount": np.round(rng.uniform(0, 1000, n), 2),
                    "quantity": rng.integers(0, 50, n),
                    "ordered_at": pa.array(seconds.astype("datetime64[s]")).cast(pa.string()),
                    "paid": rng.integers(0, 2, n).astype(bool),
                    "country": countries[rng.integers(0, len(countries), n)],
                    "score": rng.normal(50, 15, n),
                    "note": pa.array([f"note {i % 997} for order {i}" for i in ids]),
                },
                schema=_columns_schema(pa),
            )
            writer.write_table(table)


def orders_csv(rows: int) -> Path:
    """The generated file of `rows` rows under bench/.data, made on first use and kept for later runs."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"orders-{rows}.csv"
    if not path.exists():
        print(f"generating {rows:,} rows …", flush=True)
        generate(path, rows)
    return path


def _columns_schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer", pa.string()),
            ("email", pa.string()),
            ("amount", pa.float64()),
            ("quantity", pa.int64()),
            ("ordered_at", pa.string()),
            ("paid", pa.bool_()),
            ("country", pa.string()),
            ("score", pa.float64()),
            ("note", pa.string()),
        ]
    )


# --- contenders: each runs in a child process (`--child NAME`) and prints {"rows": N} -------------


def run_ours(csv_path: Path, out: Path) -> int:
    from common import flow_parts

    from flowservice import catalog as specs
    from flowservice.schemas.resources import FlowCreate
    from flowservice.services import execution, resources, runs
    from flowservice.services.context import Services
    from flowservice.services.flows import KIND as FLOWS
    from flowservice.settings import Settings
    from flowservice.store import migrate
    from flowservice.workers import ready

    settings = Settings.load(home=out / "home", lake_url=str(out / "lake"))
    migrate.upgrade(settings.database_url)
    services = Services.from_settings(settings)
    parts = flow_parts(
        services,
        "BENCH0000000000000000000@AdobeOrg",
        source={
            "name": "bench",
            "data": {"format": "delimited"},
            "params": {"path": "bench", "type": "folder"},
            "connectionSpec": {"id": specs.DATA_LANDING_ZONE},
        },
        schema=SCHEMA,
    )
    tenant, caller = parts.caller.tenant, parts.caller
    zone = settings.landing_zone / tenant.org_id / "prod" / "bench"
    zone.mkdir(parents=True)
    os.link(csv_path, zone / csv_path.name)  # the file arrives in the landing zone (not timed work)
    flow = resources.create(
        services,
        caller,
        FLOWS,
        FlowCreate.model_validate(
            {
                "name": "bench",
                "flowSpec": {"id": specs.CLOUD_STORAGE_TO_AEP},
                "sourceConnectionIds": [parts.source_id],
                "targetConnectionIds": [parts.target_id],
                "scheduleParams": {"startTime": 1, "frequency": "once"},
            }
        ),
    )
    ready.prepare_process()  # what a worker process does when it starts (workers/ready.py)
    started = time.perf_counter()  # the run itself: from its creation to its last recorded metric
    run = runs.create_run(services, tenant, flow.id, window=(0, 2**62))
    execution.run_next(services, "bench")
    TIMINGS["seconds"] = time.perf_counter() - started
    done = runs.get_run(services, tenant, run["id"])
    records = done["metrics"]["recordSummary"]
    if done["state"] != "success" or records["failedRecordCount"]:
        raise SystemExit(f"the run did not ingest cleanly: {json.dumps(done['metrics'])}")
    return int(records["outputRecordCount"])


def run_duckdb(csv_path: Path, out: Path) -> int:
    import duckdb

    target = out / "out.parquet"
    started = time.perf_counter()
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv_path}')) TO '{target}' (FORMAT parquet)")
    TIMINGS["seconds"] = time.perf_counter() - started
    counted = duckdb.sql(f"SELECT count(*) FROM '{target}'")
    assert counted is not None
    return int(counted.fetchall()[0][0])


def run_polars(csv_path: Path, out: Path) -> int:
    import polars as pl

    target = out / "out.parquet"
    started = time.perf_counter()
    pl.scan_csv(csv_path).sink_parquet(target)
    TIMINGS["seconds"] = time.perf_counter() - started
    return int(pl.scan_parquet(target).select(pl.len()).collect().item())


def _dlt_pipeline(out: Path) -> Any:
    import dlt

    return dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.filesystem(bucket_url=(out / "lake").as_uri()),
        dataset_name="bench",
        pipelines_dir=str(out / "pipelines"),
    )


def run_dlt_csv(csv_path: Path, out: Path) -> int:
    from dlt.sources.filesystem import filesystem, read_csv

    files = filesystem(bucket_url=csv_path.parent.as_uri(), file_glob=csv_path.name)
    pipeline = _dlt_pipeline(out)
    started = time.perf_counter()
    info = pipeline.run((files | read_csv()).with_name("orders"), loader_file_format="parquet")
    TIMINGS["seconds"] = time.perf_counter() - started
    return _dlt_rows(info, out)


def run_dlt_arrow(csv_path: Path, out: Path) -> int:
    import dlt
    import pyarrow.csv as pacsv

    @dlt.resource(name="orders")
    def batches() -> Any:
        with pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=8 << 20)) as reader:
            yield from reader

    pipeline = _dlt_pipeline(out)
    started = time.perf_counter()
    info = pipeline.run(batches(), loader_file_format="parquet")
    TIMINGS["seconds"] = time.perf_counter() - started
    return _dlt_rows(info, out)


def _dlt_rows(info: Any, out: Path) -> int:
    import pyarrow.parquet as pq

    del info
    parts = [p for p in (out / "lake").rglob("*.parquet") if "orders" in p.as_posix()]
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


RUNNERS = {
    "ours": run_ours,
    "duckdb": run_duckdb,
    "polars": run_polars,
    "dlt-csv": run_dlt_csv,
    "dlt-arrow": run_dlt_arrow,
}


TIMINGS: dict[str, float] = {}


def child(name: str, csv_path: Path, out: Path) -> None:
    started = time.perf_counter()
    rows = RUNNERS[name](csv_path, out)
    seconds = TIMINGS.get("seconds", time.perf_counter() - started)
    print(json.dumps({"rows": rows, "seconds": seconds}))


def measure(name: str, csv_path: Path) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=DATA))
    try:
        with open(out / "stdout", "w+") as stdout, open(out / "stderr", "w+") as stderr:
            process = subprocess.Popen(
                [sys.executable, __file__, "--child", name, "--csv", str(csv_path), "--out", str(out)],
                stdout=stdout,
                stderr=stderr,
            )
            _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
            process.returncode = os.waitstatus_to_exitcode(status)
            stdout.seek(0)
            stderr.seek(0)
            if process.returncode != 0:
                raise SystemExit(f"{name} failed:\n{stderr.read()[-3000:]}")
            result: dict[str, Any] = json.loads(stdout.read().strip().splitlines()[-1])
        result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
        return result
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--only", default=",".join(CONTENDERS))
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the median counts")
    parser.add_argument("--child")
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.csv, args.out)
        return
    csv_path = orders_csv(args.rows)
    size_mb = csv_path.stat().st_size / 1e6
    print(f"{csv_path.name}: {size_mb:,.0f} MB, {args.rows:,} rows", flush=True)
    names = args.only.split(",")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(args.repeat):  # round-robin, so every contender meets the same moments of the machine
        for name in names:
            if name == "dlt-csv" and round_ > 0:
                continue  # ~45 s a go: once is enough to place it
            r = measure(name, csv_path)
            assert r["rows"] == args.rows, f"{name} wrote {r['rows']} rows, not {args.rows}"
            runs[name].append(r)
            print(
                f"  {name:10s} {r['seconds']:7.2f} s  {size_mb / r['seconds']:7.1f} MB/s  peak RSS {r['peak_rss_mb']:,.0f} MB",
                flush=True,
            )
    results = {
        name: {
            "seconds": statistics.median(r["seconds"] for r in found),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in found),
        }
        for name, found in runs.items()
    }
    baselines = {k: v for k, v in results.items() if k != "ours"}
    fastest = min(baselines, key=lambda k: baselines[k]["seconds"]) if baselines else None
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: {size_mb:,.0f} MB CSV, {args.rows:,} rows x 10 columns; median of {args.repeat} runs\n")
    print("| tool | seconds | MB/s | rows/s | peak RSS MB | our throughput ÷ its throughput |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = r["seconds"] / results["ours"]["seconds"] if "ours" in results else float("nan")
        print(
            f"| {name} | {r['seconds']:.2f} | {size_mb / r['seconds']:.0f} | {args.rows / r['seconds']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {ratio:.2f}x |"
        )
    if fastest and "ours" in results:
        print(
            f"\nours / fastest baseline ({fastest}): {baselines[fastest]['seconds'] / results['ours']['seconds']:.2f}x"
        )


if __name__ == "__main__":
    main()
