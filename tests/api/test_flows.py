"""Dataflows over HTTP: references, schedules, options, actions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice import catalog
from tests import factories
from tests.factories import BASE, Tenant

URL = f"{BASE}/flows"


def error(response: Any) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["type"].rsplit("/", 1)[-1], body["errorMessage"]


@pytest.fixture
def parts(client: TestClient, tenant: Tenant) -> tuple[str, str]:
    connection = factories.create(client, tenant, "connections", factories.s3_connection())
    source = factories.create(client, tenant, "sourceConnections", factories.s3_source(connection["id"]))
    target = factories.create(
        client, tenant, "targetConnections", factories.target(factories.dataset(client, tenant))
    )
    return source["id"], target["id"]


def test_flow_document(client: TestClient, tenant: Tenant) -> None:
    dataflow = factories.dataflow(
        client, tenant, options={"partialIngestionPercent": "10", "errorDiagnosticsEnabled": "true"}
    )
    flow = factories.get(client, tenant, "flows", dataflow.flow_id)
    assert flow["state"] == "enabled"
    assert flow["runs"] == f"/runs?property=flowId=={dataflow.flow_id}"
    assert flow["flowSpec"] == {"id": catalog.CLOUD_STORAGE_TO_AEP, "version": "1.0"}
    assert flow["scheduleParams"] == {
        "startTime": "1597784298",
        "frequency": "minute",
        "interval": "30",
    }  # as sent
    assert flow["options"] == {
        "partialIngestionPercent": 10,
        "errorDiagnosticsEnabled": True,
    }  # as Adobe echoes
    assert flow["inheritedAttributes"] == {
        "properties": {"isSourceFlow": True},
        "sourceConnections": [
            {
                "id": dataflow.source_id,
                "connectionSpec": {"id": catalog.AMAZON_S3, "version": "1.0"},
                "baseConnection": {
                    "id": dataflow.connection_id,
                    "connectionSpec": {"id": catalog.AMAZON_S3, "version": "1.0"},
                },
            }
        ],
        "targetConnections": [
            {"id": dataflow.target_id, "connectionSpec": {"id": catalog.DATA_LAKE, "version": "1.0"}}
        ],
    }
    assert flow["lastOperation"]["operation"] == "create"
    assert "lastRunDetails" not in flow  # no run yet


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"state": "disabled"}, "FLOW-1410-400"),
        ({"flowSpec": {"id": "nope", "version": "1.0"}}, "FLOW-1413-400"),
        ({"flowSpec": {"id": catalog.CRM_TO_AEP, "version": "1.0"}}, "FLOW-1413-400"),
        ({"scheduleParams": None}, "FLOW-1317-400"),
        ({"scheduleParams": {"startTime": "1", "frequency": "fortnight", "interval": "1"}}, "FLOW-1397-400"),
        ({"scheduleParams": {"startTime": "1", "frequency": "once", "interval": "1"}}, "FLOW-1361-400"),
        ({"scheduleParams": {"startTime": "1", "frequency": "minute", "interval": "5"}}, "FLOW-1362-400"),
        ({"scheduleParams": {"startTime": "1", "frequency": "once", "backfill": "true"}}, "FLOW-1364-400"),
        ({"options": {"partialIngestionPercent": 0}}, "FLOW-1000-400"),
        ({"options": {"errorDiagnosticsEnabled": "yes"}}, "FLOW-1000-400"),
        ({"transformations": [{"name": "Explode", "params": {}}]}, "FLOW-1000-400"),
        ({"transformations": [{"name": "Mapping", "params": {}}]}, "FLOW-1000-400"),
        ({"sourceConnectionIds": []}, "FLOW-1000-400"),
    ],
)
def test_create_errors(
    client: TestClient, tenant: Tenant, parts: tuple[str, str], change: dict[str, Any], code: str
) -> None:
    response = client.post(URL, json=factories.flow(*parts, **change), headers=tenant.headers())
    assert error(response)[:2] == (400, code), response.text


def test_references_must_exist_in_the_tenant_and_fit_the_spec(
    client: TestClient, tenant: Tenant, parts: tuple[str, str]
) -> None:
    source, target = parts
    missing = client.post(
        URL, json=factories.flow("00000000-0000-0000-0000-000000000000", target), headers=tenant.headers()
    )
    assert error(missing)[:2] == (400, "FLOW-1000-400")
    assert missing.json()["report"]["field"] == "sourceConnectionIds[0]"
    swapped = client.post(URL, json=factories.flow(target, source), headers=tenant.headers())
    assert error(swapped)[:2] == (400, "FLOW-1000-400")
    pg = factories.create(
        client,
        tenant,
        "connections",
        {
            "name": "pg",
            "auth": {
                "specName": "Connection String Based Authentication",
                "params": {"connectionString": "Server=127.0.0.1;Port=5432;Database=test;UID=postgres;PWD=x"},
            },
            "connectionSpec": {"id": catalog.POSTGRESQL, "version": "1.0"},
        },
    )
    table = factories.create(
        client,
        tenant,
        "sourceConnections",
        {
            "name": "t",
            "baseConnectionId": pg["id"],
            "data": {"format": "tabular"},
            "params": {"tableName": "people"},
            "connectionSpec": {"id": catalog.POSTGRESQL, "version": "1.0"},
        },
    )
    wrong_spec = client.post(URL, json=factories.flow(table["id"], target), headers=tenant.headers())
    assert error(wrong_spec)[:2] == (400, "FLOW-1413-400")
    crm = factories.flow(table["id"], target, flowSpec={"id": catalog.CRM_TO_AEP, "version": "1.0"})
    assert error(client.post(URL, json=crm, headers=tenant.headers()))[:2] == (400, "FLOW-1367-400")
    crm["transformations"] = [{"name": "Copy", "params": {"deltaColumn": {"name": "updated_at"}}}]
    assert client.post(URL, json=crm, headers=tenant.headers()).status_code == 201


def test_patch_schedule_options_and_labels(client: TestClient, tenant: Tenant) -> None:
    dataflow = factories.dataflow(client, tenant)
    flow = factories.get(client, tenant, "flows", dataflow.flow_id)
    ops = [
        {"op": "replace", "path": "/scheduleParams/interval", "value": "60"},
        {"op": "add", "path": "/options", "value": {"partialIngestionPercent": "5"}},
        {"op": "add", "path": "/labels", "value": ["core/C12"]},
    ]
    response = client.patch(
        f"{URL}/{dataflow.flow_id}", json=ops, headers=tenant.headers(**{"If-Match": flow["etag"]})
    )
    assert response.status_code == 200, response.text
    after = factories.get(client, tenant, "flows", dataflow.flow_id)
    assert after["scheduleParams"]["interval"] == "60"
    assert after["options"] == {"partialIngestionPercent": 5}
    assert after["labels"] == ["core/C12"]
    assert after["lastOperation"]["operation"] == "update" and after["lastOperation"]["ops"] == ops
    assert after["inheritedAttributes"] == flow["inheritedAttributes"]
    started = [{"op": "replace", "path": "/scheduleParams/startTime", "value": "1900000000"}]
    refused = client.patch(
        f"{URL}/{dataflow.flow_id}", json=started, headers=tenant.headers(**{"If-Match": after["etag"]})
    )
    assert error(refused)[:2] == (400, "FLOW-1366-400")  # the start time of 2020 has passed
    frozen = [{"op": "replace", "path": "/sourceConnectionIds", "value": []}]
    refused = client.patch(
        f"{URL}/{dataflow.flow_id}", json=frozen, headers=tenant.headers(**{"If-Match": after["etag"]})
    )
    assert error(refused)[:2] == (400, "FLOW-1365-400")


def test_actions_move_state_and_renew_the_etag(client: TestClient, tenant: Tenant) -> None:
    dataflow = factories.dataflow(client, tenant)
    before = factories.get(client, tenant, "flows", dataflow.flow_id)
    disabled = client.post(f"{URL}/{dataflow.flow_id}/action?op=disable", headers=tenant.headers())
    assert disabled.status_code == 200 and disabled.json()["id"] == dataflow.flow_id
    assert disabled.json()["etag"] != before["etag"]
    flow = factories.get(client, tenant, "flows", dataflow.flow_id)
    assert flow["state"] == "disabled" and flow["lastOperation"]["operation"] == "disable"
    again = client.post(f"{URL}/{dataflow.flow_id}/action?op=disable", headers=tenant.headers())
    assert error(again) == (
        400,
        "FLOW-1422-400",
        "The action disable cannot be applied on the current state disabled.",
    )
    assert (
        client.post(
            f"{URL}/{dataflow.flow_id}/action?op=ENABLE&subOp=APPLY", headers=tenant.headers()
        ).status_code
        == 200
    )
    assert factories.get(client, tenant, "flows", dataflow.flow_id)["state"] == "enabled"
    assert error(client.post(f"{URL}/{dataflow.flow_id}/action?op=explode", headers=tenant.headers()))[
        :2
    ] == (400, "FLOW-1422-400")
    stale = client.post(
        f"{URL}/{dataflow.flow_id}/action?op=disable", headers=tenant.headers(**{"If-Match": before["etag"]})
    )
    assert error(stale)[:2] == (412, "FLOW-1404-412")


def test_list_envelope_always_has_links_and_pages_by_token(
    client: TestClient, tenant: Tenant, parts: tuple[str, str]
) -> None:
    ids = [
        factories.create(client, tenant, "flows", factories.flow(*parts, name=f"f{i}"))["id"]
        for i in range(5)
    ]
    seen: list[tuple[int, str]] = []
    response = client.get(f"{URL}?limit=2", headers=tenant.headers())
    while True:
        body = response.json()
        assert set(body) == {"items", "_links"}
        assert len(body["items"]) <= 2
        seen += [(item["createdAt"], item["id"]) for item in body["items"]]
        if not body["_links"]:
            break
        href = body["_links"]["next"]["href"]
        assert href.startswith("/flows?continuationToken=")
        token = href.split("=", 1)[1]
        assert "=" not in token and "&" not in token
        response = client.get(f"{BASE}{href}", headers=tenant.headers())
    assert sorted(i for _, i in seen) == sorted(ids)  # every flow once
    assert seen == sorted(seen, reverse=True)  # newest first, ties broken by id
