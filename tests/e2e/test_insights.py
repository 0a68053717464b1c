"""The Observability Insights API over real runs, checked against the runs API itself.

A world of its own per backend: workers and a clock the test moves. Landing-zone flows into two
datasets run at chosen moments (two in one hour, one after midnight on a Sunday, the next Monday,
the next month; with failed records, and one run over the rejection threshold that fails), so every
granularity has buckets with several runs, one run and none. Each answer is compared with a brute
force computed here, independently of the service, from `GET /runs` (`completedAtUTC`,
`recordSummary`, `sizeSummary.outputBytes`, the state and the batch reference): for every metric,
downsample and aggregator, grouped by dataset and not. Runs imported in bulk
(`services.runs.import_runs`) are checked the same way.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice.domain.runs import COPY, PROMOTION, Activity, RunError, Summary
from flowservice.services import identity
from flowservice.services import runs as run_service
from flowservice.services.runs import RunState
from tests import factories
from tests.e2e.test_ingestion import customers, dlz_flow, write_csv
from tests.factories import BASE, Tenant
from tests.worlds import Own, own_app

METRICS_URL = "/data/infrastructure/observability/insights/metrics"
PREFIX = "timeseries.ingestion.dataset."
NAMES = (
    "recordsuccess.count",
    "recordfailed.count",
    "batchsuccess.count",
    "batchfailed.count",
    "size",
    "dailysize",
)
DOWNSAMPLES = ("sum", "avg", "max", "min")
AGGREGATORS = ("sum", "avg", "max", "min", "count")
HOUR = 3_600_000
DAY = 24 * HOUR
OPTIONS = {"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# (when the run finishes, which flow, its file: first id, rows, bad rows)
PLAN: list[tuple[str, str, int, int, dict[int, str]]] = [
    ("2025-03-20T12:00:00", "a", 1, 4, {}),
    ("2025-03-28T10:15:00", "a", 1, 10, {3: "missing-email", 7: "bad-amount"}),
    ("2025-03-28T10:40:00", "b", 1, 6, {}),
    ("2025-03-28T13:05:00", "a", 1, 4, {1: "missing-email", 2: "missing-email", 3: "bad-amount"}),  # rejected
    ("2025-03-30T23:30:00", "b", 1, 12, {5: "negative"}),  # a Sunday
    ("2025-03-31T09:00:00", "a", 1, 5, {}),  # the next Monday
    ("2025-04-01T08:00:00", "b", 1, 7, {2: "bad-date"}),  # the next month
    ("2025-04-01T08:20:00", "a", 1, 3, {}),
]
# granularity -> [start, end) of the checked range; each starts after a run, so `size` starts above 0
RANGES = {
    "hour": ("2025-03-28T11:00:00Z", "2025-03-31T11:00:00Z"),
    "day": ("2025-03-25T00:00:00Z", "2025-04-03T00:00:00Z"),
    "week": ("2025-03-24T00:00:00Z", "2025-04-14T00:00:00Z"),
    "month": ("2025-03-01T00:00:00Z", "2025-05-01T00:00:00Z"),
}


@dataclass
class World:
    own: Own
    tenant: Tenant
    datasets: dict[str, str]  # "a" | "b" -> dataset id
    flows: dict[str, str]
    runs: dict[str, list[dict[str, Any]]]  # dataset id -> its runs, from GET /runs

    @property
    def client(self) -> TestClient:
        return self.own.client


def runs_of(client: TestClient, tenant: Tenant, flow_id: str) -> list[dict[str, Any]]:
    """Every run of a flow, through the runs API's pages."""
    found: list[dict[str, Any]] = []
    url = f"{BASE}/runs?property=flowId=={flow_id}&limit=100"
    while url:
        answer = client.get(url, headers=tenant.headers())
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += body["items"]
        following = body["_links"].get("next", {}).get("href")
        url = f"{BASE}{following}" if following else ""
    return found


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("insights")
    with own_app(database_url, home, token_ttl_seconds=10**8) as own:
        own.clock.set(ms("2025-03-20T00:00:00"))
        tenant = factories.new_tenant(own.services, own.client)
        zone = own.services.settings.landing_zone / tenant.org_id / tenant.sandbox
        flows = {
            key: dlz_flow(
                own.client, tenant, f"in-{key}", mappings=factories.IDENTITY_MAPPINGS, options=OPTIONS
            )
            for key in ("a", "b")
        }
        for number, (when, key, first, count, bad) in enumerate(PLAN):
            path = zone / f"in-{key}" / f"{number}.csv"
            write_csv(path, customers(first, count, bad))
            modified = 1_700_000_000 + number * 10  # each run's window holds its own file only
            os.utime(path, (modified, modified))
            own.clock.set(ms(when))
            run_id = factories.start_run(own.client, tenant, flows[key].flow_id, (modified - 1, modified))
            run = factories.wait_for_run(own.client, tenant, run_id)
            assert run["metrics"]["durationSummary"]["completedAtUTC"] == ms(when)
        datasets = {key: flow.dataset_id for key, flow in flows.items()}
        runs = {datasets[k]: runs_of(own.client, tenant, f.flow_id) for k, f in flows.items()}
        yield World(own, tenant, datasets, {k: f.flow_id for k, f in flows.items()}, runs)


