"""The statements behind ingestion rollups, flow totals and the operational gauges.

Writes are upserts that add (`INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`), so the
finishing of a run and a bulk import both count by adding, never by reading first; rows are sorted
by key before an executemany so two transactions take their row locks in one order.

Reads answer the Observability Insights API in one or two aggregate statements each: a dataset's
hourly or daily rows are binned into the requested buckets by the database (fixed-length buckets by
arithmetic, months by a CASE over their starts), and, when datasets are aggregated together, the
second level is grouped there too, so what reaches Python is one row per bucket (or per dataset and
bucket), never the rows behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flowservice.domain.insights import Across, Cell
from flowservice.domain.tenancy import Tenant
from flowservice.store.tables import Flow, FlowTotals, IngestionRollup, Run, TargetConnection

ROLLUP_KEYS = ("ims_org_id", "sandbox_name", "granularity", "dataset_id", "bucket_start")
ROLLUP_COUNTERS = ("runs", "record_success", "record_failed", "batch_success", "batch_failed", "size_bytes")
TOTALS_COUNTERS = (
    "runs_success",
    "runs_failed",
    "runs_cancelled",
    "records_in",
    "records_out",
    "records_failed",
    "bytes_in",
    "bytes_out",
    "duration_ms_sum",
)
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONDAY_SHIFT_MS = 3 * DAY_MS  # 1970-01-01 was a Thursday: shifted by three days, weeks start on Monday


# --- writes -------------------------------------------------------------------------------------


def datasets_of_flows(session: Session, tenant: Tenant, flow_ids: Sequence[str]) -> dict[str, str | None]:
    """flow id → the dataset its first target connection writes to (None without one); flows that
    do not exist (any more) are absent."""
    if not flow_ids:
        return {}
    target_id = Flow.doc[("targetConnectionIds", 0)].as_string()
    query = (
        select(Flow.id, TargetConnection.doc[("params", "dataSetId")].as_string())
        .select_from(Flow)
        .outerjoin(
            TargetConnection,
            and_(
                TargetConnection.id == target_id,
                TargetConnection.ims_org_id == Flow.ims_org_id,
                TargetConnection.sandbox_name == Flow.sandbox_name,
            ),
        )
        .where(
            Flow.ims_org_id == tenant.org_id,
            Flow.sandbox_name == tenant.sandbox_name,
            Flow.id.in_(sorted(set(flow_ids))),
        )
    )
    return {flow_id: dataset_id or None for flow_id, dataset_id in session.execute(query)}


def add_rollups(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add each row's counters to its (tenant, granularity, dataset, bucket) row, creating it."""
    if not rows:
        return
    conn = session.connection()
    insert = _insert(conn.dialect.name, IngestionRollup)
    table = IngestionRollup.__table__
    statement = insert.on_conflict_do_update(
        index_elements=list(ROLLUP_KEYS),
        set_={name: table.c[name] + insert.excluded[name] for name in ROLLUP_COUNTERS},
    )
    conn.execute(statement, sorted(rows, key=lambda r: tuple(r[k] for k in ROLLUP_KEYS)))


def add_totals(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add each row's counters (and its duration histogram, element by element) to its flow's totals."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect.name
    insert = _insert(dialect, FlowTotals)
    table = FlowTotals.__table__
    width = len(rows[0]["duration_buckets"])
    if any(len(r["duration_buckets"]) != width for r in rows):
        raise ValueError("every row needs the same number of duration buckets")
    values: dict[str, Any] = {name: table.c[name] + insert.excluded[name] for name in TOTALS_COUNTERS}
    values["duration_buckets"] = _added_lists(
        dialect, table.c.duration_buckets, insert.excluded.duration_buckets, width
    )
    statement = insert.on_conflict_do_update(index_elements=["flow_id"], set_=values)
    conn.execute(statement, sorted(rows, key=lambda r: str(r["flow_id"])))


def _insert(dialect: str, model: type[Any]) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"no upsert for {dialect}")


