"""Plain functions that build test data through the real API (and identity service for orgs)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.domain.runs import COPY, PROMOTION, Activity, RunError, Summary
from flowservice.domain.tenancy import Tenant as DomainTenant
from flowservice.services import identity, runs
from flowservice.services.context import Services

BASE = "/data/foundation/flowservice"
XED = "application/vnd.adobe.xed-full+json;version=1"


@dataclass
class Tenant:
    org_id: str
    client_id: str
    client_secret: str
    token: str
    sandbox: str = "prod"
    extra_headers: dict[str, str] = field(default_factory=dict)

    def headers(self, sandbox: str | None = None, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "x-api-key": self.client_id,
            "x-gw-ims-org-id": self.org_id,
            "x-sandbox-name": sandbox or self.sandbox,
            **self.extra_headers,
            **extra,
        }

    def in_sandbox(self, sandbox: str) -> Tenant:
        return Tenant(self.org_id, self.client_id, self.client_secret, self.token, sandbox)

    def renewed(self, client: TestClient) -> Tenant:
        """The same credential with a fresh token, as a client does when its token expires."""
        token = token_for(client, self.client_id, self.client_secret)
        return Tenant(self.org_id, self.client_id, self.client_secret, token, self.sandbox)


def new_org_id() -> str:
    return secrets.token_hex(12).upper() + "@AdobeOrg"


def token_for(client: TestClient, client_id: str, client_secret: str) -> str:
    response = client.post(
        "/ims/token/v3",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def new_tenant(services: Services, client: TestClient, sandboxes: tuple[str, ...] = ()) -> Tenant:
    credential = identity.create_credentials(services.db, new_org_id(), name="test")
    for name in sandboxes:
        identity.create_sandbox(services.db, credential.org_id, name)
    token = token_for(client, credential.client_id, credential.client_secret)
    return Tenant(credential.org_id, credential.client_id, credential.client_secret, token)


def s3_connection(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "S3 base connection",
        "description": "test bucket",
        "auth": {
            "specName": "Access Key",
            "params": {
                "s3AccessKey": "AKIAEXAMPLE",
                "s3SecretKey": "planted-secret-" + secrets.token_hex(8),
                "serviceUrl": "http://127.0.0.1:9000",
                "bucketName": "landing",
            },
        },
        "connectionSpec": {"id": catalog.AMAZON_S3, "version": "1.0"},
    }
    body.update(overrides)
    return body


def s3_source(base_connection_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "S3 source",
        "baseConnectionId": base_connection_id,
        "data": {"format": "delimited", "properties": {"columnDelimiter": ","}},
        "params": {"path": "/landing/customers.csv", "type": "file"},
        "connectionSpec": {"id": catalog.AMAZON_S3, "version": "1.0"},
    }
    body.update(overrides)
    return body


def dlz_source(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Landing zone source",
        "data": {"format": "delimited"},
        "params": {"path": "incoming/customers.csv", "type": "file"},
        "connectionSpec": {"id": catalog.DATA_LANDING_ZONE, "version": "1.0"},
    }
    body.update(overrides)
    return body


DUMMY_MAPPINGS: list[dict[str, Any]] = [
    {"sourceType": "ATTRIBUTE", "source": "id", "destination": "id"},
    {"sourceType": "ATTRIBUTE", "source": "name", "destination": "name"},
    {"sourceType": "EXPRESSION", "source": "concat('u', id, '@example.com')", "destination": "email"},
    {"sourceType": "ATTRIBUTE", "source": "amount", "destination": "amount"},
]
"""The Dummy source's columns (id, name, amount) into the Customers schema."""