def test_the_runs_are_what_the_plan_made(world: World) -> None:
    every = [r for runs in world.runs.values() for r in runs]
    assert len(every) == len(PLAN)
    states = sorted(r["state"] for r in every)
    assert states == ["failed"] + ["success"] * (len(PLAN) - 1)
    assert sum(r["metrics"]["recordSummary"]["failedRecordCount"] for r in every) >= 6
    assert all(r["metrics"]["sizeSummary"]["outputBytes"] > 0 for r in every if r["state"] == "success")


# --- the brute force, from the runs API ------------------------------------------------------------


def facts(run: dict[str, Any]) -> dict[str, float]:
    """What one run adds to each metric, read off its run object (an absent count is nothing)."""
    records = run["metrics"].get("recordSummary", {})
    written = run["metrics"].get("sizeSummary", {}).get("outputBytes", 0)
    batched = any(
        (info.get("reference") or {}).get("type") == "Batch"
        for activity in run.get("activities") or []
        for info in activity.get("targetInfo") or []
    )
    return {
        "recordsuccess.count": records.get("outputRecordCount", 0),
        "recordfailed.count": records.get("failedRecordCount", 0),
        "batchsuccess.count": float(batched and run["state"] == "success"),
        "batchfailed.count": float(batched and run["state"] != "success"),
        "size": written,
        "dailysize": written,
    }


FOLD: dict[str, Callable[[list[float]], float]] = {
    "sum": lambda v: float(sum(v)),
    "avg": lambda v: sum(v) / len(v),
    "max": max,
    "min": min,
}


def calendar(start: int, end: int, granularity: str) -> list[tuple[int, int]]:
    """[bucket start, bucket end) of every bucket overlapping [start, end), by datetime arithmetic."""
    moment = datetime.fromtimestamp(start / 1000, tz=UTC)
    if granularity == "hour":
        moment = moment.replace(minute=0, second=0, microsecond=0)
    else:
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "week":
        moment = datetime.fromordinal(moment.toordinal() - moment.weekday()).replace(tzinfo=UTC)
    if granularity == "month":
        moment = moment.replace(day=1)
    found = []
    while int(moment.timestamp() * 1000) < end:
        if granularity == "month":
            following = moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
        else:
            following = datetime.fromtimestamp(
                moment.timestamp() + {"hour": 3600, "day": 86400, "week": 7 * 86400}[granularity], tz=UTC
            )
        found.append((int(moment.timestamp() * 1000), int(following.timestamp() * 1000)))
        moment = following
    return found


