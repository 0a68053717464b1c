"""The scheduler with a clock the test moves: one run per slot, whatever happens around it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flowservice.api.app import create_app
from flowservice.scheduler.loop import Scheduler
from flowservice.services import scheduling
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.store.tables import Run
from tests import factories
from tests.clock import FakeClock
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import BASE, Tenant

MIN = 60_000
START = 1_800_000_000  # seconds: 2027-01-15


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[tuple[Services, TestClient, FakeClock]]:
    """Services on a database of their own (a scheduler serves every tenant of its database)."""
    url = f"sqlite:///{tmp_path / 'sched.db'}" if database_url.startswith("sqlite") else create_pg_database()
    settings = Settings.load(home=tmp_path, database_url=url, public_url="http://testserver")
    migrate.upgrade(settings.database_url)
    clock = FakeClock(START * 1000 - 10 * MIN)
    services = Services.from_settings(settings, clock=clock)
    try:
        with TestClient(create_app(services)) as client:
            yield services, client, clock
    finally:
        services.close()
        if not url.startswith("sqlite"):
            drop_pg_database(url)


def scheduled_flow(client: TestClient, tenant: Tenant, **schedule: Any) -> str:
    params = {"startTime": str(START), "frequency": "minute", "interval": "15", **schedule}
    return factories.dataflow(client, tenant, scheduleParams=params).flow_id


def windows(services: Services, flow_id: str) -> list[tuple[int | None, int | None]]:
    with services.db.reader() as session:
        rows = session.scalars(select(Run).where(Run.flow_id == flow_id).order_by(Run.window_end))
        return [(r.window_start, r.window_end) for r in rows]


def test_one_run_per_slot_with_backfill(world: tuple[Services, TestClient, FakeClock]) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    flow = scheduled_flow(client, tenant)
    scheduler = Scheduler(services)
    assert scheduler.tick() == []  # before the start time
    clock.set(START * 1000)
    [first] = scheduler.tick()
    assert first.flow_id == flow and first.slot == START * 1000
    assert scheduler.tick() == []  # the same moment again: nothing new
    clock.advance(15 * MIN)
    assert len(scheduler.tick()) == 1
    clock.advance(14 * MIN)
    assert scheduler.tick() == []
    assert windows(services, flow) == [(0, START * 1000), (START * 1000, START * 1000 + 15 * MIN)]
    run = client.get(f"{BASE}/runs?property=flowId=={flow}&limit=1", headers=tenant.headers()).json()[
        "items"
    ][0]
    assert run["state"] == "scheduled" and run["params"] == {
        "windowStartTime": START,
        "windowEndTime": START + 900,
    }
    assert factories.get(client, tenant, "flows", flow)["lastRunDetails"]["id"] == run["id"]


def test_without_backfill_the_first_window_starts_at_the_start_time(
    world: tuple[Services, TestClient, FakeClock],
) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    flow = scheduled_flow(client, tenant, backfill="false", frequency="hour", interval="1")
    scheduler = Scheduler(services)
    clock.set(START * 1000)
    assert scheduler.tick() == []
    clock.set(START * 1000 + 60 * MIN)
    assert len(scheduler.tick()) == 1
    assert windows(services, flow) == [(START * 1000, START * 1000 + 60 * MIN)]


def test_two_schedulers_at_once_create_each_run_once(world: tuple[Services, TestClient, FakeClock]) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    flows = [scheduled_flow(client, tenant) for _ in range(12)]
    first, second = Scheduler(services), Scheduler(services)
    barrier = threading.Barrier(2)
    made: list[list[Any]] = [[], []]

    def run(index: int, scheduler: Scheduler) -> None:
        barrier.wait()
        made[index] = scheduler.tick()

    for slot in range(3):
        clock.set(START * 1000 + slot * 15 * MIN)
        threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(made[0]) + len(made[1]) == len(flows)
    for flow in flows:
        assert len(windows(services, flow)) == 3


def test_a_crowded_slot_is_shared_by_lanes_and_made_once(
    world: tuple[Services, TestClient, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More flows due at once than one batch holds: on PostgreSQL two lanes share them."""
    services, client, clock = world
    monkeypatch.setattr(scheduling, "BATCH", 3)
    tenant = factories.new_tenant(services, client)
    flows = [scheduled_flow(client, tenant) for _ in range(20)]
    clock.set(START * 1000)
    made = Scheduler(services).tick()
    assert sorted(c.flow_id for c in made) == sorted(flows)
    assert len({c.run_id for c in made}) == 20
    for flow in flows:
        assert windows(services, flow) == [(0, START * 1000)]


