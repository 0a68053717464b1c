"""The connector catalog: `/connectionSpecs` and `/flowSpecs` (global, read-only)."""

from typing import Any

from fastapi import APIRouter

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.api.flowservice import BASE_PATH
from flowservice.errors import NotFound

router = APIRouter(prefix=BASE_PATH, tags=["Specs"])


@router.get("/connectionSpecs", summary="List connection specs")
def list_connection_specs(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    del caller  # specs are org-agnostic, but only authenticated callers may read them
    return {"items": services.catalog.documents("connectionSpecs"), "_links": {}}


@router.get("/connectionSpecs/{spec_id}", summary="Get a connection spec")
def get_connection_spec(spec_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    del caller
    spec = services.catalog.connection_spec(spec_id)
    if spec is None:
        raise NotFound("connectionSpecs", spec_id)
    return {"items": [spec]}


@router.get("/flowSpecs", summary="List flow specs")
def list_flow_specs(services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    del caller
    return {"items": services.catalog.documents("flowSpecs"), "_links": {}}


@router.get("/flowSpecs/{spec_id}", summary="Get a flow spec")
def get_flow_spec(spec_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    del caller
    spec = services.catalog.flow_spec(spec_id)
    if spec is None:
        raise NotFound("flowSpecs", spec_id)
    return {"items": [spec]}