def expected(
    runs: dict[str, list[dict[str, Any]]],
    name: str,
    start: int,
    end: int,
    granularity: str,
    downsample: str,
    aggregator: str,
    datasets: list[str] | None,
    group_by: bool,
) -> list[dict[str, Any]]:
    """The datapoints the API should answer, from base points (hours or days) of each dataset."""
    buckets = calendar(start, end, granularity)
    step = HOUR if granularity == "hour" else DAY
    cumulative = name == "size"
    pool = {
        d: [(r["metrics"]["durationSummary"]["completedAtUTC"], facts(r)[name]) for r in rs]
        for d, rs in runs.items()
    }

    def base(dataset: str, point: int) -> float:
        found = pool.get(dataset, [])
        if cumulative:
            return float(sum(v for at, v in found if at < point + step))
        return float(sum(v for at, v in found if point <= at < point + step))

    def has_point(dataset: str, lo: int, hi: int) -> bool:
        return any((at < hi) if cumulative else (lo <= at < hi) for at, _ in pool.get(dataset, []))

    def value(dataset: str, lo: int, hi: int) -> float:
        points = [base(dataset, p) for p in range(lo, hi, step)]
        return FOLD[downsample](points)

    def one(dataset: str, lo: int, hi: int) -> float:
        return float(has_point(dataset, lo, hi)) if aggregator == "count" else value(dataset, lo, hi)

    def key(at: int) -> str:
        return datetime.fromtimestamp(at / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    if group_by:
        assert datasets is not None
        return [
            {"groupBy": {"dataSetId": d}, "dps": {key(lo): one(d, lo, hi) for lo, hi in buckets}}
            for d in datasets
        ]
    whole = (buckets[0][0], buckets[-1][1]) if buckets else (0, 0)
    series = [d for d in (datasets if datasets is not None else runs) if has_point(d, *whole)]
    dps = {}
    for lo, hi in buckets:
        values = [value(d, lo, hi) for d in series]
        if not series:
            dps[key(lo)] = 0.0
        elif aggregator == "count":
            dps[key(lo)] = float(sum(has_point(d, lo, hi) for d in series))
        else:
            dps[key(lo)] = FOLD[aggregator](values)
    return [{"groupBy": {}, "dps": dps}]


def ask(world: World, body: dict[str, Any], tenant: Tenant | None = None) -> Any:
    answer = world.client.post(METRICS_URL, json=body, headers=(tenant or world.tenant).headers())
    assert answer.status_code == 200, answer.text
    return answer.json()


def approx(datapoints: list[dict[str, Any]]) -> Any:
    return [{"groupBy": d["groupBy"], "dps": pytest.approx(d["dps"])} for d in datapoints]


Shape = tuple[list[dict[str, Any]], list[str] | None, bool]  # filters, the datasets they name, groupBy


def check(
    world: World,
    runs: dict[str, list[dict[str, Any]]],
    span: tuple[str, str],
    granularity: str,
    asked: list[tuple[str, str, str, Shape]],
) -> None:
    """Ask for (metric, downsample, aggregator, shape) in requests of 20 metrics; compare each
    answer with the brute force over `runs`."""
    start, end = span
    for chunk in range(0, len(asked), 20):
        part = asked[chunk : chunk + 20]
        metrics = [
            {
                "name": PREFIX + name,
                "filters": filters,
                "aggregator": aggregator.upper(),
                "downsample": downsample,
            }
            for name, downsample, aggregator, (filters, _, _) in part
        ]
        body = {"start": start, "end": end, "granularity": granularity.capitalize(), "metrics": metrics}
        answer = ask(world, body)
        assert len(answer["metricResponses"]) == len(metrics)
        for response, (name, downsample, aggregator, (filters, datasets, group_by)) in zip(
            answer["metricResponses"], part, strict=True
        ):
            assert response["metric"] == PREFIX + name
            assert response["filters"] == [{"groupBy": False, **f} for f in filters]
            assert response["granularity"] == granularity.upper()
            want = expected(
                runs,
                name,
                ms(start[:-1]),
                ms(end[:-1]),
                granularity,
                downsample,
                aggregator,
                datasets,
                group_by,
            )
            assert response["datapoints"] == approx(want), (name, downsample, aggregator, group_by)


@pytest.mark.parametrize("granularity", list(RANGES))
def test_every_metric_downsample_and_aggregator_matches_the_runs(world: World, granularity: str) -> None:
    a, b = world.datasets["a"], world.datasets["b"]
    # grouped per dataset (with an id nobody has), all datasets together, one dataset alone
    shapes: list[Shape] = [
        ([{"name": "dataSetId", "value": f"{a}|{b}|nobody", "groupBy": True}], [a, b, "nobody"], True),
        ([], None, False),
        ([{"name": "dataSetId", "value": a}], [a], False),
    ]
    asked = list(itertools.product(NAMES, DOWNSAMPLES, AGGREGATORS, shapes))
    check(world, world.runs, RANGES[granularity], granularity, asked)


def test_a_day_by_hand(world: World) -> None:
    """The 28th of March, counted from the plan without the brute force: a took 8 of 10 records, then
    a run rejected all 4 of its records (over the threshold nothing is committed); b took 6 of 6."""
    a, b = world.datasets["a"], world.datasets["b"]
    day = {"start": "2025-03-28T00:00:00.000Z", "end": "2025-03-29T00:00:00.000Z", "granularity": "day"}
    metrics = [
        {
            "name": PREFIX + name,
            "filters": [{"name": "dataSetId", "value": f"{a}|{b}", "groupBy": True}],
            "aggregator": "sum",
            "downsample": "sum",
        }
        for name in ("recordsuccess.count", "recordfailed.count", "batchsuccess.count", "batchfailed.count")
    ]
    answer = ask(world, {**day, "metrics": metrics})
    got = [[d["dps"]["2025-03-28T00:00:00Z"] for d in r["datapoints"]] for r in answer["metricResponses"]]
    assert got == [[8.0, 6.0], [2.0 + 4.0, 0.0], [1.0, 1.0], [1.0, 0.0]]
    assert json.dumps(answer["metricResponses"][0]["datapoints"][0]) == json.dumps(
        {"groupBy": {"dataSetId": a}, "dps": {"2025-03-28T00:00:00Z": 8.0}}
    )


def test_every_bucket_is_present_and_an_empty_range_has_none(world: World) -> None:
    plain: dict[str, Any] = {"name": PREFIX + "recordsuccess.count", "aggregator": "sum", "downsample": "sum"}
    body = {"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T05:00:00Z", "granularity": "hour"}
    [response] = ask(world, {**body, "metrics": [plain]})["metricResponses"]
    assert response["datapoints"] == [
        {"groupBy": {}, "dps": {f"2025-06-01T0{h}:00:00Z": 0.0 for h in range(5)}}
    ]
    grouped = {**plain, "filters": [{"name": "dataSetId", "value": "x|y", "groupBy": True}]}
    empty, by_id = ask(world, {**body, "end": body["start"], "metrics": [plain, grouped]})["metricResponses"]
    assert empty["datapoints"] == [{"groupBy": {}, "dps": {}}]
    assert by_id["datapoints"] == [
        {"groupBy": {"dataSetId": "x"}, "dps": {}},
        {"groupBy": {"dataSetId": "y"}, "dps": {}},
    ]


def test_another_org_sees_nothing_of_these_datasets(world: World) -> None:
    stranger = factories.new_tenant(world.own.services, world.client)
    ids = "|".join(world.datasets.values())
    start, end = RANGES["day"]
    metrics = [
        {"name": PREFIX + name, "filters": filters, "aggregator": "sum", "downsample": "max"}
        for name in NAMES
        for filters in ([{"name": "dataSetId", "value": ids, "groupBy": True}], [])
    ]
    answer = ask(world, {"start": start, "end": end, "granularity": "day", "metrics": metrics}, stranger)
    for response in answer["metricResponses"]:
        assert response["datapoints"]
        for datapoint in response["datapoints"]:
            assert len(datapoint["dps"]) == 9 and set(datapoint["dps"].values()) == {0.0}
    # another sandbox of the same org is another tenant too
    identity.create_sandbox(world.own.services.db, world.tenant.org_id, "dev")
    answer = ask(
        world,
        {"start": start, "end": end, "granularity": "day", "metrics": metrics},
        world.tenant.in_sandbox("dev"),
    )
    assert all(set(d["dps"].values()) == {0.0} for r in answer["metricResponses"] for d in r["datapoints"])


def test_runs_imported_in_bulk_count_too(world: World) -> None:
    """300 finished runs through the store's bulk path, over ten days, into a third dataset."""
    own, tenant = world.own, world.tenant
    flow = dlz_flow(own.client, tenant, "in-bulk", mappings=factories.IDENTITY_MAPPINGS)
    who = factories.domain_tenant(own.services, tenant)
    rng = random.Random(5)
    first = ms("2025-05-01T00:00:00")
    docs = [
        bulk_run(who, {"id": flow.flow_id}, flow.target_id, first + rng.randrange(10 * DAY), rng)
        for _ in range(300)
    ]
    run_service.import_runs(own.services, who, docs[:150])
    run_service.import_runs(own.services, who, docs[150:])
    imported = {flow.dataset_id: runs_of(own.client, tenant, flow.flow_id)}
    assert len(imported[flow.dataset_id]) == 300
    span = ("2025-04-30T00:00:00Z", "2025-05-12T00:00:00Z")
    dataset = flow.dataset_id
    shapes: list[Shape] = [
        ([{"name": "dataSetId", "value": dataset, "groupBy": True}], [dataset], True),
        ([{"name": "dataSetId", "value": dataset}], [dataset], False),
    ]
    for granularity in ("day", "hour"):
        asked = list(itertools.product(NAMES, ("sum", "max"), ("sum", "count"), shapes))
        check(world, imported, span, granularity, asked)
    start, end = span
    totals = ask(
        world,
        {
            "start": start,
            "end": end,
            "granularity": "month",
            "metrics": [
                {
                    "name": PREFIX + "recordsuccess.count",
                    "filters": [{"name": "dataSetId", "value": flow.dataset_id}],
                    "aggregator": "sum",
                    "downsample": "sum",
                }
            ],
        },
    )
    records = sum(r["metrics"]["recordSummary"]["outputRecordCount"] for r in imported[flow.dataset_id])
    assert sum(totals["metricResponses"][0]["datapoints"][0]["dps"].values()) == records > 0


def bulk_run(
    tenant: Any, flow: dict[str, Any], target_id: str, completed: int, rng: random.Random
) -> dict[str, Any]:
    """A finished run as the engine leaves one: ~15 % rejected, ~5 % failed before promotion."""
    total = rng.randint(1, 400)
    copy_failed = rng.random() < 0.05
    rejected = not copy_failed and rng.random() < 0.15
    bad = total if rejected else rng.randint(0, 3)
    started = completed - 4_000
    doc = run_service.new_run_document(tenant, flow, client_id="bulk", now=started - 1_000)
    copy = Activity(
        str(uuid.uuid4()),
        COPY,
        "failed" if copy_failed else "success",
        started,
        started + 1_000 if not copy_failed else completed,
        summary=Summary(total * 50, total * 50, total, total, None, 1, 1),
    )
    activities = [copy]
    if not copy_failed:
        good = total - bad
        activities.append(
            Activity(
                str(uuid.uuid4()),
                PROMOTION,
                "failed" if rejected else "success",
                started + 1_000,
                completed,
                summary=Summary(
                    total * 50, 0 if rejected else good * 30 + 100, total, 0 if rejected else good, bad, 1, 1
                ),
                target_info=[
                    {
                        "id": target_id,
                        "type": "TargetConnection",
                        "reference": {"type": "Batch", "ids": [uuid.uuid4().hex]},
                    }
                ],
            )
        )
    failed = copy_failed or rejected
    errors = [RunError("CONNECTOR-2001-500", "Error in processing the copied data.")] if failed else []
    state = RunState("failed" if failed else "success", started, completed, activities, errors)
    return state.apply(doc)


# --- refusals --------------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "start": "2025-03-01T00:00:00Z",
    "end": "2025-03-02T00:00:00Z",
    "granularity": "day",
    "metrics": [{"name": PREFIX + "recordsuccess.count", "aggregator": "sum", "downsample": "sum"}],
}


