"""The Observability Insights metrics, as pure functions: names, the bucket calendar, and the maths.

Adobe's metrics API is OpenTSDB underneath (digest 7.1): each dataset is one time series; a query
*downsamples* each series into buckets of the requested granularity, then *aggregates* the series
into one (or keeps them apart with `groupBy`). Our series are the ingestion rollups: a dataset's
hourly rows answer `hour`, its daily rows answer `day`, `week` and `month`. Everything here is
decided on numbers handed in, so every rule is tested without a database.

The rules, chosen once and applied everywhere:

- **Buckets** are UTC calendar buckets (hours, days, weeks starting Monday, months); the answer has
  one point for every bucket that overlaps `[start, end)`, zero where nothing happened, and each
  value covers its whole bucket (rollups cannot split an hour). So `end` is exclusive: with the
  `end` of Adobe's example, `2020-07-22T00:00:00Z`, the answer stops at the 21st, where the example
  response (a doc artefact, or OpenTSDB's inclusive end) also lists the 22nd. Half-open ranges
  tile: consecutive requests never count a bucket twice.
- **Values** are the dataset's counters as the rollups hold them: records committed
  (`recordsuccess`) and rejected (`recordfailed`, ours) by runs that finished in the bucket,
  batches (a run whose promotion made a batch: `batchsuccess` if the run succeeded, `batchfailed`
  if not; a run that failed before promotion made none), bytes of Parquet committed.
- **A missing row is a zero.** A dataset's series has a value at every base point (hour or day),
  zero where no run finished; so `min` downsampling of a week with an idle day is 0 and `avg` is
  the bucket's total over its 7 days. Across datasets likewise: a dataset without a row in a bucket
  counts as 0 for `sum`, `avg`, `max` and `min`.
- **Aggregators** combine the series of the datasets that have data in the range (with a filter:
  those of its ids that do): `sum`, `avg` = sum / number of series, `max`, `min`, and `count` = how
  many series have a data point in the bucket (a run finished there; for the cumulative `size`,
  the dataset has ingested by the bucket's end). With `groupBy` each dataset is its own group, so
  the aggregator sees one series: the value itself, or 0/1 for `count`.
- **`timeseries.ingestion.dataset.size`** is cumulative: at each base point, every byte the
  dataset was given up to that point's end. Downsampling a bucket of such levels: `max` is the
  level at the bucket's end, `min` at its first base point's end, `sum` and `avg` over the levels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flowservice.domain.tenancy import Tenant

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MONDAY_SHIFT_MS = 3 * DAY_MS  # 1970-01-01 was a Thursday: shifted by three days, weeks start on Monday

GRANULARITIES = ("hour", "day", "week", "month")
DOWNSAMPLES = ("sum", "avg", "max", "min")
AGGREGATORS = ("sum", "avg", "max", "min", "count")
FILTER_NAME = "dataSetId"

# limits: the API answers in one body (no pagination, as Adobe's), so its size is bounded up front
MAX_BUCKETS = 10_000  # per request: 416 days of hours, 27 years of days
MAX_POINTS = 200_000  # buckets x datapoints, summed over the request's metrics
MAX_METRICS = 20
MAX_DATASETS = 1_000  # ids in one filter

SERVICE_ID = "INSGHT"
BAD_PAYLOAD = "1000"
ERROR_TYPE_BASE = "http://ns.adobe.com/aep/errors/"  # http, as in Adobe's body (digest 7.1)


class InsightsError(Exception):
    """A request the metrics API refuses. Adobe's INSGHT body has no message field: the reason
    travels in the title ("Bad Request - Start date cannot be after end date.")."""

    def __init__(self, message: str, *, code: str = BAD_PAYLOAD, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    @property
    def error_code(self) -> str:
        return f"{SERVICE_ID}-{self.code}-{self.status}"

    @property
    def title(self) -> str:
        return f"Bad Request - {self.message}" if self.status == 400 else self.message


def error_body(error: InsightsError, tenant: Tenant | None, now_ms: int) -> dict[str, Any]:
    """Adobe's Observability error body, field for field (digest 7.1)."""
    return {
        "type": ERROR_TYPE_BASE + error.error_code,
        "title": error.title,
        "status": error.status,
        "report": {
            "tenantInfo": {
                "sandboxName": tenant.sandbox_name if tenant else None,
                "sandboxId": tenant.sandbox_id if tenant else None,
                "imsOrgId": tenant.org_id if tenant else None,
            },
            "additionalContext": None,
        },
        "error-chain": [
            {
                "serviceId": SERVICE_ID,
                "errorCode": error.error_code,
                "invokingServiceId": SERVICE_ID,
                "unixTimeStampMs": now_ms,
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric we answer: the rollup column behind it, and whether its series is a running total."""

    name: str
    column: str
    cumulative: bool = False


PREFIX = "timeseries.ingestion.dataset."
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(PREFIX + "recordsuccess.count", "record_success"),
        # ours: Adobe lists no failed-record metric, but every run reports its failed records
        Metric(PREFIX + "recordfailed.count", "record_failed"),
        Metric(PREFIX + "batchsuccess.count", "batch_success"),
        Metric(PREFIX + "batchfailed.count", "batch_failed"),
        Metric(PREFIX + "size", "size_bytes", cumulative=True),
        Metric(PREFIX + "dailysize", "size_bytes"),
    )
}


def metric_named(name: str) -> Metric | None:
    """Names compare without case, as granularity, downsample and aggregator do: `recordSuccess`
    typed by hand is no different question."""
    return METRICS.get(name.strip().lower())


def _one_of(value: str | None, allowed: tuple[str, ...], what: str) -> str:
    if value is None or not str(value).strip():
        raise InsightsError(f"The {what} is required: one of {', '.join(allowed)}.")
    found = str(value).strip().lower()
    if found not in allowed:
        raise InsightsError(f"The {what} '{shown(value)}' is not supported: use one of {', '.join(allowed)}.")
    return found


def granularity_of(value: str | None) -> str:
    return _one_of(value, GRANULARITIES, "granularity")


def downsample_of(value: str | None, where: str) -> str:
    return _one_of(value, DOWNSAMPLES, f"downsample of {where}")


def aggregator_of(value: str | None, where: str) -> str:
    return _one_of(value, AGGREGATORS, f"aggregator of {where}")


def shown(value: object, limit: int = 80) -> str:
    """A value as it may appear in a message: cut short, so a huge input cannot flood the answer."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- instants and the calendar ------------------------------------------------------------------


def parse_instant(text: str, field: str) -> int:
    """ISO-8601 (`2020-07-14T00:00:00.000Z`, an offset, or a date) → epoch ms; no zone means UTC."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
    except ValueError:
        raise InsightsError(
            f"The {field} '{shown(text)}' is not an ISO 8601 date-time such as 2020-07-14T00:00:00.000Z."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = _whole_ms(parsed)
    if not EARLIEST_MS <= ms < LATEST_MS:
        # rollups start in 1970; the far bound keeps every bucket's successor a valid date
        raise InsightsError(f"The {field} '{shown(text)}' must lie between 1970 and 9000.")
    return ms


def _whole_ms(moment: datetime) -> int:
    """Exact epoch ms (a float timestamp would round year-9999 instants)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso(ms: int) -> str:
    """The dps key: `2020-07-14T00:00:00Z`, as Adobe's answers have it."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_index(ms: int) -> int:
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.year * 12 + moment.month - 1


def _month_start(index: int) -> int:
    return _whole_ms(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))


FIXED = {"hour": HOUR_MS, "day": DAY_MS, "week": WEEK_MS}
EARLIEST_MS = 0
LATEST_MS = 221_845_392_000_000  # 9000-01-01T00:00:00Z


def floor(ms: int, granularity: str) -> int:
    """The start of the bucket holding `ms`."""
    if granularity == "month":
        return _month_start(_month_index(ms))
    shift = MONDAY_SHIFT_MS if granularity == "week" else 0
    return ms - (ms + shift) % FIXED[granularity]


def following(bucket: int, granularity: str) -> int:
    """The start of the bucket after the one starting at `bucket`."""
    if granularity == "month":
        return _month_start(_month_index(bucket) + 1)
    return bucket + FIXED[granularity]


def bucket_count(start: int, end: int, granularity: str) -> int:
    """How many buckets overlap `[start, end)`, computed without listing them."""
    if end <= start:
        return 0
    first, last = floor(start, granularity), floor(end - 1, granularity)
    if granularity == "month":
        return _month_index(last) - _month_index(first) + 1
    return (last - first) // FIXED[granularity] + 1


def buckets(start: int, end: int, granularity: str) -> tuple[int, ...]:
    """The starts of the buckets overlapping `[start, end)`; refuses more than MAX_BUCKETS."""
    count = bucket_count(start, end, granularity)
    if count > MAX_BUCKETS:
        raise InsightsError(
            f"The range from start to end holds {count:,} {granularity} buckets; a request may ask for "
            f"at most {MAX_BUCKETS:,}. Choose a coarser granularity or a shorter range."
        )
    found: list[int] = []
    bucket = floor(start, granularity) if count else 0
    for _ in range(count):
        found.append(bucket)
        bucket = following(bucket, granularity)
    return tuple(found)


def source_of(granularity: str) -> str:
    """Which rollup rows a granularity reads: hours for `hour`, days for everything coarser."""
    return "hour" if granularity == "hour" else "day"


def points_in(bucket: int, granularity: str) -> int:
    """How many base points (rows of `source_of(granularity)`) a bucket spans."""
    length = FIXED[source_of(granularity)]
    return (following(bucket, granularity) - bucket) // length


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One dataset's rollup rows inside one bucket of `points` base points, `rows` of them present:
    their total, largest and smallest value, the value at the bucket's first base point, and
    `weighted` = Σ value x (base points from its own to the bucket's end), for running totals."""

    dataset: str
    bucket: int
    points: int
    total: float
    largest: float
    smallest: float
    rows: int
    first: float = 0.0
    weighted: float = 0.0


@dataclass(frozen=True, slots=True)
class Across:
    """The datasets' downsampled values in one bucket, combined: their sum, max, min, and how many
    datasets had a row there (the others count as zero)."""

    bucket: int
    total: float
    largest: float
    smallest: float
    present: int


def counter_series(values: Mapping[int, float], calendar: Sequence[int], aggregator: str) -> list[float]:
    """One dataset's downsampled values (`values`: bucket → value, buckets with rows only) per
    bucket, through an aggregator over that single series: itself, or 0/1 for `count`."""
    if aggregator == "count":
        return [1.0 if b in values else 0.0 for b in calendar]
    return [values.get(b, 0.0) for b in calendar]


def combined(
    across: Mapping[int, Across], calendar: Sequence[int], aggregator: str, series: int
) -> list[float]:
    """Many datasets' downsampled values per bucket, aggregated: `series` is how many datasets are
    combined (those with data in the range; only `avg`, `max` and `min` need it); a dataset absent
    from a bucket counts as zero."""
    values: list[float] = []
    for bucket in calendar:
        found = across.get(bucket)
        if found is None:
            values.append(0.0)
        elif aggregator == "sum":
            values.append(found.total)
        elif aggregator == "avg":
            values.append(found.total / series)
        elif aggregator == "max":
            values.append(found.largest if found.present >= series else max(found.largest, 0.0))
        elif aggregator == "min":
            values.append(found.smallest if found.present >= series else min(found.smallest, 0.0))
        elif aggregator == "count":
            values.append(float(found.present))
        else:
            raise ValueError(f"unknown aggregator {aggregator!r}")
    return values


@dataclass(frozen=True, slots=True)
class Levels:
    """A running total's downsampled values per bucket, and whether the dataset had ingested by the
    bucket's end (a series exists from its first run on)."""

    values: list[float]
    exists: list[bool]


def levels(
    before: float | None, cells: Iterable[Cell], calendar: Sequence[int], granularity: str, downsample: str
) -> Levels:
    """A cumulative series (`size`): `before` is the total before the first bucket (None when the
    dataset had no row before it). Within a bucket of n base points starting at level B, the levels
    are B + c1, B + c1 + c2, …: their max is B + Σc, their min B + c1, their sum n·B + Σ c_i·(n-i+1)."""
    by_bucket = {c.bucket: c for c in cells}
    level = float(before or 0.0)
    seen = before is not None
    values: list[float] = []
    exists: list[bool] = []
    for bucket in calendar:
        cell = by_bucket.get(bucket)
        n = cell.points if cell is not None else points_in(bucket, granularity)
        total = cell.total if cell is not None else 0.0
        first = cell.first if cell is not None else 0.0
        weighted = cell.weighted if cell is not None else 0.0
        if downsample == "max":
            values.append(level + total)
        elif downsample == "min":
            values.append(level + first)
        elif downsample == "sum":
            values.append(n * level + weighted)
        elif downsample == "avg":
            values.append((n * level + weighted) / n)
        else:
            raise ValueError(f"unknown downsample {downsample!r}")
        seen = seen or cell is not None
        exists.append(seen)
        level += total
    return Levels(values, exists)


def aggregate_levels(series: Sequence[Levels], buckets_: int, aggregator: str) -> list[float]:
    """Running totals of many datasets aggregated per bucket; a dataset that has not ingested yet
    counts as zero (and not in `count`)."""
    values: list[float] = []
    n = len(series)
    for i in range(buckets_):
        column = [s.values[i] for s in series]
        if not column:
            values.append(0.0)
        elif aggregator == "sum":
            values.append(sum(column))
        elif aggregator == "avg":
            values.append(sum(column) / n)
        elif aggregator == "max":
            values.append(max(column))
        elif aggregator == "min":
            values.append(min(column))
        elif aggregator == "count":
            values.append(float(sum(1 for s in series if s.exists[i])))
        else:
            raise ValueError(f"unknown aggregator {aggregator!r}")
    return values


def single_level_series(found: Levels, aggregator: str) -> list[float]:
    """One dataset's running total through an aggregator over that single series."""
    if aggregator == "count":
        return [1.0 if e else 0.0 for e in found.exists]
    return list(found.values)
