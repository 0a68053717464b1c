"""Org B cannot read, list, patch, delete or reference org A's resources, nor sandbox `dev` those of `prod`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from flowservice.services.context import Services
from tests import factories
from tests.factories import BASE, Tenant

COLLECTIONS = ("connections", "sourceConnections", "targetConnections", "flows")


@pytest.fixture
def owner(services: Services, client: TestClient) -> Tenant:
    return factories.new_tenant(services, client, sandboxes=("dev",))


@pytest.fixture(params=["other org", "other sandbox"])
def outsider(request: pytest.FixtureRequest, services: Services, client: TestClient, owner: Tenant) -> Tenant:
    if request.param == "other org":
        return factories.new_tenant(services, client, sandboxes=("dev",))
    return owner.in_sandbox("dev")


def test_nothing_of_another_tenant_is_visible_or_writable(
    client: TestClient, owner: Tenant, outsider: Tenant
) -> None:
    dataflow = factories.dataflow(client, owner)
    ids = {
        "connections": dataflow.connection_id,
        "sourceConnections": dataflow.source_id,
        "targetConnections": dataflow.target_id,
        "flows": dataflow.flow_id,
    }
    etags = {c: factories.get(client, owner, c, i)["etag"] for c, i in ids.items()}
    headers = outsider.headers()
    for collection, resource_id in ids.items():
        url = f"{BASE}/{collection}/{resource_id}"
        listing = client.get(f"{BASE}/{collection}?limit=1000", headers=headers)
        assert listing.status_code == 200 and resource_id not in listing.text
        patch = [{"op": "replace", "path": "/name", "value": "hijacked"}]
        answers = [
            client.get(url, headers=headers),
            client.patch(url, json=patch, headers={**headers, "If-Match": etags[collection]}),
            client.delete(url, headers=headers),
        ]
        if collection == "flows":
            answers.append(client.post(f"{url}/action?op=disable", headers=headers))
        for response in answers:
            assert response.status_code == 404, (collection, response.request.method, response.text)
            assert response.json()["type"].endswith("FLOW-1439-404")
        assert factories.get(client, owner, collection, resource_id)["etag"] == etags[collection]

    # nor can the outsider build on the owner's resources
    source = client.post(
        f"{BASE}/sourceConnections", json=factories.s3_source(dataflow.connection_id), headers=headers
    )
    assert source.status_code == 400 and "does not exist" in source.json()["errorMessage"]
    flow = client.post(
        f"{BASE}/flows", json=factories.flow(dataflow.source_id, dataflow.target_id), headers=headers
    )
    assert flow.status_code == 400 and "does not exist" in flow.json()["errorMessage"]


def test_a_continuation_token_only_works_for_its_own_tenant(
    client: TestClient, owner: Tenant, outsider: Tenant
) -> None:
    dataset_id = factories.dataset(client, owner)
    for i in range(3):
        factories.create(client, owner, "targetConnections", factories.target(dataset_id, name=f"t{i}"))
    page = client.get(f"{BASE}/targetConnections?limit=1", headers=owner.headers()).json()
    href = page["_links"]["next"]["href"]
    assert client.get(f"{BASE}{href}", headers=owner.headers()).status_code == 200
    stolen = client.get(f"{BASE}{href}", headers=outsider.headers())
    assert stolen.status_code == 400 and stolen.json()["report"]["field"] == "continuationToken"
    other_collection = href.replace("/targetConnections", "/connections")
    assert client.get(f"{BASE}{other_collection}", headers=owner.headers()).status_code == 400
    token = href.split("=", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (
        client.get(
            f"{BASE}/targetConnections?continuationToken={forged}", headers=owner.headers()
        ).status_code
        == 400
    )