def metric(**changes: Any) -> dict[str, Any]:
    found = {**GOOD["metrics"][0], **changes}
    return {**GOOD, "metrics": [{k: v for k, v in found.items() if v is not None}]}


BAD: list[tuple[str, Any, str]] = [
    ("start after end", {**GOOD, "start": "2025-03-03T00:00:00Z"}, "Start date cannot be after end date."),
    (
        "unknown metric",
        metric(name="timeseries.ingestion.dataset.new.count"),
        "The metric 'timeseries.ingestion.dataset.new.count' of metrics[0] is not supported: use one of ",
    ),
    (
        "missing downsample",
        metric(downsample=None),
        "The downsample of metrics[0] is required: one of sum, avg, max, min.",
    ),
    (
        "unknown downsample",
        metric(downsample="median"),
        "The downsample of metrics[0] 'median' is not supported: use one of sum, avg, max, min.",
    ),
    (
        "missing aggregator",
        metric(aggregator=None),
        "The aggregator of metrics[0] is required: one of sum, avg, max, min, count.",
    ),
    (
        "unknown aggregator",
        metric(aggregator="p99"),
        "The aggregator of metrics[0] 'p99' is not supported: use one of sum, avg, max, min, count.",
    ),
    (
        "bad granularity",
        {**GOOD, "granularity": "fortnight"},
        "The granularity 'fortnight' is not supported: use one of hour, day, week, month.",
    ),
    (
        "missing granularity",
        {k: v for k, v in GOOD.items() if k != "granularity"},
        "The granularity is required: one of hour, day, week, month.",
    ),
    (
        "unknown filter",
        metric(filters=[{"name": "flowId", "value": "x"}]),
        "The filter 'flowId' of metrics[0].filters[0] is not supported: only dataSetId is.",
    ),
    (
        "two filters",
        metric(filters=[{"name": "dataSetId", "value": "x"}, {"name": "dataSetId", "value": "y"}]),
        "metrics[0] has 2 dataSetId filters; give one, with the ids joined by '|'.",
    ),
    (
        "empty id",
        metric(filters=[{"name": "dataSetId", "value": "a||b"}]),
        "The dataSetId filter of metrics[0] has an empty id in 'a||b'.",
    ),
    (
        "bad date",
        {**GOOD, "start": "last tuesday"},
        "The start 'last tuesday' is not an ISO 8601 date-time such as 2020-07-14T00:00:00.000Z.",
    ),
    ("no metrics", {**GOOD, "metrics": []}, "At least one metric is required in metrics."),
    ("unknown field", {**GOOD, "limit": 5}, "Unknown field 'limit'."),
    ("unknown nested field", metric(rate=True), "Unknown field 'metrics.0.rate'."),
    (
        "unknown filter field",
        metric(filters=[{"name": "dataSetId", "value": "x", "op": "eq"}]),
        "Unknown field 'metrics.0.filters.0.op'.",
    ),
    ("wrong type", {**GOOD, "metrics": "all"}, "The field 'metrics' is invalid: "),
    ("missing start", {k: v for k, v in GOOD.items() if k != "start"}, "The field 'start' is required."),
    (
        "too many buckets",
        {**GOOD, "start": "2020-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z", "granularity": "hour"},
        "The range from start to end holds 43,848 hour buckets; a request may ask for at most 10,000. Choose a coarser granularity or a shorter range.",
    ),
]


