"""The Insights rules without a database: instants, the bucket calendar, downsampling, aggregators,
running totals, and Adobe's error body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowservice.domain import insights as model
from flowservice.domain.insights import Across, Cell, InsightsError
from flowservice.domain.tenancy import Tenant


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def refused(call: object, *args: object) -> str:
    with pytest.raises(InsightsError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.message


def test_instants_in_the_forms_clients_send() -> None:
    midnight = ms("2020-07-14T00:00:00")
    assert model.parse_instant("2020-07-14T00:00:00.000Z", "start") == midnight
    assert model.parse_instant("2020-07-14T00:00:00Z", "start") == midnight
    assert model.parse_instant("2020-07-14T02:00:00+02:00", "start") == midnight
    assert model.parse_instant("2020-07-14T00:00:00", "start") == midnight  # no zone: UTC
    assert model.parse_instant("2020-07-14", "start") == midnight
    assert model.parse_instant(" 2020-07-14T00:00:00.123456Z ", "end") == midnight + 123
    assert "'yesterday' is not an ISO 8601" in refused(model.parse_instant, "yesterday", "start")
    assert "start" in refused(model.parse_instant, "", "start")
    assert "between 1970 and 9000" in refused(model.parse_instant, "1969-12-31T23:00:00Z", "end")
    assert "between 1970 and 9000" in refused(model.parse_instant, "9999-12-31T00:00:00Z", "end")
    assert model.iso(midnight) == "2020-07-14T00:00:00Z"


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    wednesday = ms("2025-04-02T13:30:00")
    assert model.floor(wednesday, "hour") == ms("2025-04-02T13:00:00")
    assert model.floor(wednesday, "day") == ms("2025-04-02T00:00:00")
    assert model.floor(wednesday, "week") == ms("2025-03-31T00:00:00")  # a Monday
    assert model.floor(ms("2025-03-30T23:59:59"), "week") == ms(
        "2025-03-24T00:00:00"
    )  # Sunday: the week before
    assert model.floor(ms("2025-03-31T00:00:00"), "week") == ms("2025-03-31T00:00:00")
    assert model.floor(wednesday, "month") == ms("2025-04-01T00:00:00")
    assert model.following(ms("2024-12-01T00:00:00"), "month") == ms("2025-01-01T00:00:00")
    assert model.following(ms("2024-02-01T00:00:00"), "month") == ms("2024-03-01T00:00:00")
    assert model.points_in(ms("2024-02-01T00:00:00"), "month") == 29
    assert model.points_in(ms("2025-02-01T00:00:00"), "month") == 28
    assert model.points_in(ms("2025-03-31T00:00:00"), "week") == 7
    assert model.points_in(ms("2025-03-31T00:00:00"), "day") == 1
    assert model.points_in(ms("2025-03-31T05:00:00"), "hour") == 1


def test_every_bucket_overlapping_start_to_end_end_excluded() -> None:
    # Adobe's example range: the 22nd starts at `end`, so it is not in [start, end)
    days = model.buckets(ms("2020-07-14T00:00:00"), ms("2020-07-22T00:00:00"), "day")
    assert [model.iso(d) for d in days] == [f"2020-07-{n}T00:00:00Z" for n in range(14, 22)]
    # buckets partly in range are whole buckets
    hours = model.buckets(ms("2025-01-01T10:30:00"), ms("2025-01-01T12:00:01"), "hour")
    assert hours == (ms("2025-01-01T10:00:00"), ms("2025-01-01T11:00:00"), ms("2025-01-01T12:00:00"))
    months = model.buckets(ms("2024-11-15T00:00:00"), ms("2025-02-01T00:00:00"), "month")
    assert [model.iso(m) for m in months] == [
        "2024-11-01T00:00:00Z",
        "2024-12-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
    ]
    weeks = model.buckets(ms("2025-03-30T00:00:00"), ms("2025-04-01T00:00:00"), "week")
    assert weeks == (ms("2025-03-24T00:00:00"), ms("2025-03-31T00:00:00"))
    assert model.buckets(ms("2025-01-01T00:00:00"), ms("2025-01-01T00:00:00"), "day") == ()
    start, end = ms("2023-05-17T08:20:00"), ms("2024-06-03T07:00:00")
    for granularity in model.GRANULARITIES:
        listed = model.buckets(start, end, granularity)
        assert model.bucket_count(start, end, granularity) == len(listed)
        assert listed[0] <= start < model.following(listed[0], granularity)
        assert listed[-1] < end <= model.following(listed[-1], granularity)
        assert all(model.following(a, granularity) == b for a, b in zip(listed, listed[1:], strict=False))


def test_too_many_buckets_is_refused_not_truncated() -> None:
    start = ms("2020-01-01T00:00:00")
    assert len(model.buckets(start, start + model.MAX_BUCKETS * model.HOUR_MS, "hour")) == model.MAX_BUCKETS
    message = refused(model.buckets, start, start + (model.MAX_BUCKETS + 1) * model.HOUR_MS, "hour")
    assert message == (
        "The range from start to end holds 10,001 hour buckets; a request may ask for at most 10,000. "
        "Choose a coarser granularity or a shorter range."
    )


def test_names_compare_without_case_and_errors_list_what_is_allowed() -> None:
    assert model.granularity_of("DAY") == "day"
    assert model.downsample_of("Sum", "metrics[0]") == "sum"
    assert model.aggregator_of("count", "metrics[0]") == "count"
    found = model.metric_named("timeseries.ingestion.dataset.recordSuccess.count")
    assert found is not None and found.column == "record_success"
    assert model.metric_named("timeseries.ingestion.dataset.new.count") is None
    assert refused(model.granularity_of, "year") == (
        "The granularity 'year' is not supported: use one of hour, day, week, month."
    )
    assert (
        refused(model.granularity_of, None) == "The granularity is required: one of hour, day, week, month."
    )
    assert refused(model.downsample_of, None, "metrics[1]") == (
        "The downsample of metrics[1] is required: one of sum, avg, max, min."
    )
    assert refused(model.aggregator_of, "median", "metrics[0]") == (
        "The aggregator of metrics[0] 'median' is not supported: use one of sum, avg, max, min, count."
    )


def test_a_datasets_own_series_is_zero_filled() -> None:
    values = {10: 14.0, 30: 2.5}
    assert model.counter_series(values, [10, 20, 30], "sum") == [14.0, 0.0, 2.5]
    assert model.counter_series(values, [10, 20, 30], "min") == [14.0, 0.0, 2.5]  # one series: itself
    assert model.counter_series(values, [10, 20, 30], "count") == [1.0, 0.0, 1.0]


def test_aggregators_over_datasets_count_an_absent_one_as_zero() -> None:
    across = {
        10: Across(10, total=9.0, largest=6.0, smallest=3.0, present=2),
        20: Across(20, 4.0, 4.0, 4.0, 1),
    }
    calendar = [10, 20, 30]
    assert model.combined(across, calendar, "sum", 2) == [9.0, 4.0, 0.0]
    assert model.combined(across, calendar, "avg", 2) == [4.5, 2.0, 0.0]
    assert model.combined(across, calendar, "max", 2) == [6.0, 4.0, 0.0]
    assert model.combined(across, calendar, "min", 2) == [3.0, 0.0, 0.0]
    assert model.combined(across, calendar, "count", 2) == [2.0, 1.0, 0.0]
    assert model.combined({}, calendar, "avg", 0) == [0.0, 0.0, 0.0]


def test_a_running_total_downsampled_over_its_levels() -> None:
    day = model.DAY_MS
    week0, week1, week2 = 0, 7 * day, 14 * day  # the calendar's values only need to be distinct
    # week0: 10 bytes on its 2nd day, 5 on its 7th; week1: nothing; week2: 4 bytes on its 1st day
    cells = [
        Cell("d", week0, 7, 15.0, 10.0, 5.0, 2, first=0.0, weighted=10.0 * 6 + 5.0 * 1),
        Cell("d", week2, 7, 4.0, 4.0, 4.0, 1, first=4.0, weighted=4.0 * 7),
    ]
    levels = model.levels(100.0, cells, [week0, week1, week2], "week", "max")
    assert levels.values == [115.0, 115.0, 119.0] and levels.exists == [True, True, True]
    assert model.levels(100.0, cells, [week0, week1, week2], "week", "min").values == [100.0, 115.0, 119.0]
    # the daily levels of week0: 100, 110, 110, 110, 110, 110, 115
    summed = model.levels(100.0, cells, [week0, week1, week2], "week", "sum").values
    assert summed == [765.0, 7 * 115.0, 7 * 119.0]
    assert model.levels(100.0, cells, [week0], "week", "avg").values == [pytest.approx(765 / 7)]
    fresh = model.levels(None, cells[1:], [week0, week1, week2], "week", "max")
    assert fresh.values == [0.0, 0.0, 4.0] and fresh.exists == [False, False, True]
    assert model.single_level_series(fresh, "count") == [0.0, 0.0, 1.0]
    assert model.aggregate_levels([levels, fresh], 3, "sum") == [115.0, 115.0, 123.0]
    assert model.aggregate_levels([levels, fresh], 3, "min") == [0.0, 0.0, 4.0]
    assert model.aggregate_levels([levels, fresh], 3, "avg") == [57.5, 57.5, 61.5]
    assert model.aggregate_levels([levels, fresh], 3, "count") == [1.0, 1.0, 2.0]


def test_the_error_body_is_adobes() -> None:
    tenant = Tenant("ORG@AdobeOrg", "prod", "sandbox-id")
    body = model.error_body(InsightsError("Start date cannot be after end date."), tenant, 1_700_000_000_000)
    assert body == {
        "type": "http://ns.adobe.com/aep/errors/INSGHT-1000-400",
        "title": "Bad Request - Start date cannot be after end date.",
        "status": 400,
        "report": {
            "tenantInfo": {"sandboxName": "prod", "sandboxId": "sandbox-id", "imsOrgId": "ORG@AdobeOrg"},
            "additionalContext": None,
        },
        "error-chain": [
            {
                "serviceId": "INSGHT",
                "errorCode": "INSGHT-1000-400",
                "invokingServiceId": "INSGHT",
                "unixTimeStampMs": 1_700_000_000_000,
            }
        ],
    }
