"""What `GET /metrics` exposes, in Prometheus' exposition format, from a registry of the app's own.

Run counters and the run duration histogram come from `flow_totals`, which the transaction that
finishes a run adds to (services/run_hooks.py); the gauges are three indexed counts. Both are read
when Prometheus scrapes, in one short read transaction, so a scrape costs two statements whatever
the number of runs, and every process serving the same database reports the same numbers whichever
of them finished the runs. HTTP latency is the one thing measured in this process
(api/metrics.py's middleware observes `Metrics.http_latency`), so those series are per process.

The registry is per app, never prometheus_client's global one: tests build many apps in one process,
and two collectors of one name in the global registry would refuse to register.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from flowservice.services.context import Services
from flowservice.services.rollups import DURATION_BOUNDS_S
from flowservice.store.repos import rollups as repo

log = logging.getLogger("flowservice.metrics")

# every per-flow series carries the tenant and both the flow's id (stable, unique) and its name
# (what people recognise on a dashboard; it may change, and two flows may share it)
FLOW_LABELS = ("org", "sandbox", "flow_id", "flow_name")
RUN_STATUSES = ("success", "failed", "cancelled")
# request latencies of an API whose answers are mostly single indexed reads, up to file downloads
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_LABELS = ("method", "route", "status_class")


@dataclass(frozen=True, slots=True)
class Metrics:
    """One app's registry and the HTTP latency histogram its middleware observes into."""

    registry: CollectorRegistry
    http_latency: Histogram


def build(services: Services) -> Metrics:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(services))
    latency = Histogram(
        "flowservice_http_request_duration_seconds",
        "Time from a request's arrival to the end of its answer, by route template (not the raw path).",
        HTTP_LABELS,
        registry=registry,
        buckets=HTTP_BUCKETS,
    )
    return Metrics(registry, latency)


def exposition(metrics: Metrics, accept: str) -> tuple[bytes, str]:
    """The scrape's body and content type: OpenMetrics when Prometheus asks for it, else the text format."""
    encode, content_type = choose_encoder(accept)
    return encode(metrics.registry), content_type


class StoreCollector:
    """The database-backed families, read at scrape time (prometheus_client's custom collector)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets the registry refuse a clashing name without a database read."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        try:
            with self.services.db.reader() as session:
                now = self.services.clock.now_ms()
                totals = repo.all_flow_totals(session)
                gauges = repo.gauges(session, now)
        except Exception:  # a scrape still answers (HTTP latency, and `up` = 0) while the database is away
            log.exception("metrics: the database could not be read")
            yield GaugeMetricFamily(
                "flowservice_database_up", "1 when this scrape could read the database.", value=0
            )
            return
        yield GaugeMetricFamily(
            "flowservice_database_up", "1 when this scrape could read the database.", value=1
        )
        yield from self._families(totals, gauges, now)

    def _families(
        self,
        totals: Sequence[repo.FlowTotalsRow] = (),
        gauges: repo.Gauges | None = None,
        now: int = 0,
    ) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "flowservice_runs", "Finished runs per flow, by final status.", labels=(*FLOW_LABELS, "status")
        )
        records = CounterMetricFamily(
            "flowservice_records",
            "Records of finished runs per flow: read (in), committed (out), rejected (failed).",
            labels=(*FLOW_LABELS, "kind"),
        )
        size = CounterMetricFamily(
            "flowservice_bytes",
            "Bytes of finished runs per flow: read from the source (in), committed to the dataset (out).",
            labels=(*FLOW_LABELS, "direction"),
        )
        durations = HistogramMetricFamily(
            "flowservice_run_duration_seconds",
            "Duration of finished runs per flow, from start to completion.",
            labels=FLOW_LABELS,
        )
        for row in totals:
            flow = (row.org_id, row.sandbox_name, row.flow_id, row.flow_name)
            for status, count in zip(
                RUN_STATUSES, (row.runs_success, row.runs_failed, row.runs_cancelled), strict=True
            ):
                runs.add_metric([*flow, status], count)
            for kind, count in (
                ("in", row.records_in),
                ("out", row.records_out),
                ("failed", row.records_failed),
            ):
                records.add_metric([*flow, kind], count)
            size.add_metric([*flow, "in"], row.bytes_in)
            size.add_metric([*flow, "out"], row.bytes_out)
            durations.add_metric(
                list(flow), cumulative_buckets(row.duration_buckets), row.duration_ms_sum / 1000
            )
        yield from (runs, records, size, durations)

        queue = GaugeMetricFamily(
            "flowservice_queue_depth", "Runs scheduled and due, waiting for a worker (every tenant)."
        )
        running = GaugeMetricFamily("flowservice_runs_in_progress", "Runs in progress (every tenant).")
        lag = GaugeMetricFamily(
            "flowservice_scheduler_lag_seconds",
            "How long the most overdue slot of an enabled flow has waited for the scheduler; 0 when none is overdue.",
        )
        if gauges is not None:
            queue.add_metric([], gauges.queue_depth)
            running.add_metric([], gauges.in_progress)
            lag.add_metric([], scheduler_lag_seconds(gauges.earliest_due, now))
        yield from (queue, running, lag)


def cumulative_buckets(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus' `le` buckets (each counting every run up to its bound, `+Inf` all of them) from the
    stored per-bucket counts: one per bound of DURATION_BOUNDS_S, then the overflow bucket. A list of
    another length (written under other bounds) is read as far as it goes, extra counts into `+Inf`."""
    buckets: list[tuple[str, float]] = []
    running = 0
    for index, bound in enumerate(DURATION_BOUNDS_S):
        running += counts[index] if index < len(counts) else 0
        buckets.append((repr(float(bound)), running))  # 1 → "1.0", as Histogram writes it
    buckets.append(("+Inf", sum(counts)))
    return buckets


def scheduler_lag_seconds(earliest_due: int | None, now: int) -> float:
    """now − the earliest slot still waiting, in seconds; 0 when no slot has come yet."""
    if earliest_due is None:
        return 0.0
    return max(0, now - earliest_due) / 1000
