"""aepp, Adobe Experience Platform's Python client, unchanged, against a live flowservice.

The only accommodation is for an aepp bug, not for us: with `accesstoken=` (its documented way to
bring a token) `configure()` never records a `connectionType`, and the token path of its Connector
reads that key. We set it to "support", the value aepp itself uses for `environment="support"`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.services.context import Services
from tests import factories
from tests.factories import Tenant
from tests.live import LiveServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    aepp = pytest.importorskip("aepp")
    from aepp import flowservice as aepp_flowservice


@pytest.fixture
def flow_service(live_server: LiveServer, tenant: Tenant) -> Iterator[Any]:
    aepp.configure(
        org_id=tenant.org_id,
        client_id=tenant.client_id,
        secret=tenant.client_secret,
        sandbox="prod",
        environment="support",
        endpoint=live_server.url,
        accesstoken=tenant.token,
    )
    aepp.config.config_object["connectionType"] = "support"
    yield aepp_flowservice.FlowService()


def test_catalog(flow_service: Any) -> None:
    specs = flow_service.getConnectionSpecs()
    assert {s["id"] for s in specs} >= {
        catalog.AMAZON_S3,
        catalog.SFTP,
        catalog.DATA_LANDING_ZONE,
        catalog.DATA_LAKE,
    }
    assert flow_service.getConnectionSpecIdFromName("Amazon S3") == catalog.AMAZON_S3
    assert flow_service.getConnectionSpec(catalog.SFTP)["items"][0]["name"] == "SFTP"
    [spec] = flow_service.getFlowSpecs(prop='name=="CloudStorageToAEP"')
    assert spec["id"] == catalog.CLOUD_STORAGE_TO_AEP
    assert flow_service.getFlowSpec(catalog.CRM_TO_AEP)["name"] == "CRMToAEP"


def test_connections_sources_targets_and_pagination(
    flow_service: Any, client: TestClient, tenant: Tenant
) -> None:
    made = [
        flow_service.createConnection(data=factories.s3_connection(name=f"bucket {i}"))["id"]
        for i in range(5)
    ]
    assert flow_service.getConnection(made[0])["name"] == "bucket 0"  # aepp unwraps {"items": [...]}
    listed = flow_service.getConnections(limit=2, n_results="inf")  # follows three pages
    assert sorted(c["id"] for c in listed) == sorted(made)
    sources = [flow_service.createSourceConnection(data=factories.s3_source(c))["id"] for c in made[:3]]
    paged = flow_service.getSourceConnections(limit=2)
    assert sorted(s["id"] for s in paged) == sorted(sources)
    assert flow_service.getSourceConnection(sources[0])["baseConnectionId"] == made[0]
    dataset_id = factories.dataset(client, tenant)
    target = flow_service.createTargetConnection(
        name="dataset", connectionSpecId=catalog.DATA_LAKE, datasetId=dataset_id, version="1.0"
    )
    assert flow_service.getTargetConnection(target["id"])["params"]["dataSetId"] == dataset_id
    assert target["id"] in [t["id"] for t in flow_service.getTargetConnections()]
    flow_service.deleteConnection(made[4])
    assert made[4] not in [c["id"] for c in flow_service.getConnections(n_results="inf")]
    patched = flow_service.patchConnection(
        made[0], [{"op": "Replace", "path": "/name", "value": "renamed by aepp"}]
    )
    assert patched["id"] == made[0]
    assert flow_service.getConnection(made[0])["name"] == "renamed by aepp"


def test_flows_and_runs(flow_service: Any, services: Services, client: TestClient, tenant: Tenant) -> None:
    dataflows = [factories.dataflow(client, tenant, name=f"flow {i}") for i in range(3)]
    flows = flow_service.getFlows(limit=1, n_results="inf")
    assert sorted(f["id"] for f in flows) == sorted(d.flow_id for d in dataflows)
    flow_id = dataflows[0].flow_id
    flow = flow_service.getFlow(flow_id)
    updated = flow_service.updateFlow(
        flow_id, flow["etag"], [{"op": "Add", "path": "/description", "value": "via aepp"}]
    )
    assert updated["id"] == flow_id and updated["etag"] != flow["etag"]
    assert flow_service.getFlow(flow_id)["description"] == "via aepp"
    assert flow_service.postFlowAction(flow_id, "disable")["id"] == flow_id
    assert flow_service.getFlows(prop="state==disabled")[0]["id"] == flow_id
    assert [f["id"] for f in flow_service.getFlows(onlySources=True, n_results="inf")] != []

    made = [factories.run_through(services, tenant, flow_id)["id"] for _ in range(6)]
    failed = factories.run_through(services, tenant, flow_id, status="failed", records=(10, 0, 10))["id"]
    runs = flow_service.getRuns(limit=3, n_results="inf", prop=[f"flowId=={flow_id}"])
    assert sorted(r["id"] for r in runs) == sorted([*made, failed])
    assert [
        r["id"]
        for r in flow_service.getRuns(prop=[f"flowId=={flow_id}", "metrics.statusSummary.status==Failed"])
    ] == [failed]
    [run] = flow_service.getRun(failed)
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 10,
        "outputRecordCount": 0,
        "failedRecordCount": 10,
    }
    assert flow_service.deleteFlow(dataflows[2].flow_id) is not None
    assert dataflows[2].flow_id not in [f["id"] for f in flow_service.getFlows(n_results="inf")]
