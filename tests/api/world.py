"""A tenant holding resources of every kind the API serves, and a byte-exact picture of what it reads.

The isolation tests (`test_fuzz.py`, `test_isolation_matrix.py`) need a victim whose every resource
is real: connections, sources and targets, flows, runs that really ran (so there is a batch with
Parquet parts, an input manifest and diagnostics), schemas, datasets, mapping sets, alert rules and
the deliveries those rules queued. Everything is made through the HTTP API and a worker, as a
client would make it. `snapshot()` reads all of it back through the API as the tenant itself, so
"nothing of the victim changed" is a comparison of response bytes (documents and etags included).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.settings import Settings
from tests import factories
from tests.e2e.test_ingestion import customers, dlz_flow, write_csv, zone
from tests.factories import BASE, Tenant

CATALOG = "/data/foundation/catalog"
SCHEMAS = "/data/foundation/schemaregistry/tenant/schemas"
MAPPING_SETS = "/data/foundation/conversion/mappingSets"
EXPORT = "/data/foundation/export"
ALERTS = "/data/infrastructure/observability/alerts"
INSIGHTS = "/data/infrastructure/observability/insights/metrics"
# A webhook that is never called: no notifier runs in the test apps, so deliveries stay queued.
WEBHOOK = "https://hooks.example.com/flowservice"

FLOW_SERVICE_COLLECTIONS = ("connections", "sourceConnections", "targetConnections", "flows")
# The kind a path parameter names, by the segment before it in the route's template.
KIND_BY_SEGMENT = {
    "connections": "connections",
    "sourceConnections": "sourceConnections",
    "targetConnections": "targetConnections",
    "flows": "flows",
    "runs": "runs",
    "schemas": "schemas",
    "dataSets": "dataSets",
    "batches": "batches",
    "files": "batches",  # /export/files/{batch_id}
    "mappingSets": "mappingSets",
    "rules": "alertRules",
    "deliveries": "alertDeliveries",
    "connectionSpecs": "connectionSpecs",
    "flowSpecs": "flowSpecs",
}
# Catalog specs are global: the same ids for every tenant, so they are nobody's secret.
GLOBAL_KINDS = frozenset({"connectionSpecs", "flowSpecs"})


def kind_of(template: str, param: str) -> str:
    """`/…/flows/{flow_id}/action`, `flow_id` → `flows`."""
    segments = template.split("/")
    return KIND_BY_SEGMENT[segments[segments.index("{" + param + "}") - 1]]


@dataclass
class World:
    """One tenant's resources, by kind, and what its runs wrote."""

    tenant: Tenant
    ids: dict[str, list[str]] = field(default_factory=dict)
    etags: dict[str, str] = field(default_factory=dict)  # resource id → etag, for If-Match
    batch_paths: list[str] = field(default_factory=list)  # paths inside the batch, for ?path=
    zone_folder: str = ""  # the landing-zone folder its flow reads

    def first(self, kind: str) -> str:
        return self.ids[kind][0]

    def private_ids(self) -> set[str]:
        """Every id only this tenant may see (spec ids are global)."""
        return {i for kind, ids in self.ids.items() if kind not in GLOBAL_KINDS for i in ids}


def seed(
    client: TestClient,
    settings: Settings,
    tenant: Tenant,
    *,
    s3_server: str,
    bucket: tuple[Any, str],
    runs: int = 2,
) -> World:
    """Two of every kind (so every list has a second page), and `runs` real runs of a landing-zone flow."""
    world = World(tenant)
    s3, bucket_name = bucket
    csv = io.StringIO()
    csv.write("id,name,email,amount,signup,active\n")
    csv.write("".join(",".join(row) + "\n" for row in customers(1, 5, {})))
    s3.put_object(Bucket=bucket_name, Key="incoming/a.csv", Body=csv.getvalue().encode())
    auth = {
        "specName": "Access Key",
        "params": {
            "s3AccessKey": "k",
            "s3SecretKey": "s",
            "serviceUrl": s3_server,
            "bucketName": bucket_name,
        },
    }
    connections = [
        factories.create(client, tenant, "connections", factories.s3_connection(name=f"S3 {n}", auth=auth))
        for n in (1, 2)
    ]
    s3_source = factories.create(
        client,
        tenant,
        "sourceConnections",
        factories.s3_source(connections[0]["id"], params={"path": "incoming", "type": "folder"}),
    )
    rules = [
        _created(client.post(f"{ALERTS}/rules", json=body, headers=tenant.headers()))
        for body in (
            {"name": "on success", "kind": "runSuccess", "webhook": {"url": WEBHOOK}},
            {"name": "on start", "kind": "runStart", "webhook": {"url": WEBHOOK}},
        )
    ]

    folder = f"world-{uuid.uuid4().hex[:8]}"
    write_csv(zone(settings, tenant) / folder / "a.csv", customers(1, 12, {3: "missing-email"}))
    flow = dlz_flow(
        client,
        tenant,
        folder,
        mappings=factories.IDENTITY_MAPPINGS,
        options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
    )
    second_target = factories.create(
        client, tenant, "targetConnections", factories.target(flow.dataset_id, name="second target")
    )
    second_flow = factories.create(
        client, tenant, "flows", factories.once_flow(s3_source["id"], second_target["id"], name="S3 flow")
    )
    second_schema = factories.schema(client, tenant)
    second_dataset = factories.dataset(client, tenant, second_schema)
    second_mapping = factories.mapping_set(client, tenant, second_schema, factories.IDENTITY_MAPPINGS)

    run_ids = []
    for n in range(runs):
        run_id = factories.start_run(client, tenant, flow.flow_id, window=(n * 1_000_000, 4_000_000_000))
        run = factories.wait_for_run(client, tenant, run_id)
        assert run["state"] == "success", run
        run_ids.append(run_id)
    promotion = run["activities"][1]
    batch_id = promotion["targetInfo"][0]["reference"]["ids"][0]
    batch_ids = sorted(batches_of(client, tenant, flow.dataset_id))
    assert batch_id in batch_ids

    deliveries = client.get(f"{ALERTS}/deliveries?limit=1000", headers=tenant.headers()).json()["items"]
    world.ids = {
        "connections": [c["id"] for c in connections],
        "sourceConnections": [s3_source["id"], flow.source_id],
        "targetConnections": [flow.target_id, second_target["id"]],
        "flows": [flow.flow_id, second_flow["id"]],
        "runs": run_ids,
        "schemas": [flow.schema_id, second_schema],
        "dataSets": [flow.dataset_id, second_dataset],
        "batches": batch_ids,
        "mappingSets": [str(flow.mapping_id), second_mapping],
        "alertRules": [r["id"] for r in rules],
        "alertDeliveries": [d["id"] for d in deliveries],
        "connectionSpecs": [catalog.AMAZON_S3, catalog.DATA_LANDING_ZONE],
        "flowSpecs": [catalog.CLOUD_STORAGE_TO_AEP],
    }
    assert len(world.ids["alertDeliveries"]) >= 2, deliveries
    for kind in ("connections", "sourceConnections", "targetConnections", "flows"):
        for resource_id in world.ids[kind]:
            world.etags[resource_id] = factories.get(client, tenant, kind, resource_id)["etag"]
    for rule_id in world.ids["alertRules"]:
        got = client.get(f"{ALERTS}/rules/{rule_id}", headers=tenant.headers()).json()["items"][0]
        world.etags[rule_id] = got["etag"]
    files = client.get(f"{EXPORT}/files/{batch_id}", headers=tenant.headers()).json()["data"]
    world.zone_folder = folder
    world.batch_paths = [f["name"] for f in files] + ["input_files", "row_errors", "row_error_samples.json"]
    return world


