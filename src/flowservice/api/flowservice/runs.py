"""Flow runs, the monitoring core: `GET /runs?property=flowId==…` and `GET /runs/{id}`."""

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from flowservice.api import listing
from flowservice.api.deps import CallerDep, ServicesDep, TokensDep
from flowservice.api.flowservice import BASE_PATH
from flowservice.api.listing import ListParams
from flowservice.services import resources
from flowservice.services import runs as run_service
from flowservice.store.tables import Run

router = APIRouter(prefix=f"{BASE_PATH}/runs", tags=["Runs"])
COLLECTION = "runs"


@router.get("", summary="List flow runs (newest first)", response_model=None)
def list_runs(services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams) -> Response:
    query, after = listing.read(params, tokens, caller.tenant, COLLECTION)
    if query.count:
        return JSONResponse({"count": resources.count(services, caller, Run, query)})
    documents, following = resources.list_page_json(services, caller, Run, query, after)
    return listing.json_envelope(documents, following, query, tokens, caller.tenant, COLLECTION)


@router.get("/{run_id}", summary="Get a flow run")
def get_run(run_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return {"items": [run_service.get_run(services, caller.tenant, run_id)]}