def test_disabled_flows_wait_and_enabling_catches_up_once(
    world: tuple[Services, TestClient, FakeClock],
) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    flow = scheduled_flow(client, tenant)
    scheduler = Scheduler(services)
    clock.set(START * 1000)
    assert len(scheduler.tick()) == 1
    client.post(f"{BASE}/flows/{flow}/action?op=disable", headers=tenant.headers())
    clock.advance(60 * MIN)
    assert scheduler.tick() == []
    client.post(f"{BASE}/flows/{flow}/action?op=enable", headers=tenant.headers())
    [caught_up] = scheduler.tick()
    assert caught_up.slot == START * 1000 + 60 * MIN
    assert windows(services, flow)[-1] == (START * 1000, START * 1000 + 60 * MIN)  # nothing skipped


def test_downtime_is_caught_up_once_and_a_clock_jump_back_creates_nothing(
    world: tuple[Services, TestClient, FakeClock],
) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    flow = scheduled_flow(client, tenant)
    clock.set(START * 1000)
    Scheduler(services).tick()
    clock.set(START * 1000 + 5 * 60 * MIN + 3 * MIN)  # down for five hours
    restarted = Scheduler(services)
    assert len(restarted.tick()) == 1
    assert windows(services, flow)[-1] == (START * 1000, START * 1000 + 300 * MIN)
    clock.set(START * 1000 + 30 * MIN)  # the clock jumps back
    assert restarted.tick() == []
    clock.set(START * 1000 + 315 * MIN)
    assert len(restarted.tick()) == 1
    assert len(windows(services, flow)) == 3


def test_once_flows_fire_once_and_patched_schedules_keep_their_windows(
    world: tuple[Services, TestClient, FakeClock],
) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    once = factories.dataflow(
        client, tenant, scheduleParams={"startTime": str(START), "frequency": "once"}
    ).flow_id
    hourly = scheduled_flow(client, tenant, frequency="hour", interval="1")
    scheduler = Scheduler(services)
    clock.set(START * 1000 + 5 * MIN)
    assert {c.flow_id for c in scheduler.tick()} == {once, hourly}
    clock.advance(24 * 60 * MIN)
    assert [c.flow_id for c in scheduler.tick()] == [hourly]
    tenant = tenant.renewed(client)  # a day later the first token has expired
    etag = factories.get(client, tenant, "flows", hourly)["etag"]
    patched = client.patch(
        f"{BASE}/flows/{hourly}",
        json=[{"op": "replace", "path": "/scheduleParams/interval", "value": "6"}],
        headers=tenant.headers(**{"If-Match": etag}),
    )
    assert patched.status_code == 200, patched.text
    last_end = windows(services, hourly)[-1][1]
    assert last_end is not None
    clock.set(last_end + 5 * 60 * MIN)
    assert scheduler.tick() == []
    clock.set(START * 1000 + 30 * 60 * MIN)
    assert len(scheduler.tick()) == 1
    assert windows(services, hourly)[-1] == (last_end, START * 1000 + 30 * 60 * MIN)
    assert len(windows(services, once)) == 1


def test_the_scheduler_thread_ticks_by_itself(world: tuple[Services, TestClient, FakeClock]) -> None:
    services, client, clock = world
    tenant = factories.new_tenant(services, client)
    flow = scheduled_flow(client, tenant)
    created = threading.Event()
    services.run_listeners.append(lambda _run_id: created.set())
    clock.set(START * 1000)
    scheduler = Scheduler(services)
    scheduler.start()
    try:
        assert created.wait(timeout=30), "the scheduler thread created no run"
    finally:
        scheduler.stop()
    assert len(windows(services, flow)) == 1
