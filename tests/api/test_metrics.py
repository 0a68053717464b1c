"""`GET /metrics`: Prometheus' exposition of run totals, gauges and HTTP latency, checked over HTTP
against the runs API, and who may scrape it.

One world per backend, on a database of its own (its gauges count every tenant) and with no worker
threads: the test executes runs itself with `execution.run_next`, so runs left queued or in progress
stay where the test put them, and a fake clock gives runs the durations the histogram should sort.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from flowservice.api.app import create_app
from flowservice.api.metrics import UNMATCHED_ROUTE
from flowservice.domain.runs import COPY, TERMINAL, UNKNOWN, Activity, RunError, Summary
from flowservice.services import execution, runs
from flowservice.services.rollups import DURATION_BOUNDS_S
from tests import factories
from tests.e2e.test_ingestion import customers, dlz_flow, write_csv
from tests.factories import BASE, Dataflow, Tenant
from tests.live import LiveServer
from tests.worlds import Own, own_app

TOKEN = "scrape-" + secrets.token_hex(16)
RUNS = f"{BASE}/runs"
TIMED_RUNS = ((3_000, "success"), (400_000, "cancelled"), (20_000_000, "failed"), (50_000_000, "success"))
QUEUED = 2
OVERDUE_MS = 3_600_000  # a backfilling schedule that started an hour ago: its first slot is its start


@dataclass
class World:
    own: Own
    tenant: Tenant
    lenient: Dataflow  # partial ingestion: bad rows are set aside, the run succeeds
    strict: Dataflow  # one bad row fails the run
    slot_ms: int  # the overdue slot of the scheduled flow
    run_id: str  # the run in progress

    @property
    def client(self) -> TestClient:
        return self.own.client


@pytest.fixture(scope="module")
def world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("metrics")
    with own_app(database_url, home, workers=0, metrics_token=TOKEN) as own:
        client, services, clock = own.client, own.services, own.clock
        tenant = factories.new_tenant(services, client)
        zone = services.settings.landing_zone / tenant.org_id / tenant.sandbox
        write_csv(zone / "lenient" / "a.csv", customers(1, 10, {3: "missing-email", 7: "bad-amount"}))
        write_csv(zone / "lenient" / "b.csv", customers(11, 5, {}), ragged=1)
        write_csv(zone / "strict" / "a.csv", customers(1, 8, {5: "bad-amount"}))
        # flows run on demand, scheduled once in a month: not due, so they add no scheduler lag
        later = {"startTime": str(clock.now_ms() // 1000 + 30 * 86_400), "frequency": "once"}
        lenient = dlz_flow(
            client,
            tenant,
            "lenient",
            name="Lenient customers",
            scheduleParams=later,
            options={"partialIngestionPercent": 50},
        )
        strict = dlz_flow(client, tenant, "strict", name="Strict customers", scheduleParams=later)
        for flow_id in (lenient.flow_id, lenient.flow_id, strict.flow_id):
            factories.start_run(client, tenant, flow_id)
            while execution.run_next(services, "metrics-test"):
                pass

        # runs of known durations, through the functions the engine calls, while the clock moves
        who = factories.domain_tenant(services, tenant)
        for duration, status in TIMED_RUNS:
            run = runs.create_run(services, who, lenient.flow_id)
            runs.start_run(services, who, run["id"])
            clock.advance(duration)
            runs.finish_run(services, who, run["id"], status)

        # runs left waiting for a worker, and one a worker holds
        for _ in range(QUEUED):
            runs.create_run(services, who, strict.flow_id)
        running = runs.create_run(services, who, lenient.flow_id)
        runs.start_run(services, who, running["id"])

        start_s = (clock.now_ms() - OVERDUE_MS) // 1000
        dlz_flow(
            client,
            tenant,
            "nothing-here",
            name="Every 15 minutes",
            scheduleParams={"startTime": str(start_s), "frequency": "minute", "interval": "15"},
        )
        yield World(own, tenant, lenient, strict, start_s * 1000, running["id"])


def scrape(client: TestClient, token: str = TOKEN) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    text: str = response.text
    return text


def samples(text: str, name: str, **labels: str) -> list[Sample]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def value(text: str, name: str, **labels: str) -> float:
    [sample] = samples(text, name, **labels)
    return float(sample.value)


def finished_runs(world: World, flow_id: str) -> list[dict[str, Any]]:
    response = world.client.get(
        RUNS, params={"property": f"flowId=={flow_id}", "limit": "100"}, headers=world.tenant.headers()
    )
    assert response.status_code == 200, response.text
    return [run for run in response.json()["items"] if run["state"] in TERMINAL]


def metric(run: dict[str, Any], summary: str, field: str) -> int:
    return int(((run.get("metrics") or {}).get(summary) or {}).get(field) or 0)


def duration_s(run: dict[str, Any]) -> float:
    durations: dict[str, int] = run["metrics"]["durationSummary"]
    return (durations["completedAtUTC"] - durations["startedAtUTC"]) / 1000


def test_counters_add_up_to_the_runs_api_and_name_the_flow(world: World) -> None:
    text = scrape(world.client)
    tenant = world.tenant
    for flow, name in ((world.lenient, "Lenient customers"), (world.strict, "Strict customers")):
        finished = finished_runs(world, flow.flow_id)
        labels = {"flow_id": flow.flow_id, "org": tenant.org_id, "sandbox": tenant.sandbox}
        statuses = Counter(run["state"] for run in finished)
        for status in ("success", "failed", "cancelled"):
            assert value(text, "flowservice_runs_total", status=status, **labels) == statuses[status]
        for kind, field in (
            ("in", "inputRecordCount"),
            ("out", "outputRecordCount"),
            ("failed", "failedRecordCount"),
        ):
            expected = sum(metric(run, "recordSummary", field) for run in finished)
            assert value(text, "flowservice_records_total", kind=kind, **labels) == expected, kind
        for direction, field in (("in", "inputBytes"), ("out", "outputBytes")):
            expected = sum(metric(run, "sizeSummary", field) for run in finished)
            assert value(text, "flowservice_bytes_total", direction=direction, **labels) == expected, (
                direction
            )
        every = [s for family in text_string_to_metric_families(text) for s in family.samples]
        assert {s.labels["flow_name"] for s in every if s.labels.get("flow_id") == flow.flow_id} == {name}

    # the data behind the sums is real: good and bad rows, a run failed by one bad row
    lenient = {"flow_id": world.lenient.flow_id}
    assert value(text, "flowservice_records_total", kind="out", **lenient) == 2 * 13
    assert value(text, "flowservice_records_total", kind="failed", **lenient) == 2 * 3
    assert value(text, "flowservice_bytes_total", direction="out", **lenient) > 0
    strict = {"flow_id": world.strict.flow_id}
    assert value(text, "flowservice_runs_total", status="failed", **strict) == 1
    assert value(text, "flowservice_records_total", kind="failed", **strict) == 8
    assert value(text, "flowservice_database_up") == 1


def test_run_duration_histogram_is_cumulative_and_counts_every_run(world: World) -> None:
    text = scrape(world.client)
    for flow in (world.lenient, world.strict):
        finished = finished_runs(world, flow.flow_id)
        durations = [duration_s(run) for run in finished]
        labels = {"flow_id": flow.flow_id}
        buckets = sorted(
            (float(s.labels["le"]), s.value)
            for s in samples(text, "flowservice_run_duration_seconds_bucket", **labels)
        )
        assert [le for le, _ in buckets] == [*map(float, DURATION_BOUNDS_S), math.inf]
        counts = [count for _, count in buckets]
        assert counts == sorted(counts)  # cumulative: never falls
        assert counts == [sum(d <= le for d in durations) for le, _ in buckets]
        assert value(text, "flowservice_run_duration_seconds_count", **labels) == len(finished) == counts[-1]
        assert value(text, "flowservice_run_duration_seconds_sum", **labels) == pytest.approx(sum(durations))
    # the timed runs landed in different buckets, the longest past the last bound
    lenient = sorted(duration_s(run) for run in finished_runs(world, world.lenient.flow_id))
    assert lenient[-1] > DURATION_BOUNDS_S[-1] and lenient[-2] == 20_000


def test_queue_depth_runs_in_progress_and_scheduler_lag(world: World) -> None:
    text = scrape(world.client)
    assert value(text, "flowservice_queue_depth") == QUEUED
    assert value(text, "flowservice_runs_in_progress") == 1
    assert value(text, "flowservice_scheduler_lag_seconds") == OVERDUE_MS / 1000

    clock = world.own.clock
    now = clock.now_ms()
    try:
        clock.set(world.slot_ms - 1)  # before the slot: nothing is overdue
        assert value(scrape(world.client), "flowservice_scheduler_lag_seconds") == 0
    finally:
        clock.set(now)


def test_http_latency_is_labelled_with_route_templates(world: World) -> None:
    client, tenant = world.client, world.tenant
    assert client.get(f"{RUNS}/{world.run_id}", headers=tenant.headers()).status_code == 200
    refused_id, unknown_id = uuid.uuid4().hex, uuid.uuid4().hex
    assert client.get(f"{BASE}/flows/{refused_id}").status_code == 403  # the gateway answers: no token
    assert client.get(f"/no/such/{unknown_id}").status_code == 404

    text = scrape(client)
    name = "flowservice_http_request_duration_seconds"
    ok = {"method": "GET", "route": f"{BASE}/runs/{{run_id}}", "status_class": "2xx"}
    assert value(text, f"{name}_count", **ok) >= 1
    counts = [
        s.value for s in sorted(samples(text, f"{name}_bucket", **ok), key=lambda s: float(s.labels["le"]))
    ]
    assert counts == sorted(counts) and counts[-1] == value(text, f"{name}_count", **ok)
    refused = {"method": "GET", "route": f"{BASE}/flows/{{resource_id}}", "status_class": "4xx"}
    assert value(text, f"{name}_count", **refused) >= 1
    assert value(text, f"{name}_count", method="GET", route=UNMATCHED_ROUTE, status_class="4xx") >= 1
    routes = {s.labels["route"] for s in samples(text, f"{name}_count")}
    assert all(world.run_id not in r and refused_id not in r and unknown_id not in r for r in routes), routes


def test_a_set_token_is_required_even_from_loopback(world: World) -> None:
    local = TestClient(world.client.app, client=("127.0.0.1", 40000))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = local.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "FLOWSERVICE_METRICS_TOKEN" in response.json()["errorMessage"]
    assert "flowservice_runs_total" in scrape(local)
    assert "flowservice_runs_total" in scrape(world.client)  # any peer, with the token
    assert "/metrics" not in world.client.get("/openapi.json").json()["paths"]


def test_without_a_token_only_loopback_peers_are_answered(world: World) -> None:
    services = world.own.services
    open_app = create_app(
        dataclasses.replace(services, settings=services.settings.model_copy(update={"metrics_token": None}))
    )
    for peer in ("127.0.0.1", "::1"):
        response = TestClient(open_app, client=(peer, 40000)).get("/metrics")  # no Adobe headers either
        assert response.status_code == 200, peer
        assert "flowservice_queue_depth" in response.text
    for peer in ("testclient", "10.0.0.7", "2001:db8::1"):  # TestClient's default peer is "testclient"
        response = TestClient(open_app, client=(peer, 40000)).get("/metrics")
        assert response.status_code == 403, peer
        assert "loopback" in response.json()["errorMessage"]
    relayed = TestClient(open_app, client=("127.0.0.1", 40000)).get(
        "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    assert relayed.status_code == 403  # a proxy on this host would make every client look local


def test_a_real_server_sees_loopback_and_forwarded_clients(live_server: LiveServer) -> None:
    """uvicorn, as `flowservice serve` runs it, with the token unset: a scrape from this host is
    answered; one relayed by a local proxy (X-Forwarded-For, which uvicorn trusts from 127.0.0.1) is not."""
    assert httpx.get(f"{live_server.url}/metrics", timeout=10).status_code == 200
    forwarded = httpx.get(
        f"{live_server.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
    )
    assert forwarded.status_code == 403


def test_a_source_that_cannot_be_read_does_not_make_counters_fall(world: World) -> None:
    services, tenant = world.own.services, world.tenant
    later = {"startTime": str(services.clock.now_ms() // 1000 + 30 * 86_400), "frequency": "once"}
    flow = dlz_flow(world.client, tenant, "gone", name="Unreadable", scheduleParams=later)  # adds no lag
    who = factories.domain_tenant(services, tenant)
    run = runs.create_run(services, who, flow.flow_id)
    runs.start_run(services, who, run["id"])
    now = services.clock.now_ms()
    unknown = Summary(input_bytes=UNKNOWN, output_bytes=UNKNOWN, input_files=UNKNOWN, output_files=UNKNOWN)
    failed_copy = Activity(
        id=str(uuid.uuid4()), name=COPY, status="failed", started_at=now, completed_at=now, summary=unknown
    )
    runs.record_activity(services, who, run["id"], failed_copy)  # what execution records when the copy fails
    runs.finish_run(
        services,
        who,
        run["id"],
        "failed",
        [RunError("CONNECTOR-1001-500", "Error in copying the data from Source.")],
    )
    text = scrape(world.client)
    assert value(text, "flowservice_runs_total", flow_id=flow.flow_id, status="failed") == 1
    assert value(text, "flowservice_bytes_total", flow_id=flow.flow_id, direction="in") >= 0
