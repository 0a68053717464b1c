"""The connector catalog: `/connectionSpecs` and `/flowSpecs` (global, read-only), with the list grammar."""

from typing import Any

from fastapi import APIRouter

from flowservice.api import listing
from flowservice.api.deps import CallerDep, ServicesDep, TokensDep
from flowservice.api.flowservice import BASE_PATH
from flowservice.api.listing import ListParams
from flowservice.api.openapi import Items, list_or_count
from flowservice.errors import NotFound
from flowservice.services.specs import count_specs, list_specs

router = APIRouter(prefix=BASE_PATH, tags=["Specs"])


def _list(
    collection: str, services: Any, caller: Any, tokens: Any, params: list[tuple[str, str]]
) -> dict[str, Any]:
    # specs are org-agnostic, but only authenticated callers read them, and tokens stay per tenant
    query, after = listing.read(params, tokens, caller.tenant, collection)
    if query.count:
        return {"count": count_specs(services, collection, query)}
    page = list_specs(services, collection, query, after)
    return listing.envelope(page.items, page.after, query, tokens, caller.tenant, collection)


@router.get("/connectionSpecs", summary="List connection specs", responses=list_or_count())
def list_connection_specs(
    services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams
) -> dict[str, Any]:
    return _list("connectionSpecs", services, caller, tokens, params)


@router.get("/connectionSpecs/{spec_id}", summary="Get a connection spec", response_model=Items)
def get_connection_spec(spec_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    del caller
    spec = services.catalog.connection_spec(spec_id)
    if spec is None:
        raise NotFound("connectionSpecs", spec_id)
    return {"items": [spec]}


@router.get("/flowSpecs", summary="List flow specs", responses=list_or_count())
def list_flow_specs(
    services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams
) -> dict[str, Any]:
    return _list("flowSpecs", services, caller, tokens, params)


@router.get("/flowSpecs/{spec_id}", summary="Get a flow spec", response_model=Items)
def get_flow_spec(spec_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    del caller
    spec = services.catalog.flow_spec(spec_id)
    if spec is None:
        raise NotFound("flowSpecs", spec_id)
    return {"items": [spec]}
