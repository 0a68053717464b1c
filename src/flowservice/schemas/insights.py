"""The request body of `POST /data/infrastructure/observability/insights/metrics` (digest 7.1).

Only the shape is checked here (unknown fields refused, strings where strings go); what the values
mean (metric names, granularity, aggregator, dates) is checked by `services/insights.py`, whose
messages list what is allowed. `granularity`, `aggregator` and `downsample` are optional in the
model so that leaving one out gets that message rather than pydantic's.
"""

from __future__ import annotations

from pydantic import Field

from flowservice.schemas import WireModel


class MetricFilter(WireModel):
    name: str = Field(max_length=64, examples=["dataSetId"], description="only `dataSetId` is supported")
    value: str = Field(
        max_length=100_000, description="one dataset id, or several joined with `|`", examples=["5edc…|5edd…"]
    )
    groupBy: bool = Field(default=False, description="one datapoint per dataset id instead of one for all")


class MetricQuery(WireModel):
    name: str = Field(max_length=256, examples=["timeseries.ingestion.dataset.recordsuccess.count"])
    filters: list[MetricFilter] = Field(default_factory=list, max_length=16)
    aggregator: str | None = Field(
        default=None, max_length=16, description="sum | avg | max | min | count: how datasets combine"
    )
    downsample: str | None = Field(
        default=None, max_length=16, description="sum | avg | max | min: how a bucket's points combine"
    )


class MetricsRequest(WireModel):
    start: str = Field(
        max_length=64, examples=["2020-07-14T00:00:00.000Z"], description="ISO 8601, inclusive"
    )
    end: str = Field(max_length=64, examples=["2020-07-22T00:00:00.000Z"], description="ISO 8601, exclusive")
    granularity: str | None = Field(
        default=None, max_length=16, examples=["day"], description="hour | day | week | month (any case)"
    )
    metrics: list[MetricQuery] = Field(max_length=64)
