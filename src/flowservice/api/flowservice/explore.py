"""Exploring sources: `/connections/{id}/explore`, `/connections/{id}/test`, `/connectionSpecs/{id}/explore`."""

from typing import Any

from fastapi import APIRouter, Request

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.api.flowservice import BASE_PATH
from flowservice.api.openapi import ConnectionTest, ok
from flowservice.services import explore

router = APIRouter(prefix=BASE_PATH, tags=["Explore"])


@router.get("/connections/{connection_id}/explore", summary="Browse or preview a connection's source")
def explore_connection(connection_id: str, request: Request, services: ServicesDep, caller: CallerDep) -> Any:
    return explore.explore_connection(services, caller, connection_id, dict(request.query_params))


@router.get(
    "/connections/{connection_id}/test",
    summary="Test a connection",
    response_model=None,
    responses=ok(ConnectionTest, description="Whether the source answered; its message when it did not"),
)
def test_connection(connection_id: str, services: ServicesDep, caller: CallerDep) -> Any:
    return explore.test_connection(services, caller, connection_id)


@router.get("/connectionSpecs/{spec_id}/explore", summary="Browse the Data Landing Zone (no base connection)")
def explore_spec(spec_id: str, request: Request, services: ServicesDep, caller: CallerDep) -> Any:
    return explore.explore_spec(services, caller, spec_id, dict(request.query_params))