def dummy_source(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    """A Dummy connection (generated files and failure knobs, connectors/dummy.py: `files`, `rows`,
    `failOn`, …) and the body of a source connection on it."""
    connection = create(
        client,
        tenant,
        "connections",
        {
            "name": "generated",
            "auth": {"specName": "Dummy", "params": params},
            "connectionSpec": {"id": catalog.DUMMY, "version": "1.0"},
        },
    )
    return {
        "name": "generated files",
        "baseConnectionId": connection["id"],
        "data": {"format": "delimited"},
        "params": {"path": "dummy"},
        "connectionSpec": {"id": catalog.DUMMY, "version": "1.0"},
    }


CUSTOMERS_SCHEMA: dict[str, Any] = {
    "title": "Customers",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "maxLength": 50},
        "email": {"type": "string", "format": "email"},
        "amount": {"type": "number", "minimum": 0},
        "signup": {"type": "string", "format": "date"},
        "active": {"type": "boolean"},
    },
    "required": ["id", "email"],
}


def schema(client: TestClient, tenant: Tenant, body: dict[str, Any] | None = None) -> str:
    response = client.post(
        "/data/foundation/schemaregistry/tenant/schemas",
        json=body or CUSTOMERS_SCHEMA,
        headers=tenant.headers(),
    )
    assert response.status_code == 201, response.text
    schema_id: str = response.json()["$id"]
    return schema_id


