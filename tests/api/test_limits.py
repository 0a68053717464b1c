"""Every limit a client can run into answers as Adobe's services do, and holds.

Body size (413), page size, filter complexity (Adobe's 400 with code 1452), files per run and bytes per
file (a failed run that names the limit), the per-client rate limit (429 with Retry-After and the
gateway's body), and credential revocation taking effect on the very next request of a live server.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.api.ratelimit import MAX_BUCKETS, TokenBuckets, retry_after
from flowservice.domain import query
from flowservice.services import identity
from flowservice.services.context import Services
from flowservice.settings import Settings
from tests import factories
from tests.e2e.test_ingestion import customers, dlz_flow, write_csv
from tests.factories import BASE, Tenant
from tests.live import LiveServer
from tests.worlds import Own, own_app

FLOWS = f"{BASE}/flows"
THROTTLED = {"error_code": "429050", "message": "Too many requests"}


def adobe_400(response: httpx.Response, code: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"].endswith(f"FLOW-{code}-400"), body
    message: str = body["errorMessage"]
    return message


# -- request bodies and pages ----------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_anything_reads_it(
    client: TestClient, services: Services, tenant: Tenant
) -> None:
    limit = services.settings.max_body_bytes
    headers = tenant.headers(**{"content-type": "application/json"})
    declared = client.post(f"{BASE}/connections", content=b" " * (limit + 1), headers=headers)
    assert declared.status_code == 413
    assert declared.json()["type"].endswith("-413") and str(limit) in declared.json()["errorMessage"]
    at_limit = client.post(f"{BASE}/connections", content=b" " * limit, headers=headers)
    assert at_limit.status_code == 400  # read whole, then refused as JSON: the limit is inclusive


@pytest.mark.parametrize("limit", ["0", "1001", "99999999999999999999", "-1", "10.5"])
def test_page_size_is_at_most_1000(client: TestClient, tenant: Tenant, limit: str) -> None:
    assert "1000" in adobe_400(client.get(f"{FLOWS}?limit={limit}", headers=tenant.headers()), "1452")


def test_a_page_of_1000_is_allowed(client: TestClient, tenant: Tenant) -> None:
    assert client.get(f"{FLOWS}?limit=1000", headers=tenant.headers()).status_code == 200


# -- filter complexity -----------------------------------------------------------------------------


def test_too_many_filters(client: TestClient, tenant: Tenant) -> None:
    many = [("property", f"name==n{i}") for i in range(query.MAX_FILTERS + 1)]
    message = adobe_400(client.get(FLOWS, params=many, headers=tenant.headers()), "1452")
    assert f"at most {query.MAX_FILTERS}" in message
    # the explode:false form counts its expressions too
    joined = ",".join(f"state==s{i}" if i % 2 else f"name==n{i}" for i in range(query.MAX_FILTERS + 1))
    adobe_400(client.get(FLOWS, params={"property": joined}, headers=tenant.headers()), "1452")
    enough = many[: query.MAX_FILTERS]
    assert client.get(FLOWS, params=enough, headers=tenant.headers()).status_code == 200


def test_too_many_values_in_one_filter(client: TestClient, tenant: Tenant) -> None:
    values = ",".join(f"v{i}" for i in range(query.MAX_VALUES + 1))
    message = adobe_400(
        client.get(FLOWS, params={"property": f"name=={values}"}, headers=tenant.headers()), "1452"
    )
    assert f"at most {query.MAX_VALUES}" in message
    fine = ",".join(f"v{i}" for i in range(query.MAX_VALUES))
    assert (
        client.get(FLOWS, params={"property": f"name=={fine}"}, headers=tenant.headers()).status_code == 200
    )


def test_a_filter_too_long(client: TestClient, tenant: Tenant) -> None:
    prefix = "description=="
    longest = prefix + "x" * (query.MAX_PROPERTY_LENGTH - len(prefix))
    answer = client.get(FLOWS, params={"property": longest}, headers=tenant.headers())
    assert (answer.status_code, answer.json()["items"]) == (200, [])
    message = adobe_400(
        client.get(FLOWS, params={"property": longest + "x"}, headers=tenant.headers()), "1452"
    )
    assert f"at most {query.MAX_PROPERTY_LENGTH}" in message


# -- files per run, bytes per file -----------------------------------------------------------------


@pytest.fixture
def small(database_url: str, tmp_path: Path) -> Iterator[Own]:
    with own_app(database_url, tmp_path, max_files_per_run=2, max_file_bytes=2_000) as app:
        yield app


def copy_error(run: dict[str, Any]) -> str:
    [copy] = [a for a in run["activities"] if a["name"] == "Copy Activity"]
    assert copy["statusSummary"]["status"] == "failed"
    return str(copy["statusSummary"])


def run_folder(own: Own, tenant: Tenant, folder: str) -> dict[str, Any]:
    flow = dlz_flow(own.client, tenant, folder, mappings=factories.IDENTITY_MAPPINGS).flow_id
    return factories.wait_for_run(own.client, tenant, factories.start_run(own.client, tenant, flow))


def test_a_run_takes_at_most_max_files_per_run(small: Own) -> None:
    tenant = factories.new_tenant(small.services, small.client)
    zone = small.services.settings.landing_zone / tenant.org_id / tenant.sandbox
    for name in ("a.csv", "b.csv", "c.csv"):
        write_csv(zone / "three" / name, customers(1, 3, {}))
    run = run_folder(small, tenant, "three")
    assert run["state"] == "failed"
    assert run["metrics"]["statusSummary"]["errors"][0]["code"] == "CONNECTOR-1001-500"
    assert "3 files are in scope; a run takes at most 2" in copy_error(run)
    assert run["metrics"]["recordSummary"].get("outputRecordCount", 0) == 0

    write_csv(zone / "two" / "a.csv", customers(1, 3, {}))
    write_csv(zone / "two" / "b.csv", customers(4, 3, {}))
    assert run_folder(small, tenant, "two")["state"] == "success"


def test_a_file_over_max_file_bytes_fails_the_run(small: Own) -> None:
    tenant = factories.new_tenant(small.services, small.client)
    zone = small.services.settings.landing_zone / tenant.org_id / tenant.sandbox
    size = write_csv(zone / "big" / "a.csv", customers(1, 100, {}))
    assert size > 2_000
    run = run_folder(small, tenant, "big")
    assert run["state"] == "failed"
    assert f"a.csv has {size} bytes; the limit is 2000" in copy_error(run)


# -- the per-client rate limit ---------------------------------------------------------------------


@pytest.fixture
def limited(services: Services) -> Iterator[TestClient]:
    """The suite's services behind an app whose gateway allows 3 requests at once, then 1 per 10 s."""
    settings = services.settings.model_copy(update={"rate_limit_per_second": 0.1, "rate_limit_burst": 3})
    with TestClient(create_app(dataclasses.replace(services, settings=settings))) as app:
        yield app


