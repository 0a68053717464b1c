"""Monitoring pages at 10,000 flows and 1,000,000 runs: how long the server takes to render them.

    .venv/bin/python bench/ui_pages.py [--backend sqlite|postgres|both] [--reuse] [--requests N]

Uses the run-API benchmark's data (bench/runs_api.py: loads it unless `--reuse` finds the last
load), starts a real `flowservice serve` on it, signs in through the sign-in form, and times from
this process with one keep-alive client:

- the dataflows page (50 flows, each with its last 20 runs), its second page, a status filter and a
  text search over all 10,000 flows;
- a dataflow's page (its chart of the last 60 runs and a page of 50 runs) for random flows;
- a run's page for random runs;
- `GET /healthz`, the baseline: the same server and client doing no database work.

Times are whole requests over loopback, so they include the baseline's ~0.6 ms. Target (issue 6):
the dataflows page and a dataflow's page under 200 ms.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))

from runs_api import DATA, percentile, prepare
from tests.live import serve


def timed(client: httpx.Client, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
    return elapsed, response.text


def measure(
    url: str, client_id: str, client_secret: str, flow_ids: list[str], requests: int
) -> dict[str, list[float]]:
    rng = random.Random(11)
    with httpx.Client(base_url=url, timeout=60) as client:
        signed = client.post("/ui/signin", data={"client_id": client_id, "client_secret": client_secret})
        if signed.status_code != 303:
            raise SystemExit(f"sign-in failed: {signed.status_code} {signed.text[:300]}")
        for _ in range(5):  # warm up connections, caches and the templates
            timed(client, "/healthz")
            timed(client, "/ui/flows")
        _, first = timed(client, "/ui/flows")
        following = re.search(r'rel="next" href="([^"]+)"', first)
        if not following:
            raise SystemExit("the dataflows page has no next page")
        second_url = following.group(1).replace("&amp;", "&")
        run_ids: list[str] = []
        results: dict[str, list[float]] = {
            "healthz (baseline)": [],
            "dataflows page": [],
            "dataflows page 2": [],
            "dataflows, last run failed": [],
            "dataflows, name contains": [],
            "a dataflow's page": [],
            "a run's page": [],
        }
        for i in range(requests):
            results["healthz (baseline)"].append(timed(client, "/healthz")[0])
            results["dataflows page"].append(timed(client, "/ui/flows")[0])
            results["dataflows page 2"].append(timed(client, second_url)[0])
            results["dataflows, last run failed"].append(timed(client, "/ui/flows?status=failed")[0])
            results["dataflows, name contains"].append(timed(client, f"/ui/flows?q=flow+{i % 100:02d}4")[0])
            elapsed, text = timed(client, f"/ui/flows/{rng.choice(flow_ids)}")
            results["a dataflow's page"].append(elapsed)
            run_ids += re.findall(r'<tr data-run="([\w-]+)"', text)[:3]
            results["a run's page"].append(timed(client, f"/ui/runs/{rng.choice(run_ids)}")[0])
    return results


def bench(backend: str, runs: int, flows: int, requests: int, reuse: bool) -> list[str]:
    _settings, state, env = prepare(backend, runs, flows, reuse)
    with serve(DATA, env=env) as server:
        results = measure(server.url, state["client_id"], state["client_secret"], state["flow_ids"], requests)
    baseline = statistics.median(results["healthz (baseline)"])
    rows = []
    for name, values in results.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        rows.append(f"| {backend} | {name} | {len(values)} | {p50:.1f} | {p95:.1f} | {p50 / baseline:.1f}x |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the last load of bench/runs_api.py again"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        rows += bench(backend, args.runs, args.flows, args.requests, args.reuse)
    print(f"\n{platform.node()} · {platform.machine()} · python {platform.python_version()}")
    print("| backend | page | n | p50 ms | p95 ms | p50 / baseline |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
