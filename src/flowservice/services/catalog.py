"""Schemas (Schema Registry), datasets and batches (Catalog): the targets a dataflow writes into.

Only the subset an end-to-end dataflow needs, in Adobe's request and response shapes: a schema is
posted as a JSON Schema and answered with its `$id`; a dataset names a schema; batches are made by
runs and read by the Data Access (export) API.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

from flowservice.domain import etags, ids
from flowservice.domain.query import Compare, Path, Value
from flowservice.domain.tenancy import Caller, Tenant
from flowservice.domain.xdm import Schema, parse_schema
from flowservice.errors import InvalidRequest, NotFound
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos
from flowservice.store.tables import Dataset

XED_FULL = "application/vnd.adobe.xed-full+json;version=1"


def tenant_namespace(org_id: str) -> str:
    """The `{TENANT}` of `https://ns.adobe.com/{TENANT}/schemas/…`, stable per org."""
    return "t" + hashlib.sha256(org_id.encode()).hexdigest()[:10]


def create_schema(services: Services, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    parse_schema(body)  # refuse a schema we could not validate records against
    tenant = caller.tenant
    namespace = tenant_namespace(tenant.org_id)
    schema_id = ids.schema_id(namespace)
    now = services.clock.now_ms()
    doc = {
        "$id": schema_id,
        "meta:altId": "_" + schema_id.split("https://ns.adobe.com/", 1)[1].replace("/", "."),
        "meta:resourceType": "schemas",
        "version": "1.0",
        "title": body["title"],
        "type": "object",
        "description": body.get("description", ""),
        "properties": body["properties"],
        "required": body.get("required", []),
        "meta:extensible": False,
        "meta:abstract": False,
        "meta:containerId": "tenant",
        "meta:sandboxId": tenant.sandbox_id,
        "meta:sandboxType": "production" if tenant.sandbox_name == "prod" else "development",
        "meta:tenantNamespace": f"_{namespace}",
        "imsOrg": tenant.org_id,
        "meta:registryMetadata": {
            "repo:createdDate": now,
            "repo:lastModifiedDate": now,
            "xdm:createdClientId": caller.client_id,
        },
    }
    row_doc = {**doc, "id": schema_id, "createdAt": now, "updatedAt": now, "etag": etags.new_etag(now)}
    with services.db.transaction() as session:
        repos.schemas(session, tenant).insert(row_doc)
    return doc


def get_schema(services: Services, tenant: Tenant, schema_ref: str) -> dict[str, Any]:
    """By `$id` (URL-encoded or not) or by `meta:altId`."""
    wanted = unquote(schema_ref)
    with services.db.reader() as session:
        schemas = repos.schemas(session, tenant)
        row = schemas.get(wanted)
        if row is None and wanted.startswith("_"):
            row = schemas.get("https://ns.adobe.com/" + wanted[1:].replace(".", "/"))
    if row is None:
        raise NotFound("schemas", wanted)
    return _public_schema(row.doc)


def list_schemas(services: Services, tenant: Tenant, limit: int = 300) -> list[dict[str, Any]]:
    with services.db.reader() as session:
        rows, _ = repos.schemas(session, tenant).page(limit=limit)
    return [
        {
            "$id": r.doc["$id"],
            "meta:altId": r.doc["meta:altId"],
            "version": r.doc["version"],
            "title": r.doc["title"],
        }
        for r in rows
    ]


def schema_of(services: Services, tenant: Tenant, schema_id: str) -> Schema:
    return parse_schema(get_schema(services, tenant, schema_id))


def _public_schema(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("id", "createdAt", "updatedAt", "etag")}


def create_dataset(services: Services, caller: Caller, body: dict[str, Any]) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("1000", "A dataset needs a non-empty name.", field="name")
    ref = body.get("schemaRef")
    if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
        raise InvalidRequest(
            "1000", "A dataset needs schemaRef.id, the $id of its schema.", field="schemaRef.id"
        )
    schema = get_schema(services, caller.tenant, ref["id"])  # 404 when it is not this tenant's
    now = services.clock.now_ms()
    dataset_id = ids.catalog_id()
    doc = {
        "id": dataset_id,
        "name": name.strip(),
        "description": body.get("description", ""),
        "imsOrg": caller.tenant.org_id,
        "sandboxId": caller.tenant.sandbox_id,
        "tags": body.get("tags") or {},
        "version": "1.0.0",
        "created": now,
        "updated": now,
        "createdClient": caller.client_id,
        "createdUser": caller.user,
        "updatedUser": caller.user,
        "schemaRef": {"id": schema["$id"], "contentType": ref.get("contentType") or XED_FULL},
        "files": f"@/dataSetFiles?dataSetId={dataset_id}",
        "createdAt": now,
        "updatedAt": now,
        "etag": etags.new_etag(now),
    }
    with services.db.transaction() as session:
        repos.datasets(session, caller.tenant).insert(doc)
    return dataset_id


def get_dataset(services: Services, tenant: Tenant, dataset_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        row = repos.datasets(session, tenant).get(dataset_id)
    if row is None:
        raise NotFound("dataSets", dataset_id)
    return _public_catalog(row.doc)


def list_datasets(services: Services, tenant: Tenant, limit: int) -> dict[str, dict[str, Any]]:
    with services.db.reader() as session:
        rows, _ = repos.datasets(session, tenant).page(limit=limit)
    return {r.id: _public_catalog(r.doc) for r in rows}


def dataset_row(services: Services, tenant: Tenant, dataset_id: str) -> Dataset | None:
    with services.db.reader() as session:
        return repos.datasets(session, tenant).get(dataset_id)


def get_batch(services: Services, tenant: Tenant, batch_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        row = repos.batches(session, tenant).get(batch_id)
    if row is None:
        raise NotFound("batches", batch_id)
    return _public_catalog(row.doc)


def list_batches(services: Services, tenant: Tenant, dataset_id: str | None, limit: int) -> dict[str, Any]:
    # One id, compared as it is: built as a filter, not parsed, so a comma or a quote in it is no grammar.
    filters = [Compare(Path.of("relatedObjects[].id"), "==", (Value(dataset_id),))] if dataset_id else []
    with services.db.reader() as session:
        rows, _ = repos.batches(session, tenant).page(limit=limit, filters=filters)
    return {r.id: _public_catalog(r.doc) for r in rows}


def _public_catalog(doc: dict[str, Any]) -> dict[str, Any]:
    """Catalog objects do not carry Flow Service's system fields."""
    hidden = ("createdAt", "updatedAt", "etag", "flowservice")
    return {k: v for k, v in doc.items() if k not in hidden}


def require_schema_document(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("1000", "A schema must be a JSON object.")
    return body
