"""Catalog, the subset dataflows need: `/data/foundation/catalog/dataSets` and `/batches`.

Catalog answers objects keyed by their id (`{"ID": {...}}`) and creates with `["@/dataSets/ID"]`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.api.openapi import Catalog, ok
from flowservice.services import catalog

router = APIRouter(prefix="/data/foundation/catalog", tags=["Catalog"])

Limit = Annotated[int, Query(ge=1, le=100, description="at most this many objects (default 50)")]


@router.post(
    "/dataSets",
    status_code=201,
    summary="Create a dataset",
    response_model=None,
    responses={
        201: {
            "description": '`["@/dataSets/ID"]`',
            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
        }
    },
)
def create_dataset(
    body: Annotated[dict[str, Any], Body(description='{"name", "schemaRef": {"id", "contentType"}}')],
    services: ServicesDep,
    caller: CallerDep,
) -> JSONResponse:
    dataset_id = catalog.create_dataset(services, caller, body)
    return JSONResponse([f"@/dataSets/{dataset_id}"], status_code=201)


@router.get("/dataSets", summary="List datasets", response_model=None, responses=ok(Catalog))
def list_datasets(services: ServicesDep, caller: CallerDep, limit: Limit = 50) -> dict[str, Any]:
    return catalog.list_datasets(services, caller.tenant, limit)


@router.get("/dataSets/{dataset_id}", summary="Get a dataset", response_model=None, responses=ok(Catalog))
def get_dataset(dataset_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return {dataset_id: catalog.get_dataset(services, caller.tenant, dataset_id)}


@router.get(
    "/batches",
    summary="List batches, optionally of one dataset",
    response_model=None,
    responses=ok(Catalog),
)
def list_batches(
    services: ServicesDep,
    caller: CallerDep,
    dataSet: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    return catalog.list_batches(services, caller.tenant, dataSet, limit)


@router.get("/batches/{batch_id}", summary="Get a batch", response_model=None, responses=ok(Catalog))
def get_batch(batch_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return {batch_id: catalog.get_batch(services, caller.tenant, batch_id)}
