"""The Observability Insights metrics API, answered from the ingestion rollups only.

A request is parsed into `Ask` (every refusal an `InsightsError` naming the field at fault), the
bucket calendar is laid out (`domain.insights.buckets`, capped), and each metric is answered with
one or two aggregate statements over `ingestion_rollups` (`store/repos/rollups.py`): the runs table
is never read, so a month of a million runs costs what a few thousand rollup rows cost. The
semantics (zero-filled buckets, how downsampling and aggregators treat missing rows, the
cumulative `size`) are the rules written at the top of `domain/insights.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from flowservice.domain import insights as model
from flowservice.domain.insights import Cell, InsightsError
from flowservice.domain.tenancy import Caller, Tenant
from flowservice.schemas.insights import MetricQuery, MetricsRequest
from flowservice.services.context import Services
from flowservice.store.repos import rollups as repo


@dataclass(frozen=True, slots=True)
class MetricAsk:
    """One metric of a request, validated: `datasets` None means every dataset of the tenant."""

    metric: model.Metric
    filters: tuple[dict[str, Any], ...]  # echoed in the answer, as Adobe does
    datasets: tuple[str, ...] | None
    group_by: bool
    aggregator: str
    downsample: str


@dataclass(frozen=True, slots=True)
class Ask:
    start: int
    end: int
    granularity: str
    buckets: tuple[int, ...]
    metrics: tuple[MetricAsk, ...]


def parse(body: MetricsRequest) -> Ask:
    """The request's meaning, or the first thing wrong with it."""
    start = model.parse_instant(body.start, "start")
    end = model.parse_instant(body.end, "end")
    if start > end:
        raise InsightsError("Start date cannot be after end date.")
    granularity = model.granularity_of(body.granularity)
    if not body.metrics:
        raise InsightsError("At least one metric is required in metrics.")
    if len(body.metrics) > model.MAX_METRICS:
        raise InsightsError(
            f"{len(body.metrics)} metrics were asked for; a request may ask for at most {model.MAX_METRICS}."
        )
    metrics = tuple(_metric(i, m) for i, m in enumerate(body.metrics))
    calendar = model.buckets(start, end, granularity)
    points = sum(len(calendar) * (len(m.datasets or ()) if m.group_by else 1) for m in metrics)
    if points > model.MAX_POINTS:
        raise InsightsError(
            f"The answer would hold {points:,} datapoints (buckets x datasets over all metrics); a request "
            f"may ask for at most {model.MAX_POINTS:,}. Choose a coarser granularity, a shorter range or "
            "fewer datasets."
        )
    return Ask(start, end, granularity, calendar, metrics)


def _metric(index: int, asked: MetricQuery) -> MetricAsk:
    where = f"metrics[{index}]"
    metric = model.metric_named(asked.name)
    if metric is None:
        raise InsightsError(
            f"The metric '{model.shown(asked.name)}' of {where} is not supported: use one of "
            f"{', '.join(model.METRICS)}."
        )
    downsample = model.downsample_of(asked.downsample, where)
    aggregator = model.aggregator_of(asked.aggregator, where)
    for number, found in enumerate(asked.filters):
        if found.name.strip().lower() != model.FILTER_NAME.lower():
            raise InsightsError(
                f"The filter '{model.shown(found.name)}' of {where}.filters[{number}] is not supported: "
                f"only {model.FILTER_NAME} is."
            )
    if len(asked.filters) > 1:
        raise InsightsError(
            f"{where} has {len(asked.filters)} {model.FILTER_NAME} filters; give one, with the ids joined by '|'."
        )
    echoed = tuple({"name": f.name, "value": f.value, "groupBy": f.groupBy} for f in asked.filters)
    if not asked.filters:
        return MetricAsk(metric, echoed, None, False, aggregator, downsample)
    [only] = asked.filters
    ids = [part.strip() for part in only.value.split("|")]
    if not all(ids):
        raise InsightsError(
            f"The {model.FILTER_NAME} filter of {where} has an empty id in '{model.shown(only.value)}'."
        )
    unique = tuple(dict.fromkeys(ids))
    if len(unique) > model.MAX_DATASETS:
        raise InsightsError(
            f"The {model.FILTER_NAME} filter of {where} names {len(unique):,} datasets; at most "
            f"{model.MAX_DATASETS:,} may be given."
        )
    return MetricAsk(metric, echoed, unique, only.groupBy, aggregator, downsample)


