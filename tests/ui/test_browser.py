"""The pages in a real headless Chromium (Debian's, driven by Playwright) against a live server.

The story a user lives: sign in, find a dataflow and its runs, open a run, check its numbers against
the API, download its failed records; then start a run and watch it go from scheduled to success
without reloading. The server runs without workers, and a `flowservice worker` process is started
when the test wants runs to move, so "scheduled" is really seen before "success".

With FLOWSERVICE_SCREENSHOTS=DIR the three main pages are saved there as PNG (`make screenshots`
writes docs/screenshots/).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowservice.domain.humanize import count_text
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests import factories
from tests.e2e.test_ingestion import customers, write_csv
from tests.factories import BASE, Tenant
from tests.live import LiveServer, serve, worker
from tests.services import unavailable
from tests.ui import run_cells

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    path = os.environ.get("FLOWSERVICE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        unavailable("Chromium", f"no browser at {path} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Settings, dict[str, str]]]:
    home = tmp_path_factory.mktemp("browser-home")
    settings = Settings.load(home=home, database_url=f"sqlite:///{home / 'ui.db'}")
    migrate.upgrade(settings.database_url)
    env = {
        "FLOWSERVICE_HOME": str(home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url,
        "FLOWSERVICE_WORKERS": "0",
        "FLOWSERVICE_SCHEDULER": "false",
        "FLOWSERVICE_POLL_SECONDS": "0.2",
    }
    with serve(home, env=env) as server:
        yield server, settings, env


def finished(client: httpx.Client, tenant: Tenant, run_id: str) -> dict[str, Any]:
    return factories.wait_for_run(client, tenant, run_id, timeout=60)  # type: ignore[arg-type]


def seed(
    server: LiveServer, settings: Settings, env: dict[str, str]
) -> tuple[Tenant, str, list[dict[str, Any]]]:
    """A dataflow with three runs over three files (some bad records), ingested by a real worker."""
    services = Services.from_settings(settings)
    client = httpx.Client(base_url=server.url, timeout=30)
    try:
        tenant = factories.new_tenant(services, client)  # type: ignore[arg-type]
        folder = settings.landing_zone / tenant.org_id / "prod" / "orders"
        now_s = int(time.time())
        files = [
            (1, 40, {}, 300),
            (101, 60, {105: "missing-email", 130: "bad-amount"}, 200),
            (201, 80, {220: "negative"}, 100),
        ]
        for first, n, bad, age in files:
            path = folder / f"orders-{first}.csv"
            write_csv(path, customers(first, n, bad))
            os.utime(path, (now_s - age, now_s - age))
        flow = factories.dataflow(
            client,  # type: ignore[arg-type]
            tenant,
            name="Orders from the landing zone",
            source={
                "name": "orders folder",
                "data": {"format": "delimited"},
                "params": {"path": "orders", "type": "folder"},
                "connectionSpec": {"id": "26f526f2-58f4-4712-961d-e41bf1ccc0e8", "version": "1.0"},
            },
            mappings=factories.IDENTITY_MAPPINGS,
            scheduleParams={"startTime": "1700000000", "frequency": "once"},
            options={"partialIngestionPercent": 10, "errorDiagnosticsEnabled": True},
        ).flow_id
        windows = [(0, now_s - 250), (now_s - 250, now_s - 150), (now_s - 150, now_s - 50)]
        runs = []
        with worker(env, settings.home):
            for window in windows:
                run_id = factories.start_run(client, tenant, flow, window=window)  # type: ignore[arg-type]
                runs.append(finished(client, tenant, run_id))
        return tenant, flow, runs
    finally:
        client.close()
        services.close()


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("FLOWSERVICE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def row_text(page: Any, selector: str) -> list[str]:
    cells: list[str] = page.locator(f"{selector} td").all_inner_texts()
    return [" ".join(c.split()) for c in cells]


def test_a_user_follows_a_dataflow_in_the_browser(
    chromium: Any, world: tuple[LiveServer, Settings, dict[str, str]], tmp_path: Path
) -> None:
    server, settings, env = world
    tenant, flow_id, runs = seed(server, settings, env)
    assert [r["metrics"]["recordSummary"]["inputRecordCount"] for r in runs] == [40, 60, 80]
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    try:
        # sign in (the sign-in page is where an unsigned visitor lands)
        page.goto(f"{server.url}/ui/flows")
        assert "/ui/signin" in page.url
        page.fill("input[name=client_id]", tenant.client_id)
        page.fill("input[name=client_secret]", tenant.client_secret)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/ui/flows")

        # the dataflows page: the flow, its last run's numbers, a strip of three runs
        last = runs[-1]["metrics"]["recordSummary"]
        row = row_text(page, f'tr[data-flow="{flow_id}"]')
        assert row[0] == "Orders from the landing zone" and row[4] == "Enabled"
        assert row[6] == count_text(last["outputRecordCount"]) and row[7] == count_text(
            last["failedRecordCount"]
        )
        assert page.locator(f'tr[data-flow="{flow_id}"] .strip a').count() == 3
        shot(page, "dataflows")

        # the dataflow's page: one row per run, the API's numbers in each
        page.click(f'tr[data-flow="{flow_id}"] td a')
        page.wait_for_url(re.compile(f".*/ui/flows/{flow_id}$"))
        for run in runs:
            cells = row_text(page, f'tr[data-run="{run["id"]}"]')
            assert cells[0] == "Success" and cells[3:9] == run_cells(run)
        assert page.locator("svg.chart g.run").count() == 3
        shot(page, "dataflow")

        # a run's page: the numbers, the failed records and their download
        second = runs[1]
        page.click(f'tr[data-run="{second["id"]}"] a')
        page.wait_for_url(re.compile(f".*/ui/runs/{second['id']}$"))
        records = second["metrics"]["recordSummary"]
        for name, value in records.items():
            assert page.locator(f'[data-metric="{name}"]').inner_text() == count_text(value)
            assert page.locator(f'[data-metric="{name}"] span').get_attribute("title") == f"{value} records"
        assert page.locator("table.failed tbody tr").count() == records["failedRecordCount"] == 2
        with page.expect_download() as download_info:
            page.click("text=Download all failed records")
        saved = tmp_path / "failed.jsonl"
        download_info.value.save_as(saved)
        assert len(saved.read_text().splitlines()) == 2
        assert page.locator("table.files tbody tr").count() == 1
        shot(page, "run")

        # start a run and watch it move without reloading the page
        page.goto(f"{server.url}/ui/flows/{flow_id}")
        page.click("text=Run now")
        page.click("button:has-text('Run now')")
        page.wait_for_url(re.compile(f".*/ui/flows/{flow_id}\\?done=.*"))
        notice = page.locator(".notice.done").inner_text()
        new_id = re.search(r"Run ([\w-]+) started", notice)
        assert new_id, notice
        new_row = f'tr[data-run="{new_id.group(1)}"] td:first-child'
        assert page.locator(new_row).inner_text().strip() == "Scheduled"  # no worker yet
        page.evaluate("window.__stillHere = true")
        with worker(env, settings.home):
            page.locator(f'{new_row} .status[data-status="success"]').wait_for(timeout=30_000)
        assert page.evaluate("window.__stillHere") is True  # updated in place, not reloaded
        api = httpx.get(f"{server.url}{BASE}/runs/{new_id.group(1)}", headers=tenant.headers()).json()[
            "items"
        ][0]
        assert api["state"] == "success"
    finally:
        context.close()