@pytest.mark.parametrize(("body", "title"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_payloads_get_adobes_insght_body(world: World, body: Any, title: str) -> None:
    answer = world.client.post(METRICS_URL, json=body, headers=world.tenant.headers())
    assert_refused(world, answer.status_code, answer.json(), title)


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        (b'{"start": "2025-03-01T00:00:00Z",', "The request body is not valid JSON: "),
        (b"", "The request body cannot be empty."),
        (b"[1, 2]", "The request body is invalid: "),
    ],
    ids=["malformed", "empty", "not an object"],
)
def test_unreadable_bodies_get_the_insght_body_too(world: World, raw: bytes, title: str) -> None:
    headers = {**world.tenant.headers(), "Content-Type": "application/json"}
    answer = world.client.post(METRICS_URL, content=raw, headers=headers)
    assert_refused(world, answer.status_code, answer.json(), title)


def assert_refused(world: World, status: int, body: dict[str, Any], title: str) -> None:
    assert status == 400, body
    [sandbox] = [
        s for s in identity.list_sandboxes(world.own.services.db, world.tenant.org_id) if s.name == "prod"
    ]
    assert body["title"].startswith("Bad Request - " + title), body["title"]
    assert body == {
        "type": "http://ns.adobe.com/aep/errors/INSGHT-1000-400",
        "title": body["title"],
        "status": 400,
        "report": {
            "tenantInfo": {"sandboxName": "prod", "sandboxId": sandbox.id, "imsOrgId": world.tenant.org_id},
            "additionalContext": None,
        },
        "error-chain": [
            {
                "serviceId": "INSGHT",
                "errorCode": "INSGHT-1000-400",
                "invokingServiceId": "INSGHT",
                "unixTimeStampMs": world.own.clock.now_ms(),
            }
        ],
    }


def test_too_many_datapoints_are_refused(world: World) -> None:
    ids = "|".join(f"d{n}" for n in range(1000))
    body = {
        **GOOD,
        "start": "2024-01-01T00:00:00Z",
        "end": "2025-01-01T00:00:00Z",
        "metrics": [
            {**GOOD["metrics"][0], "filters": [{"name": "dataSetId", "value": ids, "groupBy": True}]}
        ],
    }
    answer = world.client.post(METRICS_URL, json=body, headers=world.tenant.headers())
    assert_refused(world, answer.status_code, answer.json(), "The answer would hold 366,000 datapoints")


def test_the_gateway_still_answers_first(world: World) -> None:
    answer = world.client.post(
        METRICS_URL, json=GOOD, headers={**world.tenant.headers(), "Authorization": ""}
    )
    assert answer.status_code == 403
    assert answer.json() == {"error_code": "403010", "message": "Oauth token is missing."}
