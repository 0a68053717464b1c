"""Flow runs, the monitoring core: `GET /runs?property=flowId==…` and `GET /runs/{id}`."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from flowservice.api import listing
from flowservice.api.deps import CallerDep, ServicesDep, TokensDep
from flowservice.api.flowservice import BASE_PATH
from flowservice.api.listing import ListParams
from flowservice.api.openapi import Items, RunStarted, Written, list_or_count, ok
from flowservice.errors import InvalidRequest
from flowservice.services import resources, triggers
from flowservice.services import runs as run_service
from flowservice.store.tables import Run

router = APIRouter(prefix=f"{BASE_PATH}/runs", tags=["Runs"])
COLLECTION = "runs"


@router.get("", summary="List flow runs (newest first)", response_model=None, responses=list_or_count())
def list_runs(services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams) -> Response:
    query, after = listing.read(params, tokens, caller.tenant, COLLECTION)
    if query.count:
        return JSONResponse({"count": resources.count(services, caller, Run, query)})
    documents, following = resources.list_page_json(services, caller, Run, query, after)
    return listing.json_envelope(documents, following, query, tokens, caller.tenant, COLLECTION)


@router.post(
    "",
    status_code=201,
    summary="Start an on-demand run of a flow scheduled once",
    response_model=None,
    responses=ok(RunStarted, status=201, description="The run was created, scheduled"),
)
def create_run(
    body: Annotated[
        dict[str, Any],
        Body(
            description='{"flowId", "params": {"startTime", "windowStartTime", "windowEndTime"}} (epoch seconds)'
        ),
    ],
    services: ServicesDep,
    caller: CallerDep,
) -> JSONResponse:
    doc = triggers.trigger(services, caller, body)
    written = {"id": doc["id"], "etag": doc["etag"]}
    # the spec answers {id, etag}, the docs {"items": [{id, etag}]}: both, so either kind of client works
    return JSONResponse({**written, "items": [written]}, status_code=201)


@router.post(
    "/{run_id}/action",
    summary="Re-trigger a failed run (a new run over the same window)",
    response_model=Written,
)
def run_action(
    run_id: str,
    services: ServicesDep,
    caller: CallerDep,
    op: Annotated[str, Query(max_length=64, description="re-trigger (or RE_TRIGGER)")],
) -> dict[str, str]:
    if op.lower().replace("_", "-") != "re-trigger":
        raise InvalidRequest("1333", f"The action {op} is not supported on runs; use re-trigger.", field="op")
    doc = triggers.retrigger(services, caller, run_id)
    return {"id": doc["id"], "etag": doc["etag"]}


@router.get("/{run_id}", summary="Get a flow run", response_model=Items)
def get_run(run_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return {"items": [run_service.get_run(services, caller.tenant, run_id)]}
