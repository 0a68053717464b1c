"""The alerts pages over HTTP, as a browser without JavaScript uses them: make a rule with the form,
read its secret once, act on it with confirmed posts, and read the delivery log.

The delivery log is checked against deliveries the notifier really made: a real run sets the rules
off, and the notifier's own round posts to real receivers on loopback (one accepts, one refuses,
one is not listening), so every status, HTTP code and error a page shows is one that happened.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.domain import alerts as model
from flowservice.domain.tenancy import Tenant as Scope
from flowservice.services import alerts
from flowservice.services.context import Services
from flowservice.workers.notifier import Notifier
from tests import factories
from tests.e2e.test_ingestion import customers, dlz_flow, write_csv
from tests.factories import Tenant
from tests.live import free_port
from tests.receiver import receiver
from tests.ui.test_pages import cells, csrf_of, page, sign_in
from tests.worlds import Own, own_app

ALERTS = "/data/infrastructure/observability/alerts"


@pytest.fixture
def browser(services: Services, client: TestClient) -> Iterator[TestClient]:
    """A client with a cookie jar of its own, on the session's app (no workers: nothing runs here)."""
    del client
    with TestClient(create_app(services), follow_redirects=False) as found:
        yield found


def make_rule(client: TestClient, tenant: Tenant, kind: str, url: str, **fields: Any) -> str:
    body = {"name": f"{kind} rule", "kind": kind, "webhook": {"url": url}, **fields}
    answer = client.post(f"{ALERTS}/rules", json=body, headers=tenant.headers())
    assert answer.status_code == 201, answer.text
    rule_id: str = answer.json()["id"]
    return rule_id


