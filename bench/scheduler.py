"""Scheduler benchmark: the lag between a slot's time and its run's creation, for 10,000 minute flows.

    .venv/bin/python bench/scheduler.py [--backend sqlite|postgres|both] [--flows N]

Creates N enabled flows (frequency minute, interval 15, the minimum) through the services, then
runs one real `Scheduler` thread and records, for every run, when it became visible (the moment
`services.run_created` fires, after the commit) minus its slot time. Three scenarios per backend:

- baseline: 20 flows due one a second, each alone: the floor set by waking up and one transaction;
- spread:   N flows whose start times are spread over 60 s (N/60 slots a second: 15x denser than
            flows spread over their 15-minute interval);
- herd:     N flows that all share one start time, the worst case: every run due at once.

The scheduler sees a clock shifted so that the slots arrive a few seconds after the flows exist
(creating 10,000 flows takes longer than the slots wait); the lag is the same in either clock.
The machine is shared, so compare the ratios to the baseline as much as the milliseconds.
"""

from __future__ import annotations

import argparse
import platform
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, text

sys.path.insert(0, str(Path(__file__).parents[1]))

from common import bench_database, flow_parts

from flowservice import catalog
from flowservice.scheduler.loop import Scheduler
from flowservice.schemas.resources import (
    FlowCreate,
)
from flowservice.services import resources
from flowservice.services.context import Services
from flowservice.services.flows import KIND as FLOWS
from flowservice.settings import Settings
from flowservice.store import migrate

DATA = Path(__file__).parent / ".data"
PG_BENCH = "flowservice_bench_scheduler"
LEAD_MS = 3_000  # the first slot comes this long after the scheduler starts


class ShiftedClock:
    """Real time moved by a settable offset: slots chosen in advance arrive when the bench wants."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


def create_flows(services: Services, org: str, start_times_s: list[int]) -> dict[str, int]:
    """Flows through the service layer, as the API makes them; their first slot (epoch ms) by id."""
    parts = flow_parts(services, org)
    slots = {}
    for i, start in enumerate(start_times_s):
        body = FlowCreate.model_validate(
            {
                "name": f"flow {i:05d}",
                "flowSpec": {"id": catalog.CLOUD_STORAGE_TO_AEP},
                "sourceConnectionIds": [parts.source_id],
                "targetConnectionIds": [parts.target_id],
                "scheduleParams": {"startTime": str(start), "frequency": "minute", "interval": "15"},
            }
        )
        slots[resources.create(services, parts.caller, FLOWS, body).id] = start * 1000
    return slots


def lags(services: Services, clock: ShiftedClock, slots: dict[str, int], first_slot_ms: int) -> list[float]:
    """Run a scheduler until every flow has its first run; the lag of each run in milliseconds."""
    seen: dict[str, int] = {}
    done = threading.Event()
    lock = threading.Lock()

    def on_created(run_id: str) -> None:
        at = clock.now_ms()
        with lock:
            seen[run_id] = at
            if len(seen) >= len(slots):
                done.set()

    clock.offset_ms = first_slot_ms - LEAD_MS - time.time_ns() // 1_000_000
    services.run_listeners.append(on_created)
    scheduler = Scheduler(services)
    scheduler.start()
    try:
        span = (max(slots.values()) - min(slots.values())) / 1000
        if not done.wait(timeout=LEAD_MS / 1000 + span + 120):
            raise TimeoutError(f"only {len(seen)} of {len(slots)} runs were created")
    finally:
        scheduler.stop()
        services.run_listeners.remove(on_created)
    with services.db.reader() as session:
        rows = session.execute(
            text("SELECT id, flow_id FROM runs WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": list(seen)},
        ).all()
    flow_of: dict[str, str] = {str(run_id): str(flow_id) for run_id, flow_id in rows}
    return [seen[run_id] - slots[flow_of[run_id]] for run_id in seen]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


def scenario(backend: str, name: str, starts: list[int]) -> dict[str, float]:
    """One scenario on a database of its own, so no other flows are due while it runs."""
    url = bench_database(backend, PG_BENCH)
    migrate.upgrade(url)
    clock = ShiftedClock()
    settings = Settings.load(home=DATA / f"home-{backend}", database_url=url, poll_seconds=1.0)
    services = Services.from_settings(settings, clock=clock)
    try:
        started = time.perf_counter()
        slots = create_flows(services, secrets.token_hex(12).upper() + "@AdobeOrg", starts)
        made = time.perf_counter() - started
        print(f"  {backend} {name}: {len(slots)} flows created in {made:.1f}s", flush=True)
        stats = summary(lags(services, clock, slots, min(starts) * 1000))
        print(f"  {backend} {name}: {stats}", flush=True)
        return stats
    finally:
        services.close()


def bench(backend: str, flows: int) -> list[tuple[str, dict[str, float]]]:
    base = 2_000_000_000  # seconds; far from now, the clock is shifted to it
    scenarios: list[tuple[str, list[int]]] = [
        ("baseline (20 flows, one a second)", [base + i for i in range(20)]),
        (f"spread ({flows} flows over 60 s)", [base + i * 60 // flows for i in range(flows)]),
        (f"herd ({flows} flows, one slot)", [base] * flows),
    ]
    return [(name, scenario(backend, name, starts)) for name, starts in scenarios]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--flows", type=int, default=10_000)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    table: list[tuple[str, str, dict[str, Any]]] = []
    for backend in backends:
        for name, stats in bench(backend, args.flows):
            table.append((backend, name, stats))
    print(
        f"\n{platform.node()} · {platform.processor() or platform.machine()} · python {platform.python_version()}"
    )
    print("| backend | scenario | runs | lag p50 (ms) | lag p99 (ms) | max (ms) | p99 / baseline p99 |")
    print("|---|---|---|---|---|---|---|")
    baseline = {b: s["p99"] for b, n, s in table if n.startswith("baseline")}
    for backend, name, s in table:
        ratio = s["p99"] / max(baseline[backend], 1)
        print(
            f"| {backend} | {name} | {s['n']} | {s['p50']:.0f} | {s['p99']:.0f} | {s['max']:.0f} | {ratio:.1f}x |"
        )


if __name__ == "__main__":
    main()
