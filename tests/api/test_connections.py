"""Base connections over HTTP: Adobe's wire format, auth checked against the spec, secrets never returned."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from flowservice import catalog
from flowservice.services.context import Services
from flowservice.store.tables import Connection
from tests import factories
from tests.factories import BASE, Tenant

ETAG = re.compile(r'^"[0-9a-f]{8}-0000-0200-0000-[0-9a-f]{8}0000"$')
URL = f"{BASE}/connections"


def error_of(response: object) -> tuple[int, str, str]:
    body = response.json()  # type: ignore[attr-defined]
    return response.status_code, body["type"].rsplit("/", 1)[-1], body["errorMessage"]  # type: ignore[attr-defined]


def test_create_answers_201_with_id_etag_and_location(client: TestClient, tenant: Tenant) -> None:
    response = client.post(URL, json=factories.s3_connection(), headers=tenant.headers())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "etag"}
    assert ETAG.match(body["etag"])
    assert response.headers["location"] == f"http://testserver{URL}/{body['id']}"


def test_get_returns_the_item_in_a_list_envelope_with_system_fields(
    client: TestClient, tenant: Tenant
) -> None:
    created = factories.create(client, tenant, "connections", factories.s3_connection())
    response = client.get(f"{URL}/{created['id']}", headers=tenant.headers())
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item["id"] == created["id"]
    assert item["etag"] == item["version"] == created["etag"]
    assert item["imsOrgId"] == tenant.org_id
    assert item["sandboxName"] == "prod" and item["sandboxId"]
    assert item["createdBy"] == item["createdClient"] == tenant.client_id
    assert item["createdAt"] == item["updatedAt"] and item["createdAt"] > 1_600_000_000_000
    assert item["state"] == "enabled"
    assert item["connectionSpec"] == {"id": catalog.AMAZON_S3, "version": "1.0"}
    assert item["auth"]["specName"] == "Access Key"
    assert item["lastOperation"]["operation"] == "create"


def test_secrets_are_sealed_at_rest_and_never_returned(
    client: TestClient, services: Services, tenant: Tenant
) -> None:
    body = factories.s3_connection()
    secret = body["auth"]["params"]["s3SecretKey"]
    created = client.post(URL, json=body, headers=tenant.headers())
    item = factories.get(client, tenant, "connections", created.json()["id"])
    listing = client.get(URL, headers=tenant.headers())
    patched = client.patch(
        f"{URL}/{item['id']}",
        json=[{"op": "add", "path": "/auth/params/s3SessionToken", "value": "planted-session-token"}],
        headers=tenant.headers(**{"If-Match": item["etag"]}),
    )
    after = client.get(f"{URL}/{item['id']}", headers=tenant.headers())
    for response in (created, listing, patched, after):
        assert secret not in response.text and "planted-session-token" not in response.text
    assert "s3SecretKey" not in item["auth"]["params"]
    assert item["auth"]["params"]["s3AccessKey"] == "AKIAEXAMPLE"  # not a secret: shown
    with services.db.reader() as session:
        row = session.scalars(select(Connection).where(Connection.id == item["id"])).one()
        assert row.secrets and secret not in row.secrets and secret not in json.dumps(row.doc)
        opened = services.box.open(row.secrets)
    assert opened == {"s3SecretKey": secret, "s3SessionToken": "planted-session-token"}


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"connectionSpec": {"id": "no-such-spec", "version": "1.0"}}, "FLOW-1413-400", "no-such-spec"),
        ({"auth": {"specName": "Password", "params": {}}}, "FLOW-1415-400", "'Access Key'"),
        (
            {"auth": {"specName": "Access Key", "params": {"s3AccessKey": "a"}}},
            "FLOW-1000-400",
            "'s3SecretKey'",
        ),
        (
            {
                "auth": {
                    "specName": "Access Key",
                    "params": {"s3AccessKey": "a", "s3SecretKey": "b", "region": "x"},
                }
            },
            "FLOW-1000-400",
            "'region'",
        ),
        (
            {"auth": {"specName": "Access Key", "params": {"s3AccessKey": 5, "s3SecretKey": "b"}}},
            "FLOW-1000-400",
            "auth.params.s3AccessKey",
        ),
        ({"connectionSpec": {"id": catalog.DATA_LANDING_ZONE}}, "FLOW-1415-400", "Data Landing Zone"),
        ({"name": ""}, "FLOW-1000-400", "name"),
        ({"auth": None}, "FLOW-1000-400", "auth"),
        ({"connectionSpec": "ecadc60c"}, "FLOW-1000-400", "connectionSpec"),
        ({"colour": "blue"}, "FLOW-1000-400", "'colour'"),
        ({"state": "enabled"}, "FLOW-1410-400", "state"),
    ],
)
def test_invalid_bodies_name_the_field(
    client: TestClient, tenant: Tenant, change: dict[str, object], code: str, words: str
) -> None:
    response = client.post(URL, json=factories.s3_connection(**change), headers=tenant.headers())
    status, error_type, message = error_of(response)
    assert (status, error_type) == (400, code), message
    assert words in message


def test_a_wrongly_typed_secret_is_named_but_not_echoed(client: TestClient, tenant: Tenant) -> None:
    body = {
        "name": "sftp",
        "auth": {
            "specName": "Basic Authentication for sftp",
            "params": {"host": "h", "userName": "u", "password": ["hunter2-in-a-list"], "port": "22"},
        },
        "connectionSpec": {"id": catalog.SFTP, "version": "1.0"},
    }
    response = client.post(URL, json=body, headers=tenant.headers())
    assert response.status_code == 400
    assert "hunter2" not in response.text
    assert "auth.params" in response.json()["errorMessage"]


def test_patch_requires_if_match_and_refuses_stale_versions(client: TestClient, tenant: Tenant) -> None:
    created = factories.create(client, tenant, "connections", factories.s3_connection())
    ops = [{"op": "replace", "path": "/name", "value": "renamed"}]
    missing = client.patch(f"{URL}/{created['id']}", json=ops, headers=tenant.headers())
    assert error_of(missing)[:2] == (400, "FLOW-1403-400")
    first = client.patch(
        f"{URL}/{created['id']}", json=ops, headers=tenant.headers(**{"If-Match": created["etag"]})
    )
    assert first.status_code == 200 and set(first.json()) == {"id", "etag"}
    assert first.json()["etag"] != created["etag"]
    stale = client.patch(
        f"{URL}/{created['id']}", json=ops, headers=tenant.headers(**{"If-Match": created["etag"]})
    )
    assert error_of(stale)[:2] == (412, "FLOW-1404-412")
    item = factories.get(client, tenant, "connections", created["id"])
    assert item["name"] == "renamed"
    assert item["etag"] == item["version"] == first.json()["etag"]
    assert item["updatedAt"] >= item["createdAt"]
    assert item["lastOperation"]["operation"] == "update"


@pytest.mark.parametrize("form", ["quoted", "bare", "weak"])
def test_if_match_accepts_the_forms_clients_send(client: TestClient, tenant: Tenant, form: str) -> None:
    created = factories.create(client, tenant, "connections", factories.s3_connection())
    etag = {"quoted": created["etag"], "bare": created["etag"].strip('"'), "weak": "W/" + created["etag"]}[
        form
    ]
    response = client.patch(
        f"{URL}/{created['id']}/",  # the spec's path has a trailing slash; both work
        json={"op": "Replace", "path": "/description", "value": "single object, aepp-style op"},
        headers=tenant.headers(**{"If-Match": etag}),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ([{"op": "replace", "path": "/connectionSpec/id", "value": catalog.SFTP}], "FLOW-1365-400"),
        ([{"op": "move", "from": "/name", "path": "/description"}], "FLOW-1434-400"),
        ([{"op": "remove", "path": "/auth/params/nothingHere"}], "FLOW-1455-400"),
        ([{"op": "remove", "path": "/auth/params/s3SecretKey"}], "FLOW-1000-400"),
        ([{"op": "replace", "path": "/auth/specName", "value": "Other"}], "FLOW-1415-400"),
        ([], "FLOW-1405-400"),
    ],
)
def test_patch_errors(client: TestClient, tenant: Tenant, ops: list[dict[str, object]], code: str) -> None:
    created = factories.create(client, tenant, "connections", factories.s3_connection())
    response = client.patch(
        f"{URL}/{created['id']}", json=ops, headers=tenant.headers(**{"If-Match": created["etag"]})
    )
    assert error_of(response)[:2] == (400, code), response.text
    assert (
        factories.get(client, tenant, "connections", created["id"])["etag"] == created["etag"]
    )  # nothing written


def test_delete_then_404_and_in_use_is_1418(client: TestClient, tenant: Tenant) -> None:
    lone = factories.create(client, tenant, "connections", factories.s3_connection())
    assert client.delete(f"{URL}/{lone['id']}", headers=tenant.headers()).status_code == 204
    gone = client.get(f"{URL}/{lone['id']}", headers=tenant.headers())
    assert error_of(gone) == (
        404,
        "FLOW-1439-404",
        f"The requested connections resource {lone['id']} is not found. Verify the resource ID before trying again.",
    )
    assert gone.json()["report"]["id"] == lone["id"] and gone.json()["report"]["type"] == "connections"
    dataflow = factories.dataflow(client, tenant)
    refused = client.delete(f"{URL}/{dataflow.connection_id}/", headers=tenant.headers())
    status, code, message = error_of(refused)
    assert (status, code) == (400, "FLOW-1418-400") and dataflow.flow_id in message


def test_http_api_connections_get_a_server_made_inlet(client: TestClient, tenant: Tenant) -> None:
    body = {
        "name": "stream",
        "providerId": "521eee4d-8cbe-4906-bb48-fb6bd4450033",
        "auth": {
            "specName": "Streaming Connection",
            "params": {"name": "s", "sourceId": "s", "dataType": "xdm"},
        },
        "connectionSpec": {"id": catalog.HTTP_API, "version": "1.0"},
    }
    item = factories.get(
        client, tenant, "connections", factories.create(client, tenant, "connections", body)["id"]
    )
    params = item["auth"]["params"]
    assert params["inletUrl"].endswith(f"/collection/{params['inletId']}")
