"""Dataflows: `/flows`, plus `POST /flows/{id}/action?op=enable|disable|publish`."""

from typing import Annotated

from fastapi import Header, Query

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.api.flowservice.crud import resource_router
from flowservice.api.openapi import Written
from flowservice.domain.flows import ACTIONS
from flowservice.errors import InvalidRequest
from flowservice.schemas.resources import FlowCreate
from flowservice.services import resources
from flowservice.services.flows import KIND

router = resource_router(KIND, FlowCreate, "Flows")


@router.post("/{flow_id}/action", response_model=Written, summary="Enable, disable or publish a flow")
def action(
    flow_id: str,
    services: ServicesDep,
    caller: CallerDep,
    op: Annotated[str, Query(max_length=64, description="enable | disable | publish (any case)")],
    subOp: Annotated[str | None, Query(max_length=64)] = None,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Written:
    del subOp  # the spec marks it required, the docs never send it; no supported op uses it
    name = op.lower()
    if name not in ACTIONS:
        raise InvalidRequest(
            "1422", f"The action {op} is not supported; use one of {', '.join(ACTIONS)}.", field="op"
        )
    written = resources.set_state(services, caller, KIND, flow_id, name, ACTIONS[name], if_match)
    return Written(id=written.id, etag=written.etag)
