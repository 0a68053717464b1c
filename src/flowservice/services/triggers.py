"""Runs a client asks for: on demand (`POST /runs`) and by retry (`POST /runs/{id}/action?op=re-trigger`).

On demand is for flows scheduled `once` (digest 3.6); the window comes in epoch seconds in
`params`. A retry is a new run over the original run's window, allowed for failed runs and for
successful runs that ingested nothing (digest 3.7).
"""

from __future__ import annotations

from typing import Any

from flowservice.domain.tenancy import Caller
from flowservice.errors import InvalidRequest, NotFound, shown
from flowservice.services import runs
from flowservice.services.context import Services
from flowservice.store.repos import monitoring as monitoring_repo
from flowservice.store.repos import resources as repos

WINDOW_FIELDS = ("startTime", "windowStartTime", "windowEndTime")


def trigger(services: Services, caller: Caller, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("1000", "The request body must be a JSON object with flowId and params.")
    unknown = sorted(set(body) - {"flowId", "params"})
    if unknown:
        raise InvalidRequest("1000", f"Unknown field '{unknown[0]}'.", field=unknown[0])
    flow_id = body.get("flowId")
    if not isinstance(flow_id, str) or not flow_id:
        raise InvalidRequest("1446", "The flow ID cannot be null or empty.", field="flowId")
    params = body.get("params")
    if not isinstance(params, dict):
        raise InvalidRequest(
            "1000", "params with startTime, windowStartTime and windowEndTime is required.", field="params"
        )
    seconds = {name: _seconds(params, name) for name in WINDOW_FIELDS}
    if seconds["windowEndTime"] < seconds["windowStartTime"]:
        raise InvalidRequest(
            "1381", "windowEndTime cannot be earlier than windowStartTime.", field="params.windowEndTime"
        )
    with services.db.reader() as session:
        flow = repos.flows(session, caller.tenant).get(flow_id)
    if flow is None:
        raise NotFound("flows", flow_id)
    frequency = (flow.doc.get("scheduleParams") or {}).get("frequency")
    if frequency != "once":
        raise InvalidRequest(
            "1386",
            f"On-demand runs are for flows scheduled once; flow {flow_id} runs every {frequency}.",
            field="flowId",
        )
    if flow.doc.get("state") != "enabled":
        raise InvalidRequest(
            "1388", f"The flow {flow_id} is {flow.doc.get('state')}, not enabled.", field="flowId"
        )
    window = (seconds["windowStartTime"] * 1000, seconds["windowEndTime"] * 1000)
    doc = runs.create_run(
        services, caller.tenant, flow_id, client_id=caller.client_id, params=params, window=window
    )
    return doc


def retrigger(services: Services, caller: Caller, run_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        run = repos.runs(session, caller.tenant).get(run_id)
        if run is None:
            raise NotFound("runs", run_id)
        flow = repos.flows(session, caller.tenant).get(run.flow_id)
    empty_success = run.status == "success" and not run.output_record_count
    if run.status != "failed" and not empty_success:
        raise InvalidRequest(
            "1387",
            f"Only failed runs, or successful runs that ingested no records, can be re-triggered; "
            f"run {run_id} is {run.status}.",
            field="op",
        )
    if flow is None or flow.doc.get("state") != "enabled":
        state = "deleted" if flow is None else flow.doc.get("state")
        raise InvalidRequest("1388", f"The flow {run.flow_id} is {state}, not enabled.", field="op")
    window = (
        (run.window_start, run.window_end)
        if run.window_start is not None and run.window_end is not None
        else None
    )
    return runs.create_run(
        services,
        caller.tenant,
        run.flow_id,
        client_id=caller.client_id,
        params=run.doc.get("params"),
        window=window,
        retry_of=run_id,
    )


def _seconds(params: dict[str, Any], name: str) -> int:
    value = params.get(name)
    if isinstance(value, bool) or value is None:
        raise InvalidRequest("1000", f"params.{name} is required (epoch seconds).", field=f"params.{name}")
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    raise InvalidRequest(
        "1000", f"params.{name} must be epoch seconds, not {shown(value)}.", field=f"params.{name}"
    )


def run_now(services: Services, caller: Caller, flow_id: str) -> dict[str, Any]:
    """An on-demand run over what arrived since the flow's last window (from 0 the first time), so
    pressing "run now" twice never ingests the same files or rows twice."""
    with services.db.reader() as session:
        last_end = monitoring_repo.last_window_end(session, caller.tenant, flow_id)
    now_s = services.clock.now_ms() // 1000
    start = min((last_end or 0) // 1000, now_s)
    params = {"startTime": str(now_s), "windowStartTime": str(start), "windowEndTime": str(now_s)}
    return trigger(services, caller, {"flowId": flow_id, "params": params})
