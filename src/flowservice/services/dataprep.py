"""Mapping sets (Data Prep): how source fields become dataset fields.

A mapping set names the schema it maps into and a list of mappings `{sourceType, source,
destination}`; `sourceType` is ATTRIBUTE (a source field), CONSTANT or EXPRESSION (the small
language of domain/expressions.py). Everything that can be checked before a run is checked here.
"""

from __future__ import annotations

from typing import Any

from flowservice.domain import etags, expressions, ids
from flowservice.domain.tenancy import Caller, Tenant
from flowservice.errors import InvalidRequest, NotFound
from flowservice.services import catalog
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos

SOURCE_TYPES = ("ATTRIBUTE", "CONSTANT", "EXPRESSION")
MAX_MAPPINGS = 2_000


def create_mapping_set(services: Services, caller: Caller, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("1000", "A mapping set must be a JSON object.")
    schema_ref = body.get("xdmSchema")
    if not isinstance(schema_ref, str) or not schema_ref:
        raise InvalidRequest(
            "1000", "xdmSchema, the $id of the target schema, is required.", field="xdmSchema"
        )
    schema = catalog.schema_of(services, caller.tenant, schema_ref)
    raw = body.get("mappings")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("1000", "mappings must be a non-empty list.", field="mappings")
    if len(raw) > MAX_MAPPINGS:
        raise InvalidRequest(
            "1000", f"A mapping set may hold at most {MAX_MAPPINGS} mappings.", field="mappings"
        )
    leaves = {f.name for f in schema.fields}
    mappings = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"mappings[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest("1000", f"{where} must be an object.", field=where)
        kind = str(item.get("sourceType", "ATTRIBUTE")).upper()
        if kind not in SOURCE_TYPES:
            raise InvalidRequest(
                "1000",
                f"{where}.sourceType must be one of {', '.join(SOURCE_TYPES)}.",
                field=f"{where}.sourceType",
            )
        source, destination = item.get("source"), item.get("destination")
        if not isinstance(source, str) or (kind != "CONSTANT" and not source.strip()):
            raise InvalidRequest(
                "1000", f"{where}.source must be a non-empty string.", field=f"{where}.source"
            )
        if not isinstance(destination, str) or destination not in leaves:
            raise InvalidRequest(
                "1000",
                f"{where}.destination '{str(destination)[:200]}' is not a field of schema {schema.title}.",
                field=f"{where}.destination",
            )
        if destination in seen:
            raise InvalidRequest(
                "1000", f"{where}.destination {destination} is mapped twice.", field=f"{where}.destination"
            )
        seen.add(destination)
        if kind == "EXPRESSION":
            try:
                expressions.parse(source)
            except InvalidRequest as exc:
                raise InvalidRequest(
                    "1000", f"{where}.source: {exc.message}", field=f"{where}.source"
                ) from None
        mappings.append(
            {
                "sourceType": kind,
                "source": source,
                "destination": destination,
                "name": item.get("name", destination),
                "description": item.get("description"),
                "identity": bool(item.get("identity", False)),
                "primaryIdentity": bool(item.get("primaryIdentity", False)),
            }
        )
    now = services.clock.now_ms()
    mapping_id = ids.mapping_set_id()
    doc = {
        "id": mapping_id,
        "version": 0,
        "xdmSchema": schema.document["$id"],
        "xdmVersion": str(body.get("xdmVersion", "1.0")),
        "mappings": mappings,
        "createdDate": now,
        "modifiedDate": now,
        "createdBy": caller.user,
        "modifiedBy": caller.user,
        "createdAt": now,
        "updatedAt": now,
        "etag": etags.new_etag(now),
    }
    with services.db.transaction() as session:
        repos.mapping_sets(session, caller.tenant).insert(doc)
    return {k: doc[k] for k in ("id", "version", "createdDate", "modifiedDate", "createdBy", "modifiedBy")}


def get_mapping_set(services: Services, tenant: Tenant, mapping_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        row = repos.mapping_sets(session, tenant).get(mapping_id)
    if row is None:
        raise NotFound("mappingSets", mapping_id)
    return {k: v for k, v in row.doc.items() if k not in ("createdAt", "updatedAt", "etag")}
