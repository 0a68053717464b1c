"""Data Prep mapping sets: `/data/foundation/conversion/mappingSets`."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.services import dataprep

router = APIRouter(prefix="/data/foundation/conversion/mappingSets", tags=["Data Prep"])


@router.post(
    "",
    status_code=201,
    summary="Create a mapping set",
    response_model=None,
    responses={201: {"description": "The mapping set as stored, with its id"}},
)
def create_mapping_set(
    body: Annotated[
        dict[str, Any],
        Body(description='{"version": 0, "xdmSchema": SCHEMA_ID, "xdmVersion": "1.0", "mappings": [...]}'),
    ],
    services: ServicesDep,
    caller: CallerDep,
) -> JSONResponse:
    return JSONResponse(dataprep.create_mapping_set(services, caller, body), status_code=201)


@router.get("/{mapping_id}", summary="Get a mapping set")
def get_mapping_set(mapping_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return dataprep.get_mapping_set(services, caller.tenant, mapping_id)