def _added_lists(dialect: str, stored: Any, incoming: Any, width: int) -> Any:
    """The JSON array whose element i is stored[i] + incoming[i], computed by the database."""
    if dialect == "postgresql":
        return func.jsonb_build_array(
            *[
                cast(stored.op("->>")(literal_column(str(i))), BigInteger)
                + cast(incoming.op("->>")(literal_column(str(i))), BigInteger)
                for i in range(width)
            ]
        )
    return func.json_array(
        *[func.json_extract(stored, f"$[{i}]") + func.json_extract(incoming, f"$[{i}]") for i in range(width)]
    )


# --- Insights reads -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Range:
    """What one metric reads: rows of `source` ("hour" | "day") with `lo <= bucket_start < hi`, binned
    into `granularity` buckets (`month_starts`: the starts of the months in range, for "month");
    every bucket lies whole inside `[lo, hi)`."""

    column: str
    source: str
    granularity: str
    lo: int
    hi: int
    datasets: tuple[str, ...] | None  # None: every dataset of the tenant
    month_starts: tuple[int, ...] = ()


def _lit(value: int) -> ColumnElement[int]:
    """An inlined integer: the statements stay free of bind parameters inside CASEs and arithmetic,
    so both dialects type them as integers."""
    return literal_column(str(int(value)), BigInteger)


def _by_month(query: Range, value: Any) -> tuple[list[tuple[ColumnElement[bool], ColumnElement[int]]], int]:
    """CASE arms over the month starts: `bucket_start < next month` → `value(month, next)`."""
    start = IngestionRollup.__table__.c.bucket_start
    starts = query.month_starts
    ends = (*starts[1:], query.hi)
    whens = [
        (start < _lit(end), _lit(value(cur, end))) for cur, end in zip(starts[:-1], ends[:-1], strict=True)
    ]
    return whens, value(starts[-1], ends[-1])


def _bucket(query: Range) -> ColumnElement[int]:
    """The start of the output bucket holding a row (fixed-length buckets by arithmetic, months by a
    CASE over their starts)."""
    start: ColumnElement[int] = IngestionRollup.__table__.c.bucket_start
    if query.granularity == query.source:
        return start
    if query.granularity == "month":
        whens, last = _by_month(query, lambda cur, _end: cur)
        return case(*whens, else_=_lit(last)) if whens else _lit(last)
    length = {"hour": HOUR_MS, "day": DAY_MS, "week": WEEK_MS}[query.granularity]
    shift = MONDAY_SHIFT_MS if query.granularity == "week" else 0
    return start - (start + _lit(shift)) % _lit(length)


def _bucket_end(query: Range, bucket: ColumnElement[int]) -> ColumnElement[int]:
    if query.granularity == "month":
        whens, last = _by_month(query, lambda _cur, end: end)
        return case(*whens, else_=_lit(last)) if whens else _lit(last)
    length = {"hour": HOUR_MS, "day": DAY_MS, "week": WEEK_MS}[query.granularity]
    return bucket + _lit(length)


def _source_length(query: Range) -> int:
    return HOUR_MS if query.source == "hour" else DAY_MS


def _rows(tenant: Tenant, query: Range) -> list[ColumnElement[bool]]:
    conditions = [
        IngestionRollup.ims_org_id == tenant.org_id,
        IngestionRollup.sandbox_name == tenant.sandbox_name,
        IngestionRollup.granularity == query.source,
        IngestionRollup.bucket_start >= query.lo,
        IngestionRollup.bucket_start < query.hi,
    ]
    if query.datasets is not None:
        conditions.append(IngestionRollup.dataset_id.in_(query.datasets))
    return conditions


