"""The alerts pages in a real headless Chromium against a live server (the fixtures of test_browser).

A user opens Alerts from the navigation, sees only the threshold that applies to the kind chosen,
is told beside the field what is wrong with a webhook URL, makes the rule, copies its secret, finds
the rule listed and disables it through the confirmation page.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from flowservice.domain import alerts as model
from flowservice.services.context import Services
from flowservice.settings import Settings
from tests import factories
from tests.live import LiveServer
from tests.ui import test_browser
from tests.ui.test_browser import row_text, shot

ALERTS = "/data/infrastructure/observability/alerts"
# the browser and the live server of test_browser, made once more for this module
chromium = test_browser.chromium
world = test_browser.world


def test_a_user_makes_a_rule_and_disables_it_in_the_browser(
    chromium: Any, world: tuple[LiveServer, Settings, dict[str, str]]
) -> None:
    server, settings, _ = world
    services = Services.from_settings(settings)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            tenant = factories.new_tenant(services, client)  # type: ignore[arg-type]
            flow_id = factories.dataflow(client, tenant, name="Orders from S3").flow_id  # type: ignore[arg-type]
    finally:
        services.close()
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{server.url}/ui/alerts")
        assert "/ui/signin" in page.url
        page.fill("input[name=client_id]", tenant.client_id)
        page.fill("input[name=client_secret]", tenant.client_secret)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/ui/alerts$"))  # back where the visit started
        page.goto(f"{server.url}/ui/flows")
        page.click("header nav >> text=Alerts")
        page.wait_for_url(f"{server.url}/ui/alerts")
        assert "No alert rules" in page.locator("table.rules").inner_text()

        # only the threshold of the chosen kind is offered
        page.select_option("select[name=kind]", "failedRecordRatio")
        assert page.locator("input[name=ratio_percent]").is_visible()
        assert not page.locator("input[name=delay_minutes]").is_visible()
        assert not page.locator("input[name=wait]").is_visible()
        page.select_option("select[name=kind]", "runFailure")
        assert page.locator("input[name=wait]").is_visible()
        assert not page.locator("input[name=ratio_percent]").is_visible()

        # a bad URL is refused beside its field, with what was typed kept
        page.fill("input[name=name]", "Failures of the orders flow")
        page.select_option("select[name=flow]", flow_id)
        page.fill("input[name=url]", "ftp://hooks.example.com/flows")
        page.click("button:has-text('Create rule')")
        page.locator("#url-error").wait_for()
        assert "must start with https:// or http://" in page.locator("#url-error").inner_text()
        assert page.input_value("input[name=name]") == "Failures of the orders flow"
        assert page.input_value("select[name=flow]") == flow_id

        page.fill("input[name=url]", "https://hooks.example.com/flows")
        page.click("button:has-text('Create rule')")
        secret = page.locator("code.secret").inner_text().strip()
        assert secret.startswith("whsec_")
        assert model.SIGNATURE_HEADER in page.locator(".secret-box").inner_text()
        shot(page, "alert-created")

        page.click("text=Back to the alert rules")
        page.wait_for_url(f"{server.url}/ui/alerts")
        assert secret not in page.content()
        [rule] = httpx.get(f"{server.url}{ALERTS}/rules", headers=tenant.headers()).json()["items"]
        row = f'tr[data-rule="{rule["id"]}"]'
        cells = row_text(page, row)
        assert cells[:6] == [
            "Failures of the orders flow",
            "Run failed",
            "—",
            "Orders from S3",
            "hooks.example.com",
            "Enabled",
        ]
        shot(page, "alerts")

        page.click(f"{row} >> text=Disable")
        page.wait_for_url(re.compile(r".*/confirm\?action=disable$"))
        page.click("button:has-text('Disable')")
        page.wait_for_url(re.compile(r".*/ui/alerts\?done=.*"))
        assert "disabled" in page.locator(".notice.done").inner_text()
        assert row_text(page, row)[5] == "Disabled"
        got = httpx.get(f"{server.url}{ALERTS}/rules/{rule['id']}", headers=tenant.headers()).json()
        assert got["items"][0]["state"] == "disabled"
    finally:
        context.close()
