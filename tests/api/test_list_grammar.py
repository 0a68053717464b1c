"""digest 4.1's documented examples, on our resources, over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.services.context import Services
from tests import factories
from tests.factories import BASE, Tenant


def ids(client: TestClient, tenant: Tenant, collection: str, query: str) -> list[str]:
    response = client.get(f"{BASE}/{collection}?{query}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
def world(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    """Two dataflows, a table source and connections with distinct descriptions."""
    first = factories.dataflow(client, tenant, name="bravo")
    segment = "5722a16f-5e1f-4732-91b6-3b03943f759a"
    second = factories.dataflow(
        client,
        tenant,
        name="alpha",
        mappings=factories.IDENTITY_MAPPINGS,
        mapping_extra={"segmentSelectors": {"selectors": [{"value": {"id": segment}}]}},
    )
    client.post(f"{BASE}/flows/{first.flow_id}/action?op=disable", headers=tenant.headers())
    described = factories.create(
        client, tenant, "connections", factories.s3_connection(description="Test description")
    )
    pg = factories.create(
        client,
        tenant,
        "connections",
        {
            "name": "pg",
            "auth": {
                "specName": "Connection String Based Authentication",
                "params": {"connectionString": "Server=h;Port=5432;Database=d;UID=u;PWD=p"},
            },
            "connectionSpec": {"id": catalog.POSTGRESQL, "version": "1.0"},
        },
    )
    table = factories.create(
        client,
        tenant,
        "sourceConnections",
        {
            "name": "leads",
            "baseConnectionId": pg["id"],
            "data": {"format": "tabular"},
            "params": {
                "tableName": "lead",
                "columns": [{"name": "firstName", "type": "string"}, {"name": "email"}],
            },
            "connectionSpec": {"id": catalog.POSTGRESQL, "version": "1.0"},
        },
    )
    return {
        "first": first,
        "second": second,
        "segment": segment,
        "described": described["id"],
        "table": table["id"],
    }


def test_flow_examples(client: TestClient, tenant: Tenant, world: dict[str, Any]) -> None:
    first, second = world["first"], world["second"]
    assert ids(client, tenant, "flows", "orderby=name") == [second.flow_id, first.flow_id]
    assert ids(client, tenant, "flows", "orderby=-name") == [first.flow_id, second.flow_id]
    assert ids(client, tenant, "flows", "property=state==enabled&orderby=createdAt") == [second.flow_id]
    assert ids(
        client,
        tenant,
        "flows",
        f"property=transformations[].params.segmentSelectors.selectors[].value.id=={world['segment']}&property=state==enabled",
    ) == [second.flow_id]
    assert set(
        ids(client, tenant, "flows", f"property=sourceConnectionIds[]=={first.source_id},{second.source_id}")
    ) == {
        first.flow_id,
        second.flow_id,
    }
    response = client.get(f"{BASE}/flows?property=state==enabled&count=true", headers=tenant.headers())
    assert response.json() == {"count": 1}
    assert (
        ids(client, tenant, "flows", "property=inheritedAttributes.properties.isDestinationFlow==true") == []
    )
    assert (
        len(ids(client, tenant, "flows", "property=inheritedAttributes.properties.isSourceFlow==true")) == 2
    )
    assert (
        len(
            ids(
                client,
                tenant,
                "flows",
                f"property=inheritedAttributes.targetConnections[].connectionSpec.id=={catalog.DATA_LAKE}",
            )
        )
        == 2
    )
    assert (
        ids(
            client,
            tenant,
            "flows",
            "property=inheritedAttributes.targetConnections[].connectionSpec.id==4890fc95-5a1f-4983-94bb-e060c08e3f81",
        )
        == []
    )
    # the spec's explode:false form
    assert ids(
        client, tenant, "flows", f"property=state==disabled,flowSpec.id=={catalog.CLOUD_STORAGE_TO_AEP}"
    ) == [first.flow_id]


def test_connection_and_source_examples(client: TestClient, tenant: Tenant, world: dict[str, Any]) -> None:
    assert ids(client, tenant, "connections", "property=description==Test%20description") == [
        world["described"]
    ]
    assert ids(client, tenant, "sourceConnections", "property=params.tableName==lead") == [world["table"]]
    assert ids(client, tenant, "sourceConnections", "property=params.columns[].name==firstName") == [
        world["table"]
    ]
    assert ids(client, tenant, "sourceConnections", "property=params.columns[].name==lastName") == []
    assert len(ids(client, tenant, "connections", f"property=connectionSpec.id=={catalog.AMAZON_S3}")) == 3


def test_spec_examples(client: TestClient, tenant: Tenant) -> None:
    assert ids(client, tenant, "flowSpecs", 'property=name=="CloudStorageToAEP"') == [
        catalog.CLOUD_STORAGE_TO_AEP
    ]
    assert ids(client, tenant, "flowSpecs", "property=name==%22CloudStorageToAEP%22") == [
        catalog.CLOUD_STORAGE_TO_AEP
    ]
    assert ids(client, tenant, "connectionSpecs", 'property=attributes.sampleAttribute="abc"') == []
    cloud = ids(client, tenant, "connectionSpecs", "property=attributes.category==Cloud%20Storage")
    assert set(cloud) == {catalog.AMAZON_S3, catalog.SFTP, catalog.DATA_LANDING_ZONE}
    both = ids(client, tenant, "connectionSpecs", f"property=id=={catalog.SFTP},{catalog.MYSQL}")
    assert set(both) == {catalog.SFTP, catalog.MYSQL}
    names = [
        item["name"]
        for item in client.get(
            f"{BASE}/connectionSpecs?orderby=-name&limit=3", headers=tenant.headers()
        ).json()["items"]
    ]
    assert names == ["SFTP", "PostgreSQL", "MySQL"]
    assert client.get(f"{BASE}/flowSpecs?count=true", headers=tenant.headers()).json() == {"count": 2}


def test_spec_pages(client: TestClient, tenant: Tenant) -> None:
    seen: list[str] = []
    url = f"{BASE}/connectionSpecs?limit=3"
    while url:
        body = client.get(url, headers=tenant.headers()).json()
        seen += [item["name"] for item in body["items"]]
        url = f"{BASE}{body['_links']['next']['href']}" if body["_links"] else ""
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 8


def test_every_list_endpoint_has_the_grammar(services: Services, client: TestClient, tenant: Tenant) -> None:
    del services
    for collection in (
        "connectionSpecs",
        "flowSpecs",
        "connections",
        "sourceConnections",
        "targetConnections",
        "flows",
        "runs",
    ):
        assert client.get(f"{BASE}/{collection}?count=true", headers=tenant.headers()).json().keys() == {
            "count"
        }
        bad = client.get(f"{BASE}/{collection}?property=id~x", headers=tenant.headers())
        assert bad.status_code == 400 and bad.json()["type"].endswith("FLOW-1440-400"), collection
        unknown = client.get(f"{BASE}/{collection}?page=2", headers=tenant.headers())
        assert unknown.status_code == 400 and unknown.json()["type"].endswith("FLOW-1451-400"), collection
