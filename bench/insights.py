"""Insights benchmark: the metrics API over a million runs, against the same numbers from the runs table.

    .venv/bin/python bench/insights.py [--backend sqlite|postgres|both] [--runs N] [--datasets N] [--reuse]

Loads N finished runs (default 1,000,000) spread over 30 days across `--datasets` flows, one
dataset each (default 50), through the store's bulk path (`services.runs.import_runs`, which adds
each batch of runs to the rollups in the same transaction), runs `ANALYZE` as an operator would
after a bulk load, then times, alternating so every query sees the same moments of the machine:

- Insights `POST …/insights/metrics` over HTTP (the app in-process, gateway and token check included):
  30 days by day, every dataset grouped and all aggregated; 7 days by hour, likewise; the
  cumulative `size` by day, grouped;
- the same questions as one service call (`services.insights.answer`: parsing, SQL, assembly);
- the baseline: the equivalent aggregate over the runs table, runs joined to their flows and
  target connections for the dataset, `GROUP BY` dataset (or not) and day (or hour), as a store
  without rollups would have to answer.

Prints a Markdown table to paste into BENCHMARKS.md (medians, p95, baseline / Insights).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, and_, create_engine, func, literal_column, select, text

sys.path.insert(0, str(Path(__file__).parents[1]))

from common import bench_database
from tests.factories import CUSTOMERS_SCHEMA, XED

from flowservice import catalog
from flowservice.api.app import create_app
from flowservice.domain.runs import COPY, PROMOTION, Activity, RunError, Summary
from flowservice.domain.tenancy import Caller
from flowservice.domain.tenancy import Tenant as DomainTenant
from flowservice.schemas.insights import MetricsRequest
from flowservice.schemas.resources import FlowCreate, SourceConnectionCreate, TargetConnectionCreate
from flowservice.services import catalog as catalog_service
from flowservice.services import identity, insights, resources
from flowservice.services import runs as run_service
from flowservice.services.context import Services
from flowservice.services.flows import KIND as FLOWS
from flowservice.services.runs import RunState
from flowservice.services.source_connections import KIND as SOURCES
from flowservice.services.target_connections import KIND as TARGETS
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.store.tables import Flow, Run, TargetConnection

DATA = Path(__file__).parent / ".data"
PG_BENCH = "flowservice_bench_insights"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
START_MS = 1_790_121_600_000  # 2026-09-23T00:00:00Z, a midnight: the 30 loaded days start here
METRICS_URL = "/data/infrastructure/observability/insights/metrics"
CHUNK = 50_000


@dataclass(frozen=True)
class Loaded:
    org_id: str
    client_id: str
    client_secret: str
    sandbox_id: str
    flow_ids: list[str]
    dataset_ids: list[str]


def finished_run(
    tenant: DomainTenant, flow: dict[str, Any], completed: int, rng: random.Random
) -> dict[str, Any]:
    """A finished run as the engine leaves one: ~8 % rejected, ~2 % failed before promotion, some
    with failed records; counts that add up, a batch reference when promotion ran."""
    total = rng.randint(100, 20_000)
    copy_failed = rng.random() < 0.02
    rejected = not copy_failed and rng.random() < 0.08
    bad = total if rejected else (rng.randint(1, 50) if rng.random() < 0.2 else 0)
    started = completed - rng.randint(2_000, 60_000)
    doc = run_service.new_run_document(tenant, flow, client_id="bench", now=started - 500)
    size = total * 80
    activities = [
        Activity(
            uuid.uuid4().hex,
            COPY,
            "failed" if copy_failed else "success",
            started,
            completed if copy_failed else started + 1_000,
            summary=Summary(size, size, total, total, None, 1, 1),
        )
    ]
    if not copy_failed:
        good = 0 if rejected else total - bad
        activities.append(
            Activity(
                uuid.uuid4().hex,
                PROMOTION,
                "failed" if rejected else "success",
                started + 1_000,
                completed,
                summary=Summary(size, good * 30, total, good, bad, 1, 1),
                target_info=[
                    {
                        "id": flow["targetConnectionIds"][0],
                        "type": "TargetConnection",
                        "reference": {"type": "Batch", "ids": [uuid.uuid4().hex]},
                    }
                ],
            )
        )
    failed = copy_failed or rejected
    errors = [RunError("CONNECTOR-2001-500", "Error in processing the copied data.")] if failed else []
    return RunState("failed" if failed else "success", started, completed, activities, errors).apply(doc)


def load(services: Services, runs: int, datasets: int) -> Loaded:
    credential = identity.create_credentials(services.db, "BENCHINSIGHTS00000000000@AdobeOrg")
    [sandbox] = identity.list_sandboxes(services.db, credential.org_id)
    caller = Caller(DomainTenant(credential.org_id, "prod", sandbox.id), credential.client_id)
    tenant = caller.tenant
    started = time.perf_counter()
    source = resources.create(
        services,
        caller,
        SOURCES,
        SourceConnectionCreate.model_validate(
            {
                "name": "bench",
                "data": {"format": "delimited"},
                "params": {"path": "bench", "type": "folder"},
                "connectionSpec": {"id": catalog.DATA_LANDING_ZONE},
            }
        ),
    )
    schema = catalog_service.create_schema(services, caller, CUSTOMERS_SCHEMA)
    flows: list[dict[str, Any]] = []
    dataset_ids = []
    for i in range(datasets):
        dataset_id = catalog_service.create_dataset(
            services, caller, {"name": f"bench {i}", "schemaRef": {"id": schema["$id"], "contentType": XED}}
        )
        target = resources.create(
            services,
            caller,
            TARGETS,
            TargetConnectionCreate.model_validate(
                {
                    "name": f"bench {i}",
                    "data": {"format": "parquet_xdm"},
                    "params": {"dataSetId": dataset_id},
                    "connectionSpec": {"id": catalog.DATA_LAKE},
                }
            ),
        )
        flow = resources.create(
            services,
            caller,
            FLOWS,
            FlowCreate.model_validate(
                {
                    "name": f"flow {i:03d}",
                    "flowSpec": {"id": catalog.CLOUD_STORAGE_TO_AEP},
                    "sourceConnectionIds": [source.id],
                    "targetConnectionIds": [target.id],
                    "scheduleParams": {"startTime": 1_700_000_000, "frequency": "hour", "interval": 1},
                }
            ),
        )
        flows.append({"id": flow.id, "targetConnectionIds": [target.id]})
        dataset_ids.append(dataset_id)
    print(f"  {datasets} datasets and flows through the services in {time.perf_counter() - started:.1f}s")
    rng = random.Random(7)
    started = time.perf_counter()
    for offset in range(0, runs, CHUNK):
        docs = [
            finished_run(tenant, rng.choice(flows), START_MS + rng.randrange(30 * DAY_MS), rng)
            for _ in range(min(CHUNK, runs - offset))
        ]
        run_service.import_runs(services, tenant, docs, sync_flows=False)
        done = offset + len(docs)
        print(f"  {done:>9,} runs ({done / (time.perf_counter() - started):,.0f}/s)", end="\r", flush=True)
    run_service.sync_last_runs(services, tenant, [f["id"] for f in flows])
    print(f"\n  {runs:,} runs through the bulk path in {time.perf_counter() - started:.1f}s", flush=True)
    return Loaded(
        credential.org_id,
        credential.client_id,
        credential.client_secret,
        sandbox.id,
        [f["id"] for f in flows],
        dataset_ids,
    )


def analyze(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE"))
    engine.dispose()


def prepare(backend: str, runs: int, datasets: int, reuse: bool) -> tuple[Settings, Loaded]:
    print(f"[{backend}] preparing {runs:,} runs over {datasets} datasets", flush=True)
    DATA.mkdir(exist_ok=True)
    home = DATA / f"home-insights-{backend}"
    home.mkdir(exist_ok=True)
    settings = Settings.load(home=home, database_url=bench_database(backend, PG_BENCH, reuse=reuse))
    state_file = home / "bench-state.json"
    if reuse and state_file.exists():
        return settings, Loaded(**json.loads(state_file.read_text()))
    migrate.upgrade(settings.database_url)
    services = Services.from_settings(settings)
    try:
        loaded = load(services, runs, datasets)
    finally:
        services.close()
    analyze(settings.database_url)
    state_file.write_text(json.dumps(loaded.__dict__))
    return settings, loaded


# --- the questions ----------------------------------------------------------------------------------


def question(loaded: Loaded, granularity: str, days: int, grouped: bool, name: str) -> dict[str, Any]:
    filters = (
        [{"name": "dataSetId", "value": "|".join(loaded.dataset_ids), "groupBy": True}] if grouped else []
    )
    return {
        "start": _iso(START_MS + (30 - days) * DAY_MS),
        "end": _iso(START_MS + 30 * DAY_MS),
        "granularity": granularity,
        "metrics": [
            {
                "name": f"timeseries.ingestion.dataset.{name}",
                "filters": filters,
                "aggregator": "sum",
                "downsample": "sum",
            }
        ],
    }


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def baseline(
    services: Services, loaded: Loaded, granularity: str, days: int, grouped: bool
) -> Callable[[], int]:
    """The same numbers from the runs table: finished runs in range, joined to their flow and its
    target connection for the dataset, summed per (dataset and) day or hour."""
    length = DAY_MS if granularity == "day" else HOUR_MS
    lo, hi = START_MS + (30 - days) * DAY_MS, START_MS + 30 * DAY_MS
    bucket: ColumnElement[int | None] = Run.completed_at - Run.completed_at % literal_column(str(length))
    rows = (
        select(
            TargetConnection.doc[("params", "dataSetId")].as_string().label("dataset"),
            bucket.label("bucket"),
            Run.output_record_count.label("records"),
        )
        .select_from(Run)
        .join(Flow, and_(Flow.id == Run.flow_id, Flow.ims_org_id == Run.ims_org_id))
        .join(
            TargetConnection,
            and_(
                TargetConnection.id == Flow.doc[("targetConnectionIds", 0)].as_string(),
                TargetConnection.ims_org_id == Flow.ims_org_id,
            ),
        )
        .where(
            Run.ims_org_id == loaded.org_id,
            Run.sandbox_name == "prod",
            Run.status.in_(("success", "failed", "cancelled")),
            Run.completed_at >= lo,
            Run.completed_at < hi,
        )
        .subquery()
    )
    keys = [rows.c.dataset, rows.c.bucket] if grouped else [rows.c.bucket]
    statement = select(*keys, func.sum(rows.c.records)).group_by(*keys)

    def run() -> int:
        with services.db.reader() as session:
            return len(session.execute(statement).all())

    return run


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench(
    backend: str, runs: int, datasets: int, repeat: int, baseline_repeat: int, reuse: bool
) -> list[str]:
    settings, loaded = prepare(backend, runs, datasets, reuse)
    services = Services.from_settings(settings)
    caller = Caller(DomainTenant(loaded.org_id, "prod", loaded.sandbox_id), loaded.client_id)
    cases = [
        ("30 days by day, per dataset", "day", 30, True, "recordsuccess.count"),
        ("30 days by day, all datasets", "day", 30, False, "recordsuccess.count"),
        ("7 days by hour, per dataset", "hour", 7, True, "recordsuccess.count"),
        ("7 days by hour, all datasets", "hour", 7, False, "recordsuccess.count"),
        ("30 days by day, cumulative size, per dataset", "day", 30, True, "size"),
    ]
    rows: list[str] = []
    try:
        with TestClient(create_app(services)) as client:
            token = client.post(
                "/ims/token/v3",
                data={
                    "grant_type": "client_credentials",
                    "client_id": loaded.client_id,
                    "client_secret": loaded.client_secret,
                },
            ).json()["access_token"]
            headers = {
                "Authorization": f"Bearer {token}",
                "x-api-key": loaded.client_id,
                "x-gw-ims-org-id": loaded.org_id,
                "x-sandbox-name": "prod",
            }
            for label, granularity, days, grouped, name in cases:
                body = question(loaded, granularity, days, grouped, name)
                request = MetricsRequest.model_validate(body)

                def over_http(body: dict[str, Any] = body) -> None:
                    answer = client.post(METRICS_URL, json=body, headers=headers)
                    assert answer.status_code == 200, answer.text

                def service_call(request: MetricsRequest = request) -> None:
                    insights.answer(services, caller, request)

                check = client.post(METRICS_URL, json=body, headers=headers).json()
                points = sum(len(d["dps"]) for d in check["metricResponses"][0]["datapoints"])
                total = sum(v for d in check["metricResponses"][0]["datapoints"] for v in d["dps"].values())
                http_times: list[float] = []
                call_times: list[float] = []
                for _ in range(3):  # warm caches and code paths
                    over_http()
                    service_call()
                for _ in range(repeat):
                    http_times.append(timed(over_http))
                    call_times.append(timed(service_call))
                base_times: list[float] = []
                if name != "size":
                    scan = baseline(services, loaded, granularity, days, grouped)
                    scan()
                    base_times = [timed(scan) for _ in range(baseline_repeat)]
                http, call = statistics.median(http_times), statistics.median(call_times)
                base = statistics.median(base_times) if base_times else None
                ratio = f"{base / call:,.0f}x" if base is not None else "—"
                base_cell = f"{base:,.1f}" if base is not None else "—"
                rows.append(
                    f"| {backend} | {label} | {points:,} | {http:.1f} | {percentile(http_times, 0.95):.1f} "
                    f"| {call:.1f} | {base_cell} | {ratio} |"
                )
                print(rows[-1], f"(sum of dps {total:,.0f})", flush=True)
    finally:
        services.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30, help="timed Insights requests per question")
    parser.add_argument("--baseline-repeat", type=int, default=5, help="timed runs-table scans per question")
    parser.add_argument("--reuse", action="store_true", help="measure the data of the previous load again")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows = [
        row
        for backend in backends
        for row in bench(backend, args.runs, args.datasets, args.repeat, args.baseline_repeat, args.reuse)
    ]
    print(f"\nmachine: {platform.machine()}, Python {platform.python_version()}, {args.runs:,} runs")
    print(
        "| backend | question | dps | Insights HTTP p50 ms | p95 ms | service call p50 ms "
        "| runs-table SQL p50 ms | SQL / service call |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
