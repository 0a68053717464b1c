"""Alert rules and their delivery log: flowservice's own API, under Adobe's observability paths.

Adobe configures dataflow alerts in its UI and I/O Events subscriptions; a self-hosted service
needs them over an API, with the same list grammar, etags and error bodies as the Flow Service's
resources: `/data/infrastructure/observability/alerts/rules` and `/…/alerts/deliveries`.
(No `from __future__ import annotations`: FastAPI inspects the body annotation at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import JSONResponse

from flowservice.api import listing
from flowservice.api.deps import CallerDep, ServicesDep, TokensDep
from flowservice.api.listing import ListParams
from flowservice.api.openapi import AlertRuleCreated, Items, Written, list_or_count, ok
from flowservice.domain.flows import ACTIONS
from flowservice.errors import InvalidRequest
from flowservice.schemas.alerts import AlertRuleCreate
from flowservice.services import alerts, resources
from flowservice.store.tables import AlertDelivery, AlertRule

BASE = "/data/infrastructure/observability/alerts"
router = APIRouter(prefix=BASE, tags=["Alerts"])
PatchBody = Annotated[list[dict[str, Any]] | dict[str, Any], Body(description="JSON Patch, as for flows")]


@router.post(
    "/rules",
    status_code=201,
    summary="Create an alert rule (its webhook secret is shown once)",
    response_model=None,
    responses=ok(AlertRuleCreated, status=201, description="Created; `Location` names the new rule"),
)
def create_rule(body: AlertRuleCreate, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    made = alerts.create_rule(services, caller, body)
    location = f"{services.settings.public_url}{BASE}/rules/{made.written.id}"
    return JSONResponse(
        {"id": made.written.id, "etag": made.written.etag, "webhookSecret": made.secret},
        status_code=201,
        headers={"Location": location},
    )


def _list(
    model: type[AlertRule] | type[AlertDelivery],
    collection: str,
    services: ServicesDep,
    caller: CallerDep,
    tokens: TokensDep,
    params: list[tuple[str, str]],
) -> Response:
    query, after = listing.read(params, tokens, caller.tenant, collection)
    if query.count:
        return JSONResponse({"count": resources.count(services, caller, model, query)})
    documents, following = resources.list_page_json(services, caller, model, query, after)
    return listing.json_envelope(documents, following, query, tokens, caller.tenant, collection)


@router.get("/rules", summary="List alert rules", response_model=None, responses=list_or_count())
def list_rules(services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams) -> Response:
    return _list(AlertRule, "alertRules", services, caller, tokens, params)


@router.get("/rules/{rule_id}", summary="Get an alert rule", response_model=Items)
def get_rule(rule_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return {"items": [resources.get(services, caller, alerts.KIND, rule_id)]}


@router.patch(
    "/rules/{rule_id}",
    summary="Change an alert rule with JSON Patch (If-Match required)",
    response_model=Written,
)
def patch_rule(
    rule_id: str,
    body: PatchBody,
    services: ServicesDep,
    caller: CallerDep,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> dict[str, str]:
    written = resources.patch_resource(services, caller, alerts.KIND, rule_id, body, if_match)
    return {"id": written.id, "etag": written.etag}


@router.delete(
    "/rules/{rule_id}",
    status_code=204,
    summary="Delete an alert rule",
    response_model=None,
    responses={204: {"description": "Deleted"}},
)
def delete_rule(rule_id: str, services: ServicesDep, caller: CallerDep) -> Response:
    resources.delete(services, caller, alerts.KIND, rule_id)
    return Response(status_code=204)


@router.post("/rules/{rule_id}/action", summary="Enable or disable an alert rule", response_model=Written)
def rule_action(
    rule_id: str,
    services: ServicesDep,
    caller: CallerDep,
    op: Annotated[str, Query(max_length=64, description="enable | disable (any case)")],
) -> dict[str, str]:
    name = op.lower()
    if name not in ("enable", "disable"):
        raise InvalidRequest("1422", f"The action {op} is not supported; use enable or disable.", field="op")
    written = resources.set_state(services, caller, alerts.KIND, rule_id, name, ACTIONS[name])
    return {"id": written.id, "etag": written.etag}


@router.get(
    "/deliveries",
    summary="The delivery log (filter with property=ruleId==…)",
    response_model=None,
    responses=list_or_count(),
)
def list_deliveries(
    services: ServicesDep, caller: CallerDep, tokens: TokensDep, params: ListParams
) -> Response:
    return _list(AlertDelivery, "alertDeliveries", services, caller, tokens, params)


@router.get(
    "/deliveries/{delivery_id}",
    summary="One delivery: its payload, attempts and last error",
    response_model=Items,
)
def get_delivery(delivery_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    return {"items": [alerts.get_delivery(services, caller, delivery_id)]}
