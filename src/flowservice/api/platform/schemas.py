"""Schema Registry, the subset datasets need: `/data/foundation/schemaregistry/tenant/schemas`."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.api.openapi import SchemaList, ok
from flowservice.services import catalog

router = APIRouter(prefix="/data/foundation/schemaregistry/tenant/schemas", tags=["Schema Registry"])

SchemaBody = Annotated[
    dict[str, Any],
    Body(description='A JSON Schema: {"title", "type": "object", "properties", "required"}'),
]


@router.post(
    "",
    status_code=201,
    summary="Create a schema",
    response_model=None,
    responses={201: {"description": "The schema as stored, with its `$id` and `meta:altId`"}},
)
def create_schema(body: SchemaBody, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    return JSONResponse(catalog.create_schema(services, caller, body), status_code=201)


@router.get("", summary="List the tenant's schemas", response_model=None, responses=ok(SchemaList))
def list_schemas(services: ServicesDep, caller: CallerDep) -> Any:
    results = catalog.list_schemas(services, caller.tenant)
    return {
        "results": results,
        "_page": {"orderby": "createdAt", "next": None, "count": len(results)},
        "_links": {},
    }


@router.get("/{schema_id:path}", summary="Get a schema by $id (URL-encoded) or meta:altId")
def get_schema(schema_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return catalog.get_schema(services, caller.tenant, schema_id)