def answer(services: Services, caller: Caller, body: MetricsRequest) -> dict[str, Any]:
    """`{"metricResponses": [...]}`, one per metric asked, in the order asked, from one snapshot."""
    ask = parse(body)
    with services.db.reader() as session:
        return {"metricResponses": [_respond(session, caller.tenant, ask, m) for m in ask.metrics]}


def _respond(session: Session, tenant: Tenant, ask: Ask, asked: MetricAsk) -> dict[str, Any]:
    keys = [model.iso(b) for b in ask.buckets]
    if asked.group_by:
        series = _grouped(session, tenant, ask, asked) if ask.buckets else {}
        datapoints = [
            {
                "groupBy": {model.FILTER_NAME: dataset},
                "dps": dict(zip(keys, series.get(dataset, []), strict=True)),
            }
            for dataset in asked.datasets or ()
        ]
    else:
        values = _aggregated(session, tenant, ask, asked) if ask.buckets else []
        datapoints = [{"groupBy": {}, "dps": dict(zip(keys, values, strict=True))}]
    return {
        "metric": asked.metric.name,
        "filters": list(asked.filters),
        "datapoints": datapoints,
        "granularity": ask.granularity.upper(),
    }


def _range(ask: Ask, asked: MetricAsk) -> repo.Range:
    return repo.Range(
        column=asked.metric.column,
        source=model.source_of(ask.granularity),
        granularity=ask.granularity,
        lo=ask.buckets[0],
        hi=model.following(ask.buckets[-1], ask.granularity),
        datasets=asked.datasets,
        month_starts=ask.buckets if ask.granularity == "month" else (),
    )


def _by_dataset(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    found: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        found[cell.dataset].append(cell)
    return found


def _grouped(session: Session, tenant: Tenant, ask: Ask, asked: MetricAsk) -> dict[str, list[float]]:
    """Each filtered dataset's own series (zeros for an id without rows: unknown, idle, or another
    tenant's, which look the same)."""
    query = _range(ask, asked)
    datasets = asked.datasets or ()
    if asked.metric.cumulative:
        cells = _by_dataset(repo.per_dataset(session, tenant, query))
        before = repo.totals_before(session, tenant, query.column, query.lo, query.datasets)
        return {
            d: model.single_level_series(
                model.levels(before.get(d), cells.get(d, []), ask.buckets, ask.granularity, asked.downsample),
                asked.aggregator,
            )
            for d in datasets
        }
    values: dict[str, dict[int, float]] = defaultdict(dict)
    for dataset, bucket, value in repo.values_per_dataset(session, tenant, query, asked.downsample):
        values[dataset][bucket] = value
    return {d: model.counter_series(values.get(d, {}), ask.buckets, asked.aggregator) for d in datasets}


def _aggregated(session: Session, tenant: Tenant, ask: Ask, asked: MetricAsk) -> list[float]:
    """One series for the datasets together: counters are combined by the database; running totals
    need each dataset's level, so they are combined here from one row per dataset and bucket."""
    query = _range(ask, asked)
    if not asked.metric.cumulative:
        across = {a.bucket: a for a in repo.combined(session, tenant, query, asked.downsample)}
        needed = bool(across) and asked.aggregator in ("avg", "max", "min")  # sum and count do without
        series = repo.dataset_count(session, tenant, query) if needed else 0
        return model.combined(across, ask.buckets, asked.aggregator, series)
    cells = _by_dataset(repo.per_dataset(session, tenant, query))
    before = repo.totals_before(session, tenant, query.column, query.lo, query.datasets)
    levels = [
        model.levels(before.get(d), cells.get(d, []), ask.buckets, ask.granularity, asked.downsample)
        for d in sorted(set(cells) | set(before))
    ]
    return model.aggregate_levels(levels, len(ask.buckets), asked.aggregator)
