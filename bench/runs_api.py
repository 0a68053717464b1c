"""Run-API benchmark: 1,000,000 runs over 10,000 flows, measured over HTTP on SQLite and PostgreSQL.

    .venv/bin/python bench/runs_api.py [--backend sqlite|postgres|both] [--runs N] [--flows N] [--reuse]

Loads the data through the store's bulk path (services.runs.import_runs), starts a real
`flowservice serve` process on it, and times, from this process with one keep-alive client:

- `GET /runs?property=flowId==X&limit=100` for random flows (p50, p95)
- the 1000th page of `GET /runs?limit=100` (reached by following continuation tokens) vs the first
- `property=metrics.statusSummary.status==failed&count=true`
- `property=metrics.recordSummary.failedRecordCount>0&limit=100`
- `GET /healthz`, the baseline: the same server and client doing no database work

Numbers are printed as a Markdown table to paste into BENCHMARKS.md. The machine is shared, so
compare the ratios (to the baseline, page 1000 to page 1) more than the milliseconds.
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
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parents[1]))

from common import bench_database, flow_parts
from tests.live import serve

from flowservice import catalog
from flowservice.domain import etags
from flowservice.domain.runs import COPY, PROMOTION, Activity, RunError, Summary
from flowservice.domain.tenancy import Tenant as DomainTenant
from flowservice.schemas.resources import (
    FlowCreate,
)
from flowservice.services import identity, resources
from flowservice.services import runs as run_service
from flowservice.services.context import Services
from flowservice.services.flows import KIND as FLOWS
from flowservice.services.runs import RunState
from flowservice.settings import Settings
from flowservice.store import migrate

DATA = Path(__file__).parent / ".data"
PG_BENCH = "flowservice_bench"
DAY_MS = 86_400_000


def make_run(tenant: DomainTenant, flow: dict[str, Any], created: int, rng: random.Random) -> dict[str, Any]:
    """A finished run as the engine would leave it: ~10 % failed, counts that add up."""
    failed_run = rng.random() < 0.1
    total = rng.randint(100, 50_000)
    bad = total if failed_run else (rng.randint(1, 50) if rng.random() < 0.2 else 0)
    files = rng.randint(1, 20)
    size = total * 80
    doc = run_service.new_run_document(tenant, flow, client_id="bench", now=created)
    copy = Activity(
        str(uuid.uuid4()),
        COPY,
        "success",
        created + 10,
        created + 5_000,
        created + 5_000,
        Summary(size, size, total, total, None, files, files),
        window=(created - 3_600_000, created),
        source_info=[{"id": flow["sourceConnectionIds"][0], "type": "SourceConnection"}],
    )
    promotion = Activity(
        str(uuid.uuid4()),
        PROMOTION,
        "failed" if failed_run else "success",
        created + 5_100,
        created + 9_000,
        created + 9_000,
        Summary(size, 0 if failed_run else size // 3, total, total - bad, bad, files, 1),
        details=[RunError("MAPPER-3700-400", "Mapper Transform Error", bad)] if bad else [],
        manifest={
            "fileInfo": f"https://bench/data/foundation/export/batches/{uuid.uuid4().hex}/meta?path=input_files"
        },
        target_info=[{"id": flow["targetConnectionIds"][0], "type": "TargetConnection"}],
    )
    errors = [RunError("CONNECTOR-2001-500", "Error in processing the copied data.")] if failed_run else []
    state = RunState(
        "failed" if failed_run else "success", created + 10, created + 9_100, [copy, promotion], errors
    )
    doc = state.apply(doc)
    doc.update(updatedAt=created + 9_100, etag=etags.new_etag(created + 9_100))
    return doc


def load(services: Services, runs: int, flows: int) -> tuple[identity.NewCredential, list[str]]:
    parts = flow_parts(services, "BENCH0000000000000000000@AdobeOrg")
    credential, caller = parts.credential, parts.caller
    tenant = caller.tenant
    started = time.perf_counter()
    flow_docs = []
    for i in range(flows):
        body = FlowCreate.model_validate(
            {
                "name": f"flow {i:05d}",
                "flowSpec": {"id": catalog.CLOUD_STORAGE_TO_AEP},
                "sourceConnectionIds": [parts.source_id],
                "targetConnectionIds": [parts.target_id],
                "scheduleParams": {"startTime": 1_700_000_000, "frequency": "hour", "interval": 1},
            }
        )
        written = resources.create(services, caller, FLOWS, body)
        flow_docs.append(
            {
                "id": written.id,
                "flowSpec": {"id": catalog.CLOUD_STORAGE_TO_AEP, "version": "1.0"},
                "sourceConnectionIds": [parts.source_id],
                "targetConnectionIds": [parts.target_id],
            }
        )
    print(f"  {flows} flows through the services in {time.perf_counter() - started:.1f}s", flush=True)
    rng = random.Random(7)
    start_ms = 1_790_000_000_000
    step = max(1, (30 * DAY_MS) // runs)
    started = time.perf_counter()
    chunk = 50_000
    for offset in range(0, runs, chunk):
        docs = [
            make_run(tenant, flow_docs[rng.randrange(flows)], start_ms + (offset + i) * step, rng)
            for i in range(min(chunk, runs - offset))
        ]
        run_service.import_runs(services, tenant, docs, sync_flows=False)
        done = offset + len(docs)
        print(f"  {done:>9,} runs ({done / (time.perf_counter() - started):,.0f}/s)", end="\r", flush=True)
    run_service.sync_last_runs(services, tenant, [str(f["id"]) for f in flow_docs])
    print(f"\n  {runs:,} runs through the bulk path in {time.perf_counter() - started:.1f}s", flush=True)
    return credential, [str(f["id"]) for f in flow_docs]


def analyze(url: str) -> None:
    """Fresh statistics after a bulk load, as an operator would run (autovacuum would, later)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE" if url.startswith("postgresql") else "ANALYZE"))
    engine.dispose()