def batches_of(client: TestClient, tenant: Tenant, dataset_id: str) -> list[str]:
    """The ids of the dataset's batches, from Catalog."""
    answer = client.get(f"{CATALOG}/batches?dataSet={dataset_id}", headers=tenant.headers())
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def id_path(resource_id: str) -> str:
    """An id as one path segment (schema `$id`s are URLs)."""
    return quote(resource_id, safe="")


def readable_urls(world: World) -> list[str]:
    """Every GET that shows something of the tenant: each resource, each list, each batch file."""
    ids = world.ids
    urls = [
        f"{BASE}/{kind}/{i}"
        for kind in ("connections", "sourceConnections", "targetConnections", "flows", "runs")
        for i in ids[kind]
    ]
    urls += [
        f"{BASE}/{kind}?limit=1000"
        for kind in ("connections", "sourceConnections", "targetConnections", "flows", "runs")
    ]
    urls += [f"{SCHEMAS}/{id_path(i)}" for i in ids["schemas"]] + [SCHEMAS]
    urls += [f"{CATALOG}/dataSets/{i}" for i in ids["dataSets"]] + [f"{CATALOG}/dataSets?limit=100"]
    urls += [f"{CATALOG}/batches/{i}" for i in ids["batches"]] + [f"{CATALOG}/batches?limit=100"]
    urls += [f"{MAPPING_SETS}/{i}" for i in ids["mappingSets"]]
    urls += [f"{ALERTS}/rules/{i}" for i in ids["alertRules"]] + [f"{ALERTS}/rules?limit=1000"]
    urls += [f"{ALERTS}/deliveries/{i}" for i in ids["alertDeliveries"]] + [f"{ALERTS}/deliveries?limit=1000"]
    for batch in ids["batches"]:
        urls += [f"{EXPORT}/batches/{batch}/files", f"{EXPORT}/files/{batch}"]
        urls += [f"{EXPORT}/batches/{batch}/meta?path={p}" for p in ("input_files", "row_error_samples.json")]
    urls += [f"{EXPORT}/files/{ids['batches'][-1]}?path={quote(p)}" for p in world.batch_paths[:-3]]
    return urls


def snapshot(
    client: TestClient, world: World, sandboxes: Iterable[str] = ("prod", "dev")
) -> dict[str, bytes]:
    """What the tenant reads at each of its URLs, byte for byte, in each of its sandboxes.

    Resources live in `prod`; `dev` must stay empty, so its lists are part of the picture too.
    """
    pictures: dict[str, bytes] = {}
    for sandbox in sandboxes:
        headers = world.tenant.headers(sandbox=sandbox)
        urls = readable_urls(world) if sandbox == world.tenant.sandbox else _list_urls()
        for url in urls:
            answer = client.get(url, headers=headers)
            assert answer.status_code == 200, (sandbox, url, answer.text[:300])
            pictures[f"{sandbox} {url}"] = answer.content
    return pictures


def _list_urls() -> list[str]:
    kinds = ("connections", "sourceConnections", "targetConnections", "flows", "runs")
    return [f"{BASE}/{kind}?limit=1000" for kind in kinds] + [
        SCHEMAS,
        f"{CATALOG}/dataSets?limit=100",
        f"{CATALOG}/batches?limit=100",
        f"{ALERTS}/rules?limit=1000",
        f"{ALERTS}/deliveries?limit=1000",
    ]


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """The URLs whose answer is not byte-identical (or that appeared or vanished)."""
    return sorted(url for url in before.keys() | after.keys() if before.get(url) != after.get(url))
