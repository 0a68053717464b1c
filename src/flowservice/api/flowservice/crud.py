"""Routes shared by connections, sourceConnections, targetConnections and flows.

Adobe's four resources have the same create/get/list/patch/delete contract; one builder makes
the routes so the contract is written once. (No `from __future__ import annotations` here: the
body model annotations must be real classes when FastAPI inspects the closures.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from flowservice.api import listing
from flowservice.api.deps import CallerDep, ServicesDep, TokensDep
from flowservice.api.flowservice import BASE_PATH
from flowservice.api.listing import ListParams
from flowservice.api.openapi import Items, Written, list_or_count, ok
from flowservice.services import resources
from flowservice.services.resources import Kind

PatchBody = Annotated[
    list[dict[str, Any]] | dict[str, Any],
    Body(description="JSON Patch: one operation or an array; ops add, replace, remove (any case)."),
]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="The etag you last read")]


def resource_router(kind: Kind[Any], body_model: type[BaseModel], tag: str) -> APIRouter:
    router = APIRouter(prefix=f"{BASE_PATH}/{kind.collection}", tags=[tag])
    collection = kind.collection

    @router.post(
        "",
        status_code=201,
        response_model=None,
        responses=ok(Written, status=201, description="Created; `Location` names the new resource"),
        summary=f"Create a {tag[:-1].lower()}",
    )
    def create(body: body_model, services: ServicesDep, caller: CallerDep) -> JSONResponse:  # type: ignore[valid-type]
        written = resources.create(services, caller, kind, body)
        location = f"{services.settings.public_url}{BASE_PATH}/{collection}/{written.id}"
        return JSONResponse(
            {"id": written.id, "etag": written.etag}, status_code=201, headers={"Location": location}
        )

    @router.get("", summary=f"List {tag.lower()}", response_model=None, responses=list_or_count())
    def list_(services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams) -> Response:
        query, after = listing.read(params, tokens, caller.tenant, collection)
        if query.count:
            return JSONResponse({"count": resources.count(services, caller, kind.model, query)})
        documents, following = resources.list_page_json(services, caller, kind.model, query, after)
        return listing.json_envelope(documents, following, query, tokens, caller.tenant, collection)

    @router.get("/{resource_id}", response_model=Items, summary=f"Get one of the {tag.lower()}")
    def get(resource_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
        return {"items": [resources.get(services, caller, kind, resource_id)]}

    def patch(
        resource_id: str, body: PatchBody, services: ServicesDep, caller: CallerDep, if_match: IfMatch = None
    ) -> Written:
        written = resources.patch_resource(services, caller, kind, resource_id, body, if_match)
        return Written(id=written.id, etag=written.etag)

    def delete(resource_id: str, services: ServicesDep, caller: CallerDep) -> Response:
        resources.delete(services, caller, kind, resource_id)
        return Response(status_code=204)

    for path, in_schema in (("/{resource_id}", True), ("/{resource_id}/", False)):  # the spec has both
        router.add_api_route(
            path,
            patch,
            methods=["PATCH"],
            response_model=Written,
            include_in_schema=in_schema,
            summary=f"Update one of the {tag.lower()} with JSON Patch",
        )
        router.add_api_route(
            path,
            delete,
            methods=["DELETE"],
            status_code=204,
            response_model=None,
            responses={204: {"description": "Deleted"}},
            include_in_schema=in_schema,
            summary=f"Delete one of the {tag.lower()}",
        )
    return router
