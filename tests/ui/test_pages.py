"""The monitoring pages over HTTP, as a browser without JavaScript uses them: sign in, read, act.

Runs are real (the engine's workers ingest landing-zone files); every number a page shows is
checked against the API's run object for the same run.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.domain.humanize import count_text, size_text
from flowservice.services import identity
from flowservice.services.context import Services
from flowservice.services.tokens import SIGN_IN
from flowservice.settings import Settings
from flowservice.ui.session import COOKIE
from tests import factories
from tests.e2e.test_ingestion import customers, dlz_flow, write_csv, zone
from tests.factories import BASE, Tenant
from tests.ui import run_cells


@pytest.fixture
def browser(engine_services: Services, engine_client: TestClient) -> Iterator[TestClient]:
    """A client with a cookie jar of its own (the engine client's app runs the workers)."""
    del engine_client
    with TestClient(create_app(engine_services), follow_redirects=False) as client:
        yield client


def sign_in(browser: TestClient, tenant: Tenant, sandbox: str = "prod") -> None:
    answer = browser.post(
        "/ui/signin",
        data={"client_id": tenant.client_id, "client_secret": tenant.client_secret, "sandbox": sandbox},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/flows"


def page(browser: TestClient, url: str, status: int = 200) -> str:
    answer = browser.get(url)
    assert answer.status_code == status, (url, answer.status_code, answer.text[:500])
    assert answer.headers["content-type"].startswith("text/html")
    text: str = answer.text
    return text


def cells(text: str, row_attr: str, row_id: str) -> list[str]:
    """The text of each cell of the table row marked `data-{row_attr}="{row_id}"`."""
    match = re.search(rf'<tr data-{row_attr}="{re.escape(row_id)}">(.*?)</tr>', text, re.S)
    assert match, f"no row {row_id}"
    found = re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in found]


def csrf_of(text: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', text)
    assert match
    return match.group(1)


def seeded_flow(
    client: TestClient, settings: Settings, tenant: Tenant, folder: str, bad: dict[int, str]
) -> tuple[factories.Dataflow, dict[str, Any]]:
    write_csv(zone(settings, tenant) / folder / "a.csv", customers(1, 30, bad))
    flow = dlz_flow(
        client,
        tenant,
        folder,
        name=f"Customers from {folder}",
        mappings=factories.IDENTITY_MAPPINGS,
        options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
    )
    run = factories.wait_for_run(client, tenant, factories.start_run(client, tenant, flow.flow_id))
    return flow, run


def test_pages_need_a_signed_in_credential(browser: TestClient, engine_tenant: Tenant) -> None:
    answer = browser.get("/ui/flows?status=failed")
    assert (
        answer.status_code == 303
        and answer.headers["location"] == "/ui/signin?next=%2Fui%2Fflows%3Fstatus%3Dfailed"
    )
    wrong = browser.post(
        "/ui/signin",
        data={"client_id": engine_tenant.client_id, "client_secret": "not-it", "sandbox": "prod"},
    )
    assert wrong.status_code == 401 and "Unknown client id or secret." in wrong.text
    assert COOKIE not in wrong.cookies
    browser.cookies.set(COOKIE, "forged.token.value", path="/ui")
    assert browser.get("/ui/flows").status_code == 303

    answer = browser.post(
        "/ui/signin",
        data={
            "client_id": engine_tenant.client_id,
            "client_secret": engine_tenant.client_secret,
            "next": "https://elsewhere.example/",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/flows"  # no open redirect
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert engine_tenant.client_secret not in cookie
    page(browser, "/ui/flows")


def test_a_revoked_credential_ends_its_sessions(
    browser: TestClient, engine_services: Services, engine_client: TestClient
) -> None:
    tenant = factories.new_tenant(engine_services, engine_client)
    sign_in(browser, tenant)
    page(browser, "/ui/flows")
    assert identity.revoke_credentials(engine_services.db, tenant.client_id)
    assert browser.get("/ui/flows").status_code == 303


def test_the_dataflows_page_shows_each_flow_with_its_last_runs(
    browser: TestClient, engine_client: TestClient, engine_settings: Settings, engine_tenant: Tenant
) -> None:
    client, tenant = engine_client, engine_tenant
    flow, run = seeded_flow(client, engine_settings, tenant, "pages", {3: "missing-email", 9: "bad-amount"})
    second = factories.wait_for_run(client, tenant, factories.start_run(client, tenant, flow.flow_id))
    sign_in(browser, tenant)
    text = page(browser, "/ui/flows")
    row = cells(text, "flow", flow.flow_id)
    records = second["metrics"]["recordSummary"]
    assert row[0] == "Customers from pages" and row[1] == "Data Landing Zone"
    assert row[2] == "Customers" and row[3] == "once" and row[4] == "Enabled"
    assert row[5].startswith("Success")
    assert row[6] == count_text(records["outputRecordCount"]) and row[7] == count_text(
        records["failedRecordCount"]
    )
    assert records == {"inputRecordCount": 30, "outputRecordCount": 28, "failedRecordCount": 2}
    strip = re.findall(r'<a class="cell (\w+)" href="/ui/runs/([\w-]+)"', text)
    assert strip == [("success", run["id"]), ("success", second["id"])]  # oldest to newest, left to right
    assert f'title="{records["outputRecordCount"]} records"' in text  # the exact value on hover


def test_filters_sort_and_pages(
    browser: TestClient, engine_client: TestClient, engine_services: Services, engine_settings: Settings
) -> None:
    tenant = factories.new_tenant(engine_services, engine_client)
    failing, failed_run = seeded_flow(engine_client, engine_settings, tenant, "strict", {})
    # make the last run of one flow fail: a source path with nothing readable
    write_csv(zone(engine_settings, tenant) / "broken" / "a.csv", [["x"] * 6])
    broken = dlz_flow(engine_client, tenant, "broken", name="Broken one")
    bad_run = factories.wait_for_run(
        engine_client, tenant, factories.start_run(engine_client, tenant, broken.flow_id)
    )
    assert bad_run["state"] == "failed" and failed_run["state"] == "success"
    many = [factories.dataflow(engine_client, tenant, name=f"bulk flow {i:02d}").flow_id for i in range(52)]
    sign_in(browser, tenant)

    failed_only = page(browser, "/ui/flows?status=failed")
    assert re.findall(r'<tr data-flow="([\w-]+)"', failed_only) == [broken.flow_id]
    named = page(browser, "/ui/flows?q=BULK+FLOW+0")
    assert len(re.findall(r'<tr data-flow="', named)) == 10
    s3_only = page(browser, "/ui/flows?source=ecadc60c-7455-4d87-84dc-2a0e293d997b")
    s3_flows = re.findall(r'<tr data-flow="([\w-]+)"', s3_only)
    assert len(s3_flows) == 50 and set(s3_flows) <= set(many)  # a full first page, all S3 flows

    first = page(browser, "/ui/flows?sort=%2Bname")
    shown = re.findall(r'<tr data-flow="([\w-]+)"', first)
    assert len(shown) == 50 and shown[0] == broken.flow_id  # B sorts first in any collation
    following = re.search(r'rel="next" href="([^"]+)"', first)
    assert following
    second = page(browser, html.unescape(following.group(1)))
    rest = re.findall(r'<tr data-flow="([\w-]+)"', second)
    assert len(rest) == 4 and not set(rest) & set(shown)
    assert set(shown) | set(rest) == {broken.flow_id, failing.flow_id, *many}
    assert 'rel="next"' not in second

    token = re.search(r"page=([^&\"]+)", html.unescape(following.group(1)))
    assert token
    other_filters = browser.get(f"/ui/flows?sort=-name&page={token.group(1)}")
    assert other_filters.status_code == 400 and "other filters" in other_filters.text
    assert browser.get("/ui/flows?page=garbage").status_code == 400


def test_other_tenants_flows_and_runs_are_not_found(
    browser: TestClient, engine_client: TestClient, engine_services: Services, engine_settings: Settings
) -> None:
    owner = factories.new_tenant(engine_services, engine_client)
    flow, run = seeded_flow(engine_client, engine_settings, owner, "private", {})
    stranger = factories.new_tenant(engine_services, engine_client)
    sign_in(browser, stranger)
    assert flow.flow_id not in page(browser, "/ui/flows")
    for url in (
        f"/ui/flows/{flow.flow_id}",
        f"/ui/runs/{run['id']}",
        f"/ui/runs/{run['id']}/failed-records.jsonl",
    ):
        text = page(browser, url, status=404)
        assert "FLOW-1439-404" in text and "Customers" not in text


def test_a_dataflow_page_has_its_runs_chart_and_filters(
    browser: TestClient, engine_client: TestClient, engine_services: Services, engine_settings: Settings
) -> None:
    tenant = factories.new_tenant(engine_services, engine_client)
    flow, run = seeded_flow(engine_client, engine_settings, tenant, "detail", {5: "negative"})
    sign_in(browser, tenant)
    text = page(browser, f"/ui/flows/{flow.flow_id}")
    row = cells(text, "run", run["id"])
    assert row[0] == "Success" and row[3:9] == run_cells(run)
    assert "29 ingested, 1 failed (3.3% failed)" in html.unescape(text)  # the chart's bar, on hover
    assert '<polyline class="rate"' in text
    assert 'href="/ui/flows/' + flow.flow_id + '/confirm?action=run"' in text

    assert run["id"] not in page(browser, f"/ui/flows/{flow.flow_id}?status=failed")
    assert run["id"] in page(browser, f"/ui/flows/{flow.flow_id}?status=success")
    assert run["id"] not in page(browser, f"/ui/flows/{flow.flow_id}?until=2020-01-01")
    assert run["id"] in page(browser, f"/ui/flows/{flow.flow_id}?since=2020-01-01")
    bad_date = page(browser, f"/ui/flows/{flow.flow_id}?since=yesterday", status=400)
    assert "since must be a date" in bad_date
    fragment = page(browser, f"/ui/flows/{flow.flow_id}?partial=1")
    assert fragment.lstrip().startswith("<table") and "<html" not in fragment


def test_a_run_page_shows_what_the_api_says(
    browser: TestClient, engine_client: TestClient, engine_services: Services, engine_settings: Settings
) -> None:
    tenant = factories.new_tenant(engine_services, engine_client)
    bad = {2: "missing-email", 7: "bad-amount", 12: "negative"}
    flow, run = seeded_flow(engine_client, engine_settings, tenant, "runpage", bad)
    sign_in(browser, tenant)
    text = page(browser, f"/ui/runs/{run['id']}")
    records = run["metrics"]["recordSummary"]
    for name, value in records.items():
        assert re.search(
            rf'data-metric="{name}"><span title="{value} records">{count_text(value)}</span>', text
        )
    sizes = run["metrics"]["sizeSummary"]
    assert f'title="{sizes["inputBytes"]:,} bytes">{size_text(sizes["inputBytes"])}' in text
    promotion = run["activities"][1]
    for error in promotion["statusSummary"]["extensions"]["errors"]:
        assert f"<code>{error['code']}</code>" in text
    assert '<svg class="timeline"' in text and "Copy Activity" in text and "Promotion Activity" in text
    assert "the beginning" in text  # the once-flow's window starts at 0

    preview = re.findall(r'<tr>\s*<td class="num">(\d+)</td>', text)
    assert sorted(int(r) for r in preview) == sorted(bad)
    download = browser.get(f"/ui/runs/{run['id']}/failed-records.jsonl")
    assert download.status_code == 200
    assert (
        download.headers["content-disposition"] == f'attachment; filename="failed-records-{run["id"]}.jsonl"'
    )
    lines = [json.loads(line) for line in download.text.splitlines()]
    assert len(lines) == records["failedRecordCount"] == 3
    assert sorted(int(line["data"]["id"]) for line in lines) == sorted(bad)
    assert "runpage/a.csv" in text  # the input manifest
    assert f'href="/ui/alerts/deliveries?run={run["id"]}"' in text  # the alerts sent about it
    assert (
        page(browser, f"/ui/runs/{run['id']}?partial=1")
        .lstrip()
        .startswith('<div class="run-body" data-final="true">')
    )


def test_actions_are_confirmed_and_take_effect(
    browser: TestClient, engine_client: TestClient, engine_services: Services, engine_settings: Settings
) -> None:
    tenant = factories.new_tenant(engine_services, engine_client)
    now_s = engine_services.clock.now_ms() // 1000
    folder = zone(engine_settings, tenant) / "actions"
    for name, first_id, age in (("old.csv", 1, 300), ("new.csv", 101, 50)):
        write_csv(folder / name, customers(first_id, 10, {}))
        os.utime(folder / name, (now_s - age, now_s - age))
    flow = dlz_flow(engine_client, tenant, "actions")
    first = factories.wait_for_run(
        engine_client,
        tenant,
        factories.start_run(engine_client, tenant, flow.flow_id, window=(0, now_s - 100)),
    )
    assert first["metrics"]["recordSummary"]["inputRecordCount"] == 10  # old.csv only
    sign_in(browser, tenant)
    confirm = page(browser, f"/ui/flows/{flow.flow_id}/confirm?action=run")
    csrf = csrf_of(confirm)
    assert 'action="/ui/flows/' + flow.flow_id + '/run"' in confirm

    refused = browser.post(f"/ui/flows/{flow.flow_id}/run", data={"csrf": "stolen"})
    assert refused.status_code == 400
    assert len(runs_of(engine_client, tenant, flow.flow_id)) == 1

    started = browser.post(f"/ui/flows/{flow.flow_id}/run", data={"csrf": csrf})
    assert started.status_code == 303 and "done=Run" in started.headers["location"]
    newest = runs_of(engine_client, tenant, flow.flow_id)[0]
    assert newest["id"] != first["id"]
    # "run now" continues where the last window ended: new.csv is read, old.csv not again
    assert int(newest["params"]["windowStartTime"]) == now_s - 100
    done = factories.wait_for_run(engine_client, tenant, newest["id"])
    assert done["metrics"]["recordSummary"]["inputRecordCount"] == 10
    assert done["metrics"]["fileSummary"]["inputFileCount"] == 1

    assert browser.post(f"/ui/flows/{flow.flow_id}/disable", data={"csrf": csrf}).status_code == 303
    assert factories.get(engine_client, tenant, "flows", flow.flow_id)["state"] == "disabled"
    text = page(browser, f"/ui/flows/{flow.flow_id}")
    assert "confirm?action=enable" in text and "confirm?action=run" not in text
    refused_run = browser.post(f"/ui/flows/{flow.flow_id}/run", data={"csrf": csrf})
    assert "FLOW-1388-400" in refused_run.headers["location"]
    assert browser.post(f"/ui/flows/{flow.flow_id}/enable", data={"csrf": csrf}).status_code == 303
    assert factories.get(engine_client, tenant, "flows", flow.flow_id)["state"] == "enabled"


def test_a_failed_run_is_retried_from_its_page(
    browser: TestClient, engine_client: TestClient, engine_services: Services, engine_settings: Settings
) -> None:
    tenant = factories.new_tenant(engine_services, engine_client)
    write_csv(zone(engine_settings, tenant) / "retry" / "a.csv", customers(1, 5, {2: "bad-amount"}))
    flow = dlz_flow(engine_client, tenant, "retry")  # no partial ingestion: one bad record fails it
    failed = factories.wait_for_run(
        engine_client, tenant, factories.start_run(engine_client, tenant, flow.flow_id)
    )
    assert failed["state"] == "failed"
    sign_in(browser, tenant)
    text = page(browser, f"/ui/runs/{failed['id']}")
    assert f'href="/ui/runs/{failed["id"]}/confirm-retry"' in text
    csrf = csrf_of(page(browser, f"/ui/runs/{failed['id']}/confirm-retry"))
    answer = browser.post(f"/ui/runs/{failed['id']}/retry", data={"csrf": csrf})
    assert answer.status_code == 303
    retry_id = answer.headers["location"].split("/ui/runs/")[1].split("?")[0]
    retry = factories.wait_for_run(engine_client, tenant, retry_id)
    assert retry["parentFlowRunId"] == failed["id"]
    assert f'href="/ui/runs/{failed["id"]}"' in page(browser, f"/ui/runs/{retry_id}")  # "retry of" link


def test_the_development_link_and_switching_org_and_sandbox(
    browser: TestClient, engine_client: TestClient, engine_services: Services
) -> None:
    first = factories.new_tenant(engine_services, engine_client, sandboxes=("dev",))
    second = factories.new_tenant(engine_services, engine_client)
    now_s = engine_services.clock.now_ms() // 1000
    access_token = engine_services.tokens.issue(first.client_id, first.org_id, now_s, 3600)
    refused = browser.get(f"/ui/signin/link?ticket={access_token}")  # an API token is not a sign-in link
    assert refused.status_code == 303 and refused.headers["location"].startswith("/ui/signin?error=")
    ticket = engine_services.tokens.issue(first.client_id, first.org_id, now_s, 3600, kind=SIGN_IN)
    signed = browser.get(f"/ui/signin/link?ticket={ticket}")
    assert signed.status_code == 303 and signed.headers["location"] == "/ui/flows"
    text = page(browser, "/ui/flows")
    assert f'<option value="{first.org_id}" selected>' in text and "<option>dev</option>" in text

    sign_in(browser, second)  # a second org joins the session
    text = page(browser, "/ui/flows")
    assert f'<option value="{second.org_id}" selected>' in text and f'<option value="{first.org_id}"' in text
    csrf = csrf_of(text)
    switched = browser.post("/ui/switch", data={"csrf": csrf, "org": first.org_id, "sandbox": "dev"})
    assert switched.status_code == 303
    text = page(browser, "/ui/flows")
    assert f'<option value="{first.org_id}" selected>' in text and "<option selected>dev</option>" in text
    unknown = browser.post("/ui/switch", data={"csrf": csrf, "org": "NOPE@AdobeOrg", "sandbox": "prod"})
    assert "error=Sign+in" in unknown.headers["location"]
    signed_out = browser.post("/ui/signout", data={"csrf": csrf})
    assert signed_out.status_code == 303 and browser.get("/ui/flows").status_code == 303


def runs_of(client: TestClient, tenant: Tenant, flow_id: str) -> list[dict[str, Any]]:
    answer = client.get(f"{BASE}/runs?property=flowId=={flow_id}", headers=tenant.headers())
    items: list[dict[str, Any]] = answer.json()["items"]
    return items