def dataset(client: TestClient, tenant: Tenant, schema_id: str | None = None) -> str:
    """A dataset (and, unless given, a Customers schema for it); its id."""
    body = {"name": "Customers", "schemaRef": {"id": schema_id or schema(client, tenant), "contentType": XED}}
    response = client.post("/data/foundation/catalog/dataSets", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    [ref] = response.json()
    dataset_id: str = ref.removeprefix("@/dataSets/")
    return dataset_id


def target(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Customers dataset",
        "data": {"format": "parquet_xdm"},
        "params": {"dataSetId": dataset_id},
        "connectionSpec": {"id": catalog.DATA_LAKE, "version": "1.0"},
    }
    body.update(overrides)
    return body


def flow(source_id: str, target_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Customers dataflow",
        "flowSpec": {"id": catalog.CLOUD_STORAGE_TO_AEP, "version": "1.0"},
        "sourceConnectionIds": [source_id],
        "targetConnectionIds": [target_id],
        "scheduleParams": {"startTime": "1597784298", "frequency": "minute", "interval": "30"},
    }
    body.update(overrides)
    return body


def create(client: TestClient, tenant: Tenant, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{BASE}/{collection}", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def get(client: TestClient, tenant: Tenant, collection: str, resource_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/{collection}/{resource_id}", headers=tenant.headers())
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1
    item: dict[str, Any] = items[0]
    return item


@dataclass
class Dataflow:
    connection_id: str
    source_id: str
    target_id: str
    flow_id: str
    schema_id: str = ""
    dataset_id: str = ""
    mapping_id: str | None = None


IDENTITY_MAPPINGS = [
    {"sourceType": "ATTRIBUTE", "source": name, "destination": name}
    for name in ("id", "name", "email", "amount", "signup", "active")
]


def mapping_set(client: TestClient, tenant: Tenant, schema_id: str, mappings: list[dict[str, Any]]) -> str:
    body = {"version": 0, "xdmSchema": schema_id, "xdmVersion": "1.0", "mappings": mappings}
    response = client.post("/data/foundation/conversion/mappingSets", json=body, headers=tenant.headers())
    assert response.status_code == 201, response.text
    mapping_id: str = response.json()["id"]
    return mapping_id


def dataflow(
    client: TestClient,
    tenant: Tenant,
    *,
    source: dict[str, Any] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    mapping_extra: dict[str, Any] | None = None,
    **flow_overrides: Any,
) -> Dataflow:
    """An S3 connection (unless `source` is given), source, schema, dataset, target and flow, over HTTP."""
    connection_id = ""
    if source is None:
        connection_id = create(client, tenant, "connections", s3_connection())["id"]
        source = s3_source(connection_id)
    source_id = create(client, tenant, "sourceConnections", source)["id"]
    schema_id = schema(client, tenant)
    dataset_id = dataset(client, tenant, schema_id)
    target_ = create(client, tenant, "targetConnections", target(dataset_id))
    mapping_id = None
    if mappings is not None:
        mapping_id = mapping_set(client, tenant, schema_id, mappings)
        params = {"mappingId": mapping_id, "mappingVersion": 0, **(mapping_extra or {})}
        flow_overrides.setdefault("transformations", [{"name": "Mapping", "params": params}])
    created = create(client, tenant, "flows", flow(source_id, target_["id"], **flow_overrides))
    return Dataflow(connection_id, source_id, target_["id"], created["id"], schema_id, dataset_id, mapping_id)


def domain_tenant(services: Services, tenant: Tenant) -> DomainTenant:
    [sandbox] = [s for s in identity.list_sandboxes(services.db, tenant.org_id) if s.name == tenant.sandbox]
    return DomainTenant(tenant.org_id, sandbox.name, sandbox.id)


def run_through(
    services: Services,
    tenant: Tenant,
    flow_id: str,
    *,
    status: str = "success",
    records: tuple[int, int, int] = (100, 100, 0),
    files: int = 2,
    input_bytes: int = 4096,
    output_bytes: int = 2048,
    errors: tuple[RunError, ...] = (),
) -> dict[str, Any]:
    """A run taken through its whole life by the service functions the engine calls."""
    who = domain_tenant(services, tenant)
    run = runs.create_run(services, who, flow_id, client_id=tenant.client_id)
    runs.start_run(services, who, run["id"])
    started = services.clock.now_ms()
    copy = Activity(
        id=str(uuid.uuid4()),
        name=COPY,
        status="success",
        started_at=started,
        completed_at=started + 1,
        summary=Summary(
            input_bytes=input_bytes,
            output_bytes=input_bytes,
            input_records=records[0],
            output_records=records[0],
            input_files=files,
            output_files=files,
        ),
        window=(started - 3_600_000, started),
        source_info=[{"id": "source", "type": "SourceConnection"}],
    )
    runs.record_activity(services, who, run["id"], copy)
    total, good, bad = records
    promotion = Activity(
        id=str(uuid.uuid4()),
        name=PROMOTION,
        status="success" if status == "success" else "failed",
        started_at=started + 2,
        completed_at=started + 3,
        summary=Summary(
            input_bytes=input_bytes,
            output_bytes=output_bytes,
            input_records=total,
            output_records=good,
            failed_records=bad,
            input_files=files,
            output_files=1,
        ),
        details=[e for e in errors if e.record_count is not None],
        manifest={
            "fileInfo": "http://testserver/data/foundation/export/batches/B/meta?path=input_files",
            "pathPrefix": "landing/",
        },
        target_info=[
            {"id": "target", "type": "TargetConnection", "reference": {"type": "Batch", "ids": ["B"]}}
        ],
    )
    runs.record_activity(services, who, run["id"], promotion)
    return runs.finish_run(services, who, run["id"], status, [e for e in errors if e.record_count is None])


def once_flow(source_id: str, target_id: str, **overrides: Any) -> dict[str, Any]:
    """A flow scheduled once: the kind `POST /runs` starts on demand."""
    body = flow(source_id, target_id, scheduleParams={"startTime": "1700000000", "frequency": "once"})
    body.update(overrides)
    return body


def start_run(
    client: TestClient, tenant: Tenant, flow_id: str, window: tuple[int, int] = (0, 4_000_000_000)
) -> str:
    """`POST /runs` for a flow scheduled once; the new run's id."""
    params = {"startTime": "1700000000", "windowStartTime": str(window[0]), "windowEndTime": str(window[1])}
    response = client.post(
        f"{BASE}/runs", json={"flowId": flow_id, "params": params}, headers=tenant.headers()
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["items"] == [{"id": body["id"], "etag": body["etag"]}]
    run_id: str = body["id"]
    return run_id


def wait_for_run(client: TestClient, tenant: Tenant, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll `GET /runs/{id}` until the run is finished; the condition we wait on, with a deadline."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{BASE}/runs/{run_id}", headers=tenant.headers())
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()["items"][0]
        if run["state"] in ("success", "failed", "cancelled"):
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} is still {run['state']} after {timeout}s")
        time.sleep(0.1)