def api_rules(client: TestClient, tenant: Tenant) -> list[dict[str, Any]]:
    answer = client.get(f"{ALERTS}/rules", headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def rule_ids(text: str) -> list[str]:
    return re.findall(r'<tr data-rule="([\w-]+)"', text)


def submit(browser: TestClient, csrf: str, **fields: str) -> httpx.Response:
    answer: httpx.Response = browser.post("/ui/alerts", data={"csrf": csrf, **fields})
    return answer


def field_error(text: str, name: str) -> str:
    """The message shown beside the form's input `name`; the input must be marked invalid."""
    assert re.search(rf'name="{name}"[^>]*aria-invalid="true"', text), f"{name} not marked invalid"
    match = re.search(rf'<span class="field-error" id="{name}-error">(.*?)</span>', text, re.S)
    assert match, f"no message beside {name}"
    return html.unescape(match.group(1))


def test_a_rule_made_with_the_form_is_listed_and_its_secret_is_shown_once(
    browser: TestClient, client: TestClient, services: Services
) -> None:
    tenant = factories.new_tenant(services, client)
    flow = factories.dataflow(client, tenant, name="Orders from S3").flow_id
    sign_in(browser, tenant)
    empty = page(browser, "/ui/alerts")
    assert '<a href="/ui/alerts">Alerts</a>' in empty  # the nav link
    assert "No alert rules in this sandbox yet." in empty
    assert f'<option value="{flow}">Orders from S3</option>' in empty
    csrf = csrf_of(empty)

    url = "https://hooks.example.com/flows/T0K3N?key=hush"
    made = submit(
        browser, csrf, name="Bad records", kind="failedRecordRatio", flow=flow, url=url, ratio_percent="2"
    )
    assert made.status_code == 201, made.text[:500]
    assert made.headers["cache-control"] == "no-store"
    secret_match = re.search(r"<code class=\"secret\" data-secret>(whsec_[\w-]+)</code>", made.text)
    assert secret_match, made.text[:2000]
    secret = secret_match.group(1)
    assert model.SIGNATURE_HEADER in made.text and "x-flowservice-delivery" in made.text

    # the page's recipe verifies a real signature, and refuses a wrong body
    snippet = re.search(r'<pre class="snippet">(.*?)</pre>', made.text, re.S)
    assert snippet
    namespace: dict[str, Any] = {}
    exec(html.unescape(snippet.group(1)), namespace)  # our own page's example code, run as a reader would
    body = b'{"event":"x"}'
    signed = model.signature(secret, services.clock.now_ms() // 1000, body)
    assert namespace["verify"](secret, signed, body) and not namespace["verify"](secret, signed, body + b" ")

    [rule] = api_rules(client, tenant)
    assert (rule["name"], rule["kind"], rule["flowId"], rule["threshold"]) == (
        "Bad records",
        "failedRecordRatio",
        flow,
        0.02,
    )
    assert rule["webhook"] == {"url": url} and rule["state"] == "enabled"

    second = submit(browser, csrf, name="Anything done", kind="runSuccess", url="http://10.0.0.7:8080/h")
    assert second.status_code == 201
    delayed = submit(browser, csrf, name="Slow runs", kind="ingestionDelay", url="https://a.example/x")
    assert delayed.status_code == 201
    patient = submit(browser, csrf, name="Each attempt", kind="runFailure", url="https://a.example/y")
    assert patient.status_code == 201  # the wait box unchecked: every failed attempt speaks
    by_name = {r["name"]: r for r in api_rules(client, tenant)}
    assert by_name["Slow runs"]["threshold"] == 150  # empty threshold: the kind's default
    assert by_name["Each attempt"]["waitForFinalAttempt"] is False
    assert by_name["Anything done"]["waitForFinalAttempt"] is True

    listed = page(browser, "/ui/alerts")
    assert secret not in listed and "whsec_" not in listed  # shown once, never listed
    assert "T0K3N" not in listed and "hush" not in listed  # only the webhook's host is shown
    assert rule_ids(listed) == [by_name[n]["id"] for n in ("Each attempt", "Slow runs", "Anything done")] + [
        rule["id"]
    ]  # newest first
    row = cells(listed, "rule", rule["id"])
    assert row[:8] == [
        "Bad records",
        "Failed records above a ratio",
        "2% of records read",
        "Orders from S3",
        "hooks.example.com",
        "Enabled",
        row[6],
        "none yet",
    ]
    assert f'<a href="/ui/flows/{flow}">Orders from S3</a>' in listed
    assert cells(listed, "rule", by_name["Anything done"]["id"])[2:5] == [
        "—",
        "all dataflows",
        "10.0.0.7:8080",
    ]
    assert cells(listed, "rule", by_name["Slow runs"]["id"])[2] == "150 minutes"
    assert "(every attempt)" in cells(listed, "rule", by_name["Each attempt"]["id"])[1]
    assert secret not in str(api_rules(client, tenant))


def test_the_form_says_what_is_wrong_beside_the_field(
    browser: TestClient, client: TestClient, services: Services
) -> None:
    tenant = factories.new_tenant(services, client)
    other = factories.new_tenant(services, client)
    foreign_flow = factories.dataflow(client, other).flow_id
    sign_in(browser, tenant)
    csrf = csrf_of(page(browser, "/ui/alerts"))
    good = "https://hooks.example.com/x"
    cases = [
        ({"kind": "runSuccess", "url": "ftp://example.org/x"}, "url", "must start with https:// or http://"),
        ({"kind": "runSuccess", "url": "https:///nohost"}, "url", "has no host"),
        ({"kind": "runSuccess", "url": "https://u:p@example.org/x"}, "url", "must not carry credentials"),
        ({"kind": "runSuccess", "url": "https://example.org:99999/x"}, "url", "invalid port"),
        ({"kind": "runSuccess", "url": ""}, "url", "webhook.url"),
        ({"kind": "runSuccess", "url": good, "name": ""}, "name", "'name' is invalid"),
        ({"kind": "sometimes", "url": good}, "kind", "'kind' is invalid"),
        ({"kind": "failedRecordRatio", "url": good, "ratio_percent": "abc"}, "ratio_percent", "not a number"),
        ({"kind": "failedRecordRatio", "url": good, "ratio_percent": "150"}, "ratio_percent", "at most 100"),
        ({"kind": "volumeDrop", "url": good, "drop_percent": "-5"}, "drop_percent", "greater than or equal"),
        ({"kind": "ingestionDelay", "url": good, "delay_minutes": "0"}, "delay_minutes", "above 0"),
        ({"kind": "runFailure", "url": good, "flow": foreign_flow}, "flow", "does not exist in this sandbox"),
    ]
    for fields, where, message in cases:
        answer = submit(browser, csrf, **{"name": "Kept name", **fields})
        assert answer.status_code == 400, (fields, answer.status_code)
        assert message in field_error(answer.text, where), (fields, field_error(answer.text, where))
        assert "The rule was not created" in html.unescape(answer.text)
        if "name" not in fields:
            assert 'name="name" value="Kept name"' in answer.text  # what was typed is kept
    kept = submit(browser, csrf, name="Kept", kind="failedRecordRatio", url="ftp://x", ratio_percent="3")
    assert 'name="ratio_percent" inputmode="decimal" value="3"' in kept.text
    assert re.search(r'<option value="failedRecordRatio" selected>', kept.text)
    assert api_rules(client, tenant) == []


def test_enable_disable_and_delete_are_confirmed_posts(
    browser: TestClient, client: TestClient, services: Services
) -> None:
    tenant = factories.new_tenant(services, client)
    rule = make_rule(client, tenant, "runFailure", "https://hooks.example.com/a")
    sign_in(browser, tenant)
    listed = page(browser, "/ui/alerts")
    assert f'href="/ui/alerts/{rule}/confirm?action=disable"' in listed
    assert f'href="/ui/alerts/{rule}/confirm?action=delete"' in listed
    confirm = page(browser, f"/ui/alerts/{rule}/confirm?action=disable")
    assert f'action="/ui/alerts/{rule}/disable"' in confirm and "runFailure rule" in confirm
    csrf = csrf_of(confirm)

    refused = browser.post(f"/ui/alerts/{rule}/disable", data={"csrf": "stolen"})
    assert refused.status_code == 400 and "This form has expired" in refused.text
    assert browser.post(f"/ui/alerts/{rule}/delete", data={}).status_code == 400  # no token at all
    assert browser.post(f"/ui/alerts/{rule}/delete", data={"csrf": "stolen"}).status_code == 400
    assert submit(browser, "stolen", name="x", kind="runSuccess", url="https://a.example/").status_code == 400
    assert [r["state"] for r in api_rules(client, tenant)] == ["enabled"]  # nothing happened

    disabled = browser.post(f"/ui/alerts/{rule}/disable", data={"csrf": csrf})
    assert disabled.status_code == 303 and disabled.headers["location"].startswith("/ui/alerts?done=")
    assert api_rules(client, tenant)[0]["state"] == "disabled"
    text = page(browser, disabled.headers["location"])
    assert "runFailure rule” disabled." in html.unescape(text)
    assert cells(text, "rule", rule)[5] == "Disabled"
    assert f'href="/ui/alerts/{rule}/confirm?action=enable"' in text

    twice = browser.post(f"/ui/alerts/{rule}/disable", data={"csrf": csrf})
    assert "FLOW-1422-400" in twice.headers["location"]  # refused: already disabled
    assert browser.post(f"/ui/alerts/{rule}/enable", data={"csrf": csrf}).status_code == 303
    assert api_rules(client, tenant)[0]["state"] == "enabled"
    assert page(browser, f"/ui/alerts/{rule}/confirm?action=explode", status=400)

    assert "Delete this alert rule?" in page(browser, f"/ui/alerts/{rule}/confirm?action=delete")
    deleted = browser.post(f"/ui/alerts/{rule}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303 and "deleted" in deleted.headers["location"]
    assert api_rules(client, tenant) == []
    assert rule not in page(browser, "/ui/alerts")
    assert client.get(f"{ALERTS}/rules/{rule}", headers=tenant.headers()).status_code == 404


def test_another_orgs_rules_are_invisible_and_not_found(
    browser: TestClient, client: TestClient, services: Services
) -> None:
    owner = factories.new_tenant(services, client)
    rule = make_rule(client, owner, "runSuccess", "https://private.example.com/hook", name="Owner's rule")
    stranger = factories.new_tenant(services, client)
    sign_in(browser, stranger)
    listed = page(browser, "/ui/alerts")
    assert rule not in listed and "Owner" not in listed and "private.example.com" not in listed
    csrf = csrf_of(listed)
    for action in ("disable", "delete"):
        text = page(browser, f"/ui/alerts/{rule}/confirm?action={action}", status=404)
        assert "FLOW-1439-404" in text and "Owner" not in text
        answer = browser.post(f"/ui/alerts/{rule}/{action}", data={"csrf": csrf})
        assert answer.status_code == 404 and "FLOW-1439-404" in answer.text
    assert page(browser, f"/ui/alerts/deliveries?rule={rule}").count("<tr data-delivery") == 0
    [kept] = api_rules(client, owner)
    assert (kept["id"], kept["state"]) == (rule, "enabled")


def test_the_delivery_log_pages_and_filters(
    browser: TestClient, client: TestClient, services: Services
) -> None:
    """Sixty queued notifications (the run hook's own function, on made-up runs) over two pages."""
    tenant = factories.new_tenant(services, client)
    flow = factories.dataflow(client, tenant).flow_id
    starts = make_rule(client, tenant, "runStart", "https://hooks.example.com/s", name="Starts")
    make_rule(client, tenant, "runSuccess", "https://hooks.example.com/t", name="Ends")
    scope = Scope(tenant.org_id, "prod", "")
    now = services.clock.now_ms()
    with services.db.transaction() as session:
        for i in range(60):
            alerts.on_run_started(session, scope, {"id": f"run-{i:03d}", "flowId": flow}, now + i)
    sign_in(browser, tenant)
    first = page(browser, "/ui/alerts/deliveries")
    shown = re.findall(r'<tr data-delivery="([\w-]+)"', first)
    assert len(shown) == 50
    assert 'href="/ui/runs/run-059"' in first and 'href="/ui/runs/run-009"' not in first  # newest first
    following = re.search(r'rel="next" href="([^"]+)"', first)
    assert following
    second = page(browser, html.unescape(following.group(1)))
    rest = re.findall(r'<tr data-delivery="([\w-]+)"', second)
    assert len(rest) == 10 and not set(rest) & set(shown) and 'rel="next"' not in second
    assert 'href="/ui/runs/run-000"' in second

    token = re.search(r"page=([^&\"]+)", html.unescape(following.group(1)))
    assert token
    elsewhere = browser.get(f"/ui/alerts/deliveries?status=failed&page={token.group(1)}")
    assert elsewhere.status_code == 400 and "other filters" in elsewhere.text
    assert browser.get("/ui/alerts/deliveries?page=garbage").status_code == 400
    assert browser.get("/ui/alerts/deliveries?status=lost").status_code == 400
    assert browser.get("/ui/alerts/deliveries?rule=a,b").status_code == 400

    by_run = page(browser, "/ui/alerts/deliveries?run=run-007")
    assert by_run.count("<tr data-delivery") == 1 and 'href="/ui/runs/run-007"' in by_run
    assert (
        page(browser, f"/ui/alerts/deliveries?rule={starts}&status=pending").count("<tr data-delivery") == 50
    )
    assert "No deliveries match these filters." in page(browser, "/ui/alerts/deliveries?status=delivered")
    fragment = page(browser, "/ui/alerts/deliveries?status=pending&partial=1")
    assert fragment.lstrip().startswith("<table") and "<html" not in fragment
    listed = page(browser, "/ui/alerts")
    assert cells(listed, "rule", starts)[7].startswith("Pending")


@pytest.fixture
def own(database_url: str, tmp_path: Path) -> Iterator[Own]:
    """An app on a database of its own, so the notifier's round delivers only this test's alerts."""
    with own_app(database_url, tmp_path, webhook_timeout_seconds=2) as app:
        yield app


def test_the_delivery_log_shows_what_a_real_run_set_off(own: Own) -> None:
    tenant = factories.new_tenant(own.services, own.client)
    write_csv(
        own.services.settings.landing_zone / tenant.org_id / "prod" / "hooks" / "a.csv", customers(1, 12, {})
    )
    flow = dlz_flow(
        own.client, tenant, "hooks", name="Hooked flow", mappings=factories.IDENTITY_MAPPINGS
    ).flow_id
    with (
        receiver() as accepting,
        receiver() as refusing,
        TestClient(create_app(own.services), follow_redirects=False) as browser,
    ):
        refusing.answer_next(410)
        sign_in(browser, tenant)
        csrf = csrf_of(page(browser, "/ui/alerts"))
        for name, url in (
            ("Accepted", accepting.url),
            ("Refused", refusing.url),
            ("Nobody home", f"http://127.0.0.1:{free_port()}/hook"),  # a port just freed: nothing listens
        ):
            made = submit(browser, csrf, name=name, kind="runSuccess", flow=flow, url=url)
            assert made.status_code == 201, made.text[:500]
        rules = {r["name"]: r["id"] for r in api_rules(own.client, tenant)}

        run = factories.wait_for_run(own.client, tenant, factories.start_run(own.client, tenant, flow))
        assert run["state"] == "success"
        with httpx.Client() as http:
            assert Notifier(own.services).round(http) == 3
        [ok] = accepting.wait_for(1)
        [no] = refusing.wait_for(1)
        assert ok.json()["event"]["id"] == run["id"] and (ok.answered, no.answered) == (200, 410)
        logged = {
            d["ruleName"]: d
            for d in own.client.get(f"{ALERTS}/deliveries", headers=tenant.headers()).json()["items"]
        }

        text = page(browser, "/ui/alerts/deliveries")
        delivered = cells(text, "delivery", logged["Accepted"]["id"])
        assert delivered[1:8] == [
            "Accepted",
            "sources_flow_run_success",
            run["id"][:8],
            "Delivered",
            "1",
            "200",
            "",
        ]
        assert delivered[8].startswith("delivered")
        refused = cells(text, "delivery", logged["Refused"]["id"])
        assert refused[4:8] == ["Failed", "1", "410", "HTTP 410: ok"]
        assert refused[8] == "—"
        waiting = cells(text, "delivery", logged["Nobody home"]["id"])
        assert waiting[4:7] == ["Pending", "1", "—"]
        assert waiting[7] == logged["Nobody home"]["lastError"] and waiting[7].startswith("ConnectError")
        assert waiting[8] == "in 30 s"  # the first pause before another attempt
        assert text.count(f'href="/ui/runs/{run["id"]}"') == 3

        failed_only = page(browser, "/ui/alerts/deliveries?status=failed")
        assert re.findall(r'<tr data-delivery="([\w-]+)"', failed_only) == [logged["Refused"]["id"]]
        one_rule = page(browser, f"/ui/alerts/deliveries?rule={rules['Accepted']}")
        assert re.findall(r'<tr data-delivery="([\w-]+)"', one_rule) == [logged["Accepted"]["id"]]
        assert f'<option value="{rules["Accepted"]}" selected>Accepted</option>' in one_rule

        detail = page(browser, f"/ui/alerts/deliveries/{logged['Refused']['id']}")
        assert '<dd data-field="lastError">HTTP 410: ok</dd>' in detail
        assert '<dd data-field="lastStatus">410</dd>' in detail
        assert f'href="/ui/runs/{run["id"]}"' in detail and "sources_flow_run_success" in detail
        assert run["id"] in html.unescape(detail)  # the payload carries the run

        listed = page(browser, "/ui/alerts")
        assert cells(listed, "rule", rules["Accepted"])[7].startswith("Delivered")
        assert cells(listed, "rule", rules["Refused"])[7].startswith("Failed")
        assert cells(listed, "rule", rules["Nobody home"])[7].startswith("Pending")

        stranger = factories.new_tenant(own.services, own.client)
        sign_in(browser, stranger)
        assert "<tr data-delivery" not in page(browser, "/ui/alerts/deliveries")
        hidden = page(browser, f"/ui/alerts/deliveries/{logged['Refused']['id']}", status=404)
        assert "FLOW-1439-404" in hidden and "HTTP 410" not in hidden
