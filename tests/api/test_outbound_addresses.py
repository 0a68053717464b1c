"""Tenants cannot point the server at link-local or cloud metadata addresses: not when a connection or
an alert rule is saved (400 naming the field), and not later through a name re-pointed in DNS (the
test, explore, the run and the webhook delivery check the address they connect to)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from flowservice import catalog, egress
from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.workers.notifier import Notifier
from tests import factories
from tests.factories import BASE, Tenant
from tests.fake_dns import FakeDns, fake_dns
from tests.receiver import Receiver, receiver
from tests.worlds import Own, own_app

ALERTS = "/data/infrastructure/observability/alerts"
METADATA = "169.254.169.254"
REFUSED_HOSTS = [
    METADATA,
    "[fd00:ec2::254]",
    "[fe80::1]",
    "169.254.10.20",
    "0.0.0.0",
    "2852039166",  # 169.254.169.254 as one number
    "[::ffff:169.254.169.254]",
    "metadata.test",  # a name that resolves to the metadata address
]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDns]:
    with fake_dns(monkeypatch) as found:
        found.point("metadata.test", METADATA)
        yield found


def s3(url: str) -> dict[str, Any]:
    params = {"s3AccessKey": "AKIAEXAMPLE", "s3SecretKey": "s3-secret", "serviceUrl": url, "bucketName": "b"}
    return factories.s3_connection(auth={"specName": "Access Key", "params": params})


def sftp(host: str) -> dict[str, Any]:
    return {
        "name": "sftp",
        "auth": {
            "specName": "Basic Authentication for sftp",
            "params": {"host": host, "port": 22, "userName": "u", "password": "sftp-secret"},
        },
        "connectionSpec": {"id": catalog.SFTP, "version": "1.0"},
    }


def refused(response: httpx.Response, field: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"].endswith("FLOW-1000-400") and body["report"]["field"] == field, body
    message: str = body["errorMessage"]
    assert "flowservice does not connect to" in message and "FLOWSERVICE_OUTBOUND_ALLOWED_NETWORKS" in message
    return message


@pytest.mark.usefixtures("dns")
@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_connections_to_refused_addresses_are_not_saved(
    client: TestClient, tenant: Tenant, host: str
) -> None:
    answer = client.post(f"{BASE}/connections", json=s3(f"http://{host}:9000"), headers=tenant.headers())
    refused(answer, "auth.params.serviceUrl")
    answer = client.post(f"{BASE}/connections", json=sftp(host.strip("[]")), headers=tenant.headers())
    refused(answer, "auth.params.host")


@pytest.mark.usefixtures("dns")
def test_the_metadata_address_is_named_in_the_refusal(client: TestClient, tenant: Tenant) -> None:
    answer = client.post(f"{BASE}/connections", json=s3("http://metadata.test/"), headers=tenant.headers())
    message = refused(answer, "auth.params.serviceUrl")
    assert "metadata.test (resolved to 169.254.169.254) is a cloud metadata address" in message


def test_loopback_private_and_unresolvable_hosts_are_saved(client: TestClient, tenant: Tenant) -> None:
    for url in (
        "http://127.0.0.1:9000",
        "http://localhost:9000",
        "http://[::1]:9000",
        "http://10.1.2.3",
        "https://s3.eu-west-1.amazonaws.com",
        "http://not-yet-in-dns.invalid",
    ):
        assert client.post(f"{BASE}/connections", json=s3(url), headers=tenant.headers()).status_code == 201
    assert (
        client.post(f"{BASE}/connections", json=sftp("127.0.0.1"), headers=tenant.headers()).status_code
        == 201
    )


def test_a_patch_cannot_point_a_connection_at_the_metadata_address(
    client: TestClient, tenant: Tenant
) -> None:
    made = factories.create(client, tenant, "connections", s3("http://127.0.0.1:9000"))
    answer = client.patch(
        f"{BASE}/connections/{made['id']}",
        json=[{"op": "replace", "path": "/auth/params/serviceUrl", "value": f"http://{METADATA}/"}],
        headers=tenant.headers(**{"if-match": made["etag"]}),
    )
    refused(answer, "auth.params.serviceUrl")


@pytest.mark.usefixtures("dns")
@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_webhooks_to_refused_addresses_are_not_saved(client: TestClient, tenant: Tenant, host: str) -> None:
    body = {"name": "r", "kind": "runFailure", "webhook": {"url": f"https://{host}/hook"}}
    refused(client.post(f"{ALERTS}/rules", json=body, headers=tenant.headers()), "webhook.url")
    body["webhook"] = {"url": "http://127.0.0.1:8999/hook"}  # loopback stays allowed
    assert client.post(f"{ALERTS}/rules", json=body, headers=tenant.headers()).status_code == 201


def test_the_allow_list_setting_lets_an_address_through(services: Services, tenant: Tenant) -> None:
    settings = services.settings.model_copy(update={"outbound_allowed_networks": "169.254.0.0/16"})
    with TestClient(create_app(dataclasses.replace(services, settings=settings))) as allowing:
        url = f"http://{METADATA}/"
        assert allowing.post(f"{BASE}/connections", json=s3(url), headers=tenant.headers()).status_code == 201
        blocked = "http://[fd00:ec2::254]/"
        refused(
            allowing.post(f"{BASE}/connections", json=s3(blocked), headers=tenant.headers()),
            "auth.params.serviceUrl",
        )


def test_a_name_re_pointed_after_saving_is_refused_when_used(
    client: TestClient, tenant: Tenant, dns: FakeDns
) -> None:
    name = f"rebind-{uuid.uuid4().hex[:8]}.test"
    dns.point(name, "127.0.0.1")
    bucket = factories.create(client, tenant, "connections", s3(f"http://{name}:9/"))
    server = factories.create(client, tenant, "connections", sftp(name))
    dns.point(name, METADATA)
    for made in (bucket, server):
        test = client.get(f"{BASE}/connections/{made['id']}/test", headers=tenant.headers())
        # S3 refuses when the source is made (a 400), SFTP when it connects (result false)
        said = test.json()["errorMessage"] if test.status_code == 400 else test.json()["message"]
        assert test.status_code == 400 or test.json()["result"] is False
        assert f"{name} (resolved to 169.254.169.254) is a cloud metadata address" in said
        explored = client.get(
            f"{BASE}/connections/{made['id']}/explore?objectType=root", headers=tenant.headers()
        )
        assert explored.status_code == 400 and "cloud metadata" in explored.json()["errorMessage"]


# -- runs and webhook deliveries, on an app of their own (workers, notifier) -----------------------


@pytest.fixture
def own(database_url: str, tmp_path: Path) -> Iterator[Own]:
    with own_app(database_url, tmp_path, retry_backoff_seconds=0) as app:
        yield app


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as found:
        yield found


def test_a_run_and_its_webhook_refuse_a_re_pointed_name(own: Own, hook: Receiver, dns: FakeDns) -> None:
    tenant = factories.new_tenant(own.services, own.client)
    name, hooks = f"s3-{uuid.uuid4().hex[:8]}.test", f"hooks-{uuid.uuid4().hex[:8]}.test"
    dns.point(name, "127.0.0.1")
    dns.point(hooks, "127.0.0.1")
    connection = factories.create(own.client, tenant, "connections", s3(f"http://{name}:9/"))
    flow = factories.dataflow(
        own.client,
        tenant,
        source=factories.s3_source(connection["id"]),
        scheduleParams={"startTime": "1700000000", "frequency": "once"},
    ).flow_id
    port = hook.url.split(":")[2].split("/")[0]
    rule = own.client.post(
        f"{ALERTS}/rules",
        json={"name": "r", "kind": "runFailure", "webhook": {"url": f"http://{hooks}:{port}/hook"}},
        headers=tenant.headers(),
    )
    assert rule.status_code == 201, rule.text
    dns.point(name, METADATA)
    dns.point(hooks, METADATA)

    run = factories.wait_for_run(own.client, tenant, factories.start_run(own.client, tenant, flow))
    assert run["state"] == "failed"
    [copy] = [a for a in run["activities"] if a["name"] == "Copy Activity"]
    assert "cloud metadata address" in str(copy["statusSummary"])
    runs = own.client.get(f"{BASE}/runs?property=flowId=={flow}", headers=tenant.headers()).json()["items"]
    assert len(runs) == 1  # refused is final: no automatic retry

    transport = egress.http_transport(egress.policy_of(own.services.settings))
    with httpx.Client(transport=transport) as http:
        assert Notifier(own.services).round(http) == 1
    [delivery] = own.client.get(f"{ALERTS}/deliveries", headers=tenant.headers()).json()["items"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)  # given up at once, not retried
    assert "cloud metadata address" in delivery["lastError"]
    assert hook.requests == []
