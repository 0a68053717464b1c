"""Source and target connections over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.services.context import Services
from tests import factories
from tests.factories import BASE, Tenant


def post(client: TestClient, tenant: Tenant, collection: str, body: dict[str, Any]) -> tuple[int, str, str]:
    response = client.post(f"{BASE}/{collection}", json=body, headers=tenant.headers())
    if response.status_code == 201:
        return 201, "", ""
    payload = response.json()
    return response.status_code, payload["type"].rsplit("/", 1)[-1], payload["errorMessage"]


def test_s3_source_inherits_its_base_connection(client: TestClient, tenant: Tenant) -> None:
    connection = factories.create(client, tenant, "connections", factories.s3_connection())
    created = factories.create(client, tenant, "sourceConnections", factories.s3_source(connection["id"]))
    item = factories.get(client, tenant, "sourceConnections", created["id"])
    assert item["baseConnectionId"] == connection["id"]
    assert item["inheritedAttributes"] == {
        "baseConnection": {
            "id": connection["id"],
            "connectionSpec": {"id": catalog.AMAZON_S3, "version": "1.0"},
        }
    }
    assert item["data"] == {"format": "delimited", "properties": {"columnDelimiter": ","}}
    assert item["params"] == {"path": "/landing/customers.csv", "type": "file"}
    assert item["state"] == "enabled"


def test_landing_zone_sources_have_no_base_connection(client: TestClient, tenant: Tenant) -> None:
    created = factories.create(client, tenant, "sourceConnections", factories.dlz_source())
    item = factories.get(client, tenant, "sourceConnections", created["id"])
    assert "baseConnectionId" not in item and item["inheritedAttributes"] == {}
    connection = factories.create(client, tenant, "connections", factories.s3_connection())
    assert post(client, tenant, "sourceConnections", factories.dlz_source(baseConnectionId=connection["id"]))[
        :2
    ] == (
        400,
        "FLOW-1332-400",
    )


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"baseConnectionId": None}, "FLOW-1000-400", "baseConnectionId is required"),
        ({"baseConnectionId": "00000000-0000-0000-0000-000000000000"}, "FLOW-1000-400", "does not exist"),
        ({"params": {"type": "file"}}, "FLOW-1000-400", "'path'"),
        ({"data": {"format": "xml"}}, "FLOW-1000-400", "data.format"),
        (
            {"data": {"format": "delimited", "properties": {"encoding": "EBCDIC"}}},
            "FLOW-1000-400",
            "encoding",
        ),
        (
            {"data": {"format": "delimited", "properties": {"columnDelimiter": ";;"}}},
            "FLOW-1000-400",
            "columnDelimiter",
        ),
        ({"connectionSpec": {"id": catalog.DATA_LAKE, "version": "1.0"}}, "FLOW-1413-400", "not a source"),
        ({"connectionSpec": {"id": catalog.SFTP, "version": "1.0"}}, "FLOW-1413-400", "not " + catalog.SFTP),
    ],
)
def test_source_errors_name_the_field(
    client: TestClient, tenant: Tenant, change: dict[str, Any], code: str, words: str
) -> None:
    connection = factories.create(client, tenant, "connections", factories.s3_connection())
    status, error, message = post(
        client, tenant, "sourceConnections", factories.s3_source(connection["id"], **change)
    )
    assert (status, error) == (400, code), message
    assert words in message


def test_landing_zone_paths_cannot_escape(client: TestClient, tenant: Tenant) -> None:
    for path in ("../other-org/file.csv", "incoming/../../x.csv"):
        status, code, message = post(
            client, tenant, "sourceConnections", factories.dlz_source(params={"path": path})
        )
        assert (status, code) == (400, "FLOW-1000-400") and "params.path" in message


def test_patch_source_params_and_refuse_delete_while_a_flow_uses_it(
    client: TestClient, tenant: Tenant
) -> None:
    dataflow = factories.dataflow(client, tenant)
    source = factories.get(client, tenant, "sourceConnections", dataflow.source_id)
    patched = client.patch(
        f"{BASE}/sourceConnections/{dataflow.source_id}",
        json=[{"op": "replace", "path": "/params/path", "value": "/landing/other.csv"}],
        headers=tenant.headers(**{"If-Match": source["etag"]}),
    )
    assert patched.status_code == 200
    item = factories.get(client, tenant, "sourceConnections", dataflow.source_id)
    assert item["params"]["path"] == "/landing/other.csv"
    assert item["lastOperation"]["ops"] == [
        {"op": "replace", "path": "/params/path", "value": "/landing/other.csv"}
    ]
    for collection, resource_id in (
        ("sourceConnections", dataflow.source_id),
        ("targetConnections", dataflow.target_id),
    ):
        refused = client.delete(f"{BASE}/{collection}/{resource_id}", headers=tenant.headers())
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("FLOW-1447-400")
        assert dataflow.flow_id in refused.json()["errorMessage"]
    assert client.delete(f"{BASE}/flows/{dataflow.flow_id}", headers=tenant.headers()).status_code == 204
    for collection, resource_id in (
        ("sourceConnections", dataflow.source_id),
        ("targetConnections", dataflow.target_id),
        ("connections", dataflow.connection_id),
    ):
        assert (
            client.delete(f"{BASE}/{collection}/{resource_id}", headers=tenant.headers()).status_code == 204
        )


def test_target_connections(client: TestClient, tenant: Tenant) -> None:
    dataset_id = factories.dataset(client, tenant)
    created = factories.create(client, tenant, "targetConnections", factories.target(dataset_id))
    item = factories.get(client, tenant, "targetConnections", created["id"])
    assert item["params"] == {"dataSetId": dataset_id}
    assert item["data"]["format"] == "parquet_xdm"  # aepp's default format is accepted as is
    assert item["connectionSpec"] == {"id": catalog.DATA_LAKE, "version": "1.0"}
    assert post(client, tenant, "targetConnections", factories.target(dataset_id, params={}))[:2] == (
        400,
        "FLOW-1325-400",
    )
    wrong = factories.target(dataset_id, connectionSpec={"id": catalog.AMAZON_S3, "version": "1.0"})
    assert post(client, tenant, "targetConnections", wrong)[:2] == (400, "FLOW-1307-400")
    missing = factories.target("5ed18e0f4f90b719196f44a9")
    status, code, message = post(client, tenant, "targetConnections", missing)
    assert (status, code) == (400, "FLOW-1000-400") and "does not exist" in message


def test_connection_spec_version_may_be_a_number(
    client: TestClient, services: Services, tenant: Tenant
) -> None:
    del services
    created = factories.create(
        client,
        tenant,
        "targetConnections",
        factories.target(
            factories.dataset(client, tenant), connectionSpec={"id": catalog.DATA_LAKE, "version": 1}
        ),
    )
    assert (
        factories.get(client, tenant, "targetConnections", created["id"])["connectionSpec"]["version"]
        == "1.0"
    )