def test_a_client_over_its_rate_gets_429_with_retry_after(
    limited: TestClient, services: Services, tenant: Tenant
) -> None:
    for _ in range(3):
        assert limited.get(FLOWS, headers=tenant.headers()).status_code == 200
    refused = limited.get(FLOWS, headers=tenant.headers())
    assert (refused.status_code, refused.json()) == (429, THROTTLED)
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert refused.headers["x-request-id"]
    # writes, unknown routes and other sandboxes count against the same client
    assert limited.post(f"{BASE}/connections", json={}, headers=tenant.headers()).status_code == 429

    other = factories.new_tenant(services, limited)  # another client id: a bucket of its own
    assert limited.get(FLOWS, headers=other.headers()).status_code == 200
    # what is not a client's API call is not counted: health, tokens, and requests without a valid token
    assert limited.get("/healthz").status_code == 200
    assert factories.token_for(limited, tenant.client_id, tenant.client_secret)
    forged = limited.get(FLOWS, headers={**tenant.headers(), "Authorization": "Bearer forged"})
    assert forged.json()["error_code"] == "401013"


def test_the_rate_limit_is_off_by_default(client: TestClient, services: Services, tenant: Tenant) -> None:
    assert services.settings.rate_limit_per_second == 0
    assert all(client.get(FLOWS, headers=tenant.headers()).status_code == 200 for _ in range(30))


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_buckets_refill_at_the_rate_and_cap_at_the_burst() -> None:
    ticks = Ticks()
    buckets = TokenBuckets(rate=2.0, burst=4, clock=ticks)
    assert [buckets.take("a") for _ in range(4)] == [0.0] * 4
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes back every 0.5 s
    ticks.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    ticks.now += 3600  # refills to the burst, no further
    assert [buckets.take("a") for _ in range(5)][:4] == [0.0] * 4
    assert buckets.take("b") == 0.0  # another key is untouched by a's use
    assert TokenBuckets(rate=2.5, burst=0).burst == 3  # burst 0: the rate rounded up
    assert (retry_after(0.01), retry_after(1.0), retry_after(1.2)) == ("1", "1", "2")


def test_token_buckets_forget_idle_clients() -> None:
    ticks = Ticks()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=ticks)
    for n in range(MAX_BUCKETS):
        buckets.take(f"old-{n}")
    ticks.now += 2  # every old bucket has refilled: it holds nothing worth keeping
    buckets.take("new")
    assert len(buckets._buckets) == 1


# -- revocation, over real HTTP --------------------------------------------------------------------


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLOWSERVICE_HOME": str(settings.home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "flowservice", *args], env=env, capture_output=True, text=True, timeout=60
    )


def live_headers(server: LiveServer, credential: identity.NewCredential) -> dict[str, str]:
    token = httpx.post(
        f"{server.url}/ims/token/v3",
        data={
            "grant_type": "client_credentials",
            "client_id": credential.client_id,
            "client_secret": credential.client_secret,
        },
    ).json()["access_token"]
    return {
        "Authorization": f"Bearer {token}",
        "x-api-key": credential.client_id,
        "x-gw-ims-org-id": credential.org_id,
        "x-sandbox-name": "prod",
    }


def test_a_revoked_credential_is_refused_on_its_next_request(
    live_server: LiveServer, services: Services, settings: Settings
) -> None:
    by_cli = identity.create_credentials(services.db, factories.new_org_id())
    by_service = identity.create_credentials(services.db, factories.new_org_id())
    with httpx.Client(base_url=live_server.url) as http:
        headers = {c.client_id: live_headers(live_server, c) for c in (by_cli, by_service)}
        for credential in (by_cli, by_service):
            assert http.get(FLOWS, headers=headers[credential.client_id]).status_code == 200

        revoked = cli(settings, "credentials", "revoke", by_cli.client_id)
        assert revoked.returncode == 0, revoked.stderr
        assert identity.revoke_credentials(services.db, by_service.client_id)
        for credential in (by_cli, by_service):
            answer = http.get(FLOWS, headers=headers[credential.client_id])
            assert (answer.status_code, answer.json()) == (
                401,
                {"error_code": "401013", "message": "Oauth token is not valid"},
            )
            renewed = http.post(
                "/ims/token/v3",
                data={
                    "grant_type": "client_credentials",
                    "client_id": credential.client_id,
                    "client_secret": credential.client_secret,
                },
            )
            assert renewed.status_code == 401