def timed(client: httpx.Client, url: str, params: Any = None) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(
    base: str, headers: dict[str, str], flow_ids: list[str], requests: int, deep_page: int
) -> dict[str, list[float]]:
    rng = random.Random(11)
    results: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for _ in range(20):  # warm up connections, caches and the server's code paths
            timed(
                client, "/data/foundation/flowservice/runs", {"property": f"flowId=={rng.choice(flow_ids)}"}
            )
        results["healthz (baseline)"] = [timed(client, "/healthz")[0] for _ in range(requests)]
        flow_page = []
        for _ in range(requests):
            elapsed, body = timed(
                client,
                "/data/foundation/flowservice/runs",
                {"property": f"flowId=={rng.choice(flow_ids)}", "limit": "100"},
            )
            assert body["items"], "a flow without runs: the load is wrong"
            flow_page.append(elapsed)
        results["flowId==X, limit=100"] = flow_page
        _, first = timed(client, "/data/foundation/flowservice/runs", {"limit": "100"})
        href = first["_links"]["next"]["href"]
        for _ in range(deep_page - 2):  # pages 2..deep_page-1; the token in hand then points at deep_page
            _, body = timed(client, f"/data/foundation/flowservice{href}")
            href = body["_links"]["next"]["href"]
        shallow_times, deep_times = [], []
        for _ in range(100):  # interleaved, so both pages see the same moments of a noisy machine
            shallow_times.append(timed(client, "/data/foundation/flowservice/runs", {"limit": "100"})[0])
            elapsed, body = timed(client, f"/data/foundation/flowservice{href}")
            assert len(body["items"]) == 100
            deep_times.append(elapsed)
        results["page 1 of all runs"] = shallow_times
        results[f"page {deep_page} of all runs"] = deep_times
        results["status==failed, count=true"] = [
            timed(
                client,
                "/data/foundation/flowservice/runs",
                {"property": "metrics.statusSummary.status==failed", "count": "true"},
            )[0]
            for _ in range(requests)
        ]
        results["failedRecordCount>0, limit=100"] = [
            timed(
                client,
                "/data/foundation/flowservice/runs",
                {"property": "metrics.recordSummary.failedRecordCount>0", "limit": "100"},
            )[0]
            for _ in range(requests)
        ]
    return results


def prepare(
    backend: str, runs: int, flows: int, reuse: bool
) -> tuple[Settings, dict[str, Any], dict[str, str]]:
    """The loaded database (loaded now unless `reuse` finds the last load), the credential and flow
    ids of its org, and the environment of a `flowservice serve` on it (also bench/ui_pages.py's)."""
    print(f"[{backend}] preparing {runs:,} runs over {flows:,} flows", flush=True)
    DATA.mkdir(exist_ok=True)
    home = DATA / f"home-{backend}"
    home.mkdir(exist_ok=True)
    url = bench_database(backend, PG_BENCH, reuse=reuse)
    settings = Settings.load(home=home, database_url=url)
    state_file = home / "bench-state.json"
    if reuse and state_file.exists():
        state = json.loads(state_file.read_text())
    else:
        migrate.upgrade(settings.database_url)
        services = Services.from_settings(settings)
        credential, flow_ids = load(services, runs, flows)
        services.close()
        analyze(settings.database_url)
        state = {
            "client_id": credential.client_id,
            "client_secret": credential.client_secret,
            "org_id": credential.org_id,
            "flow_ids": flow_ids,
        }
        state_file.write_text(json.dumps(state))
    env = {
        "FLOWSERVICE_HOME": str(home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url,
        # the loaded flows are real, enabled and scheduled: keep them from running during the timing
        "FLOWSERVICE_SCHEDULER": "false",
        "FLOWSERVICE_WORKERS": "0",
    }
    return settings, state, env


def bench(backend: str, runs: int, flows: int, requests: int, reuse: bool) -> list[str]:
    _settings, state, env = prepare(backend, runs, flows, reuse)
    with serve(DATA, env=env) as server:
        token = httpx.post(
            f"{server.url}/ims/token/v3",
            data={
                "grant_type": "client_credentials",
                "client_id": state["client_id"],
                "client_secret": state["client_secret"],
            },
        ).json()["access_token"]
        headers = {
            "Authorization": f"Bearer {token}",
            "x-api-key": state["client_id"],
            "x-gw-ims-org-id": state["org_id"],
            "x-sandbox-name": "prod",
        }
        deep_page = min(1000, runs // 100 - 1)
        results = measure(server.url, headers, state["flow_ids"], requests, deep_page)
    baseline = statistics.median(results["healthz (baseline)"])
    page1 = statistics.median(results["page 1 of all runs"])
    rows = []
    for name, values in results.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        deep = name.startswith("page ") and not name.startswith("page 1 ")
        extra = f" (deep page / page 1 = {p50 / page1:.2f}x)" if deep else ""
        rows.append(
            f"| {backend} | {name} | {len(values)} | {p50:.1f} | {p95:.1f} | {p50 / baseline:.1f}x{extra} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="measure the data of the previous load again")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows = [
        row
        for backend in backends
        for row in bench(backend, args.runs, args.flows, args.requests, args.reuse)
    ]
    print(
        f"\nmachine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    )
    print("| backend | request | n | p50 ms | p95 ms | p50 / baseline |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