def _cells(tenant: Tenant, query: Range) -> Subquery:
    """One row per dataset and bucket holding rows: what the rows there add up to (see `Cell`).

    Rows are binned in an inner query and grouped by its labels, so the GROUP BY never has to match
    an expression textually; `points` (base points per bucket) is a function of the bucket."""
    table = IngestionRollup.__table__
    value = table.c[query.column]
    start = table.c.bucket_start
    if query.granularity == query.source:  # a row is its own bucket (the key is unique): nothing to group
        one = _lit(1)
        return (
            select(
                table.c.dataset_id.label("dataset_id"),
                start.label("bucket"),
                one.label("points"),
                value.label("total"),
                value.label("largest"),
                value.label("smallest"),
                one.label("rows"),
                value.label("first"),
                value.label("weighted"),
            )
            .where(*_rows(tenant, query))
            .subquery("cells")
        )
    bucket = _bucket(query)
    end = _bucket_end(query, bucket)
    length = _lit(_source_length(query))
    rows = (
        select(
            table.c.dataset_id.label("dataset_id"),
            bucket.label("bucket"),
            ((end - bucket) // length).label("points"),
            value.label("value"),
            case((start == bucket, value), else_=_lit(0)).label("first"),
            (value * ((end - start) // length)).label("weighted"),
        )
        .where(*_rows(tenant, query))
        .subquery("rollup_rows")
    )
    return (
        select(
            rows.c.dataset_id,
            rows.c.bucket,
            rows.c.points,
            cast(func.sum(rows.c.value), BigInteger).label("total"),  # PostgreSQL: bigint, not numeric
            func.max(rows.c.value).label("largest"),
            func.min(rows.c.value).label("smallest"),
            func.count().label("rows"),
            cast(func.sum(rows.c.first), BigInteger).label("first"),
            cast(func.sum(rows.c.weighted), BigInteger).label("weighted"),
        )
        .group_by(rows.c.dataset_id, rows.c.bucket, rows.c.points)
        .subquery("cells")
    )


def per_dataset(session: Session, tenant: Tenant, query: Range) -> list[Cell]:
    """Every (dataset, bucket) that has rows, with what its rows add up to: one statement, one row
    per dataset and bucket (run on the Core connection: the ORM's row handling would cost more
    than the query)."""
    rows = session.connection().execute(select(_cells(tenant, query)))
    return [
        Cell(
            str(d),
            int(b),
            int(n),
            float(t or 0),
            float(hi or 0),
            float(lo or 0),
            int(c),
            float(f or 0),
            float(w or 0),
        )
        for d, b, n, t, hi, lo, c, f, w in rows
    ]


def _downsampled(cells: Subquery, downsample: str) -> ColumnElement[Any]:
    """A counter's value in a bucket, downsampled over its base points by the rule of
    `domain/insights.py`: a base point without a row is a zero (so `min` is 0 unless every base
    point has a row, and `avg` divides by the bucket's base points, not by its rows)."""
    if downsample == "sum":
        return cells.c.total
    if downsample == "max":
        return cells.c.largest  # counters are never negative: a missing zero cannot be the max
    if downsample == "min":
        return case((cells.c.rows < cells.c.points, _lit(0)), else_=cells.c.smallest)
    if downsample == "avg":
        return cast(cells.c.total, Float) / cells.c.points
    raise ValueError(f"unknown downsample {downsample!r}")


def values_per_dataset(
    session: Session, tenant: Tenant, query: Range, downsample: str
) -> list[tuple[str, int, float]]:
    """(dataset, bucket, downsampled value) for every dataset and bucket that has rows: the grouped
    counters, downsampled by the database so three columns per point reach Python, not nine."""
    cells = _cells(tenant, query)
    statement = select(cells.c.dataset_id, cells.c.bucket, _downsampled(cells, downsample))
    return [(str(d), int(b), float(v or 0)) for d, b, v in session.connection().execute(statement)]


def combined(session: Session, tenant: Tenant, query: Range, downsample: str) -> list[Across]:
    """Per bucket, the datasets' downsampled values combined (see `Across`), grouped by the
    database: one row per bucket reaches Python."""
    cells = _cells(tenant, query)
    value = _downsampled(cells, downsample)
    statement = select(
        cells.c.bucket, func.sum(value), func.max(value), func.min(value), func.count()
    ).group_by(cells.c.bucket)
    return [
        Across(int(bucket), float(total or 0), float(largest or 0), float(smallest or 0), int(present))
        for bucket, total, largest, smallest, present in session.connection().execute(statement)
    ]


def dataset_count(session: Session, tenant: Tenant, query: Range) -> int:
    """How many datasets have rows in the range: the series an aggregate combines."""
    statement = select(func.count(func.distinct(IngestionRollup.dataset_id))).where(*_rows(tenant, query))
    return int(session.execute(statement).scalar_one())


def totals_before(
    session: Session, tenant: Tenant, column: str, before: int, datasets: tuple[str, ...] | None
) -> dict[str, int]:
    """dataset → its `column` summed over everything before `before` (whole days from the daily rows,
    the rest of `before`'s day from the hourly ones): where a cumulative series starts. Datasets
    without a row before `before` are absent."""
    day = before - before % DAY_MS
    value = IngestionRollup.__table__.c[column]
    in_tenant = [
        IngestionRollup.ims_org_id == tenant.org_id,
        IngestionRollup.sandbox_name == tenant.sandbox_name,
    ]
    if datasets is not None:
        in_tenant.append(IngestionRollup.dataset_id.in_(datasets))
    found: dict[str, int] = {}
    for source, lo, hi in (("day", None, day), ("hour", day, before)):
        if lo is not None and lo >= hi:
            continue
        conditions = [*in_tenant, IngestionRollup.granularity == source, IngestionRollup.bucket_start < hi]
        if lo is not None:
            conditions.append(IngestionRollup.bucket_start >= lo)
        statement = (
            select(IngestionRollup.dataset_id, func.sum(value))
            .where(*conditions)
            .group_by(IngestionRollup.dataset_id)
        )
        for dataset_id, total in session.execute(statement):
            found[str(dataset_id)] = found.get(str(dataset_id), 0) + int(total or 0)
    return found


# --- /metrics reads -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlowTotalsRow:
    flow_id: str
    flow_name: str
    org_id: str
    sandbox_name: str
    runs_success: int
    runs_failed: int
    runs_cancelled: int
    records_in: int
    records_out: int
    records_failed: int
    bytes_in: int
    bytes_out: int
    duration_ms_sum: int
    duration_buckets: list[int]


@dataclass(frozen=True, slots=True)
class Gauges:
    queue_depth: int  # runs scheduled and due
    in_progress: int
    earliest_due: int | None  # the smallest `schedule_next_at` of an enabled flow


def all_flow_totals(session: Session) -> list[FlowTotalsRow]:
    """Every flow's totals with its name, across tenants (an operator's scrape), in one statement."""
    query = (
        select(
            FlowTotals.flow_id,
            Flow.name,
            FlowTotals.ims_org_id,
            FlowTotals.sandbox_name,
            *[FlowTotals.__table__.c[name] for name in TOTALS_COUNTERS],
            FlowTotals.duration_buckets,
        )
        .join(Flow, Flow.id == FlowTotals.flow_id)
        .order_by(FlowTotals.ims_org_id, FlowTotals.sandbox_name, FlowTotals.flow_id)
    )
    found = []
    for row in session.execute(query):
        counters = dict(zip(TOTALS_COUNTERS, (int(v or 0) for v in row[4:-1]), strict=True))
        found.append(
            FlowTotalsRow(
                flow_id=str(row[0]),
                flow_name=str(row[1] or ""),
                org_id=str(row[2]),
                sandbox_name=str(row[3]),
                duration_buckets=[int(v) for v in row[-1] or []],
                **counters,  # every counter field, by name
            )
        )
    return found


def gauges(session: Session, now: int) -> Gauges:
    """The queue's depth, the runs in progress, and the most overdue enabled flow's slot, in one
    round trip; each count is served by an index leading with the status (or state) it filters on."""
    queue = select(func.count()).select_from(Run).where(Run.status == "scheduled", Run.ready_at <= now)
    running = select(func.count()).select_from(Run).where(Run.status == "inProgress")
    earliest = select(func.min(Flow.schedule_next_at)).where(Flow.state == "enabled")
    row = session.execute(
        select(queue.scalar_subquery(), running.scalar_subquery(), earliest.scalar_subquery())
    ).one()
    return Gauges(int(row[0] or 0), int(row[1] or 0), int(row[2]) if row[2] is not None else None)
