"""The dataflows page and a dataflow's page, with the actions they offer (each confirmed first)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response

from flowservice.domain.flows import ACTIONS
from flowservice.errors import FlowServiceError, InvalidRequest
from flowservice.services import monitoring, resources, triggers
from flowservice.services.flows import KIND as FLOWS
from flowservice.ui import charts
from flowservice.ui.web import (
    Ui,
    UiRoute,
    check_csrf,
    current_ui,
    next_page_token,
    page_after,
    quoted,
    redirect,
    render,
)

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
UiDep = Annotated[Ui, Depends(current_ui)]
PAGE = 50
CONFIRM = {
    "run": "Start a run of this dataflow now? It reads what arrived since the last run's window.",
    "enable": "Enable this dataflow? Its schedule creates runs again, catching up once.",
    "disable": "Disable this dataflow? No new runs are created until it is enabled again.",
}


@router.get("/flows")
def flows_page(
    request: Request,
    ui: UiDep,
    status: str = "",
    source: str = "",
    q: str = "",  # text in the name
    sort: str = "-createdAt",
    page: str = "",
    partial: str = "",
    done: str = "",
    error: str = "",
) -> Response:
    q = q[:200]
    bound = [f"status={status}", f"source={source}", f"q={q}", f"sort={sort}"]
    after = page_after(request, ui, "ui/flows", bound, page)
    rows, following = monitoring.flows_page(
        ui.services, ui.caller, status=status, source=source, text=q, sort=sort, after=after, limit=PAGE
    )
    context: dict[str, Any] = {
        "rows": rows,
        "filters": {"status": status, "source": source, "q": q, "sort": sort},
        "statuses": monitoring.RUN_STATUSES,
        "sources": monitoring.source_specs(ui.services),
        "sorts": monitoring.FLOW_SORTS,
        "next_page": next_page_token(request, ui, "ui/flows", bound, following, PAGE),
        "page": page,
        "done": done,
        "error": error,
    }
    return render(request, ui, "_flows_table.html" if partial else "flows.html", **context)


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            "1000", f"{field} must be a date like 2026-11-27, not '{text[:20]}'.", field=field
        ) from None


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


@router.get("/flows/{flow_id}")
def flow_page(
    request: Request,
    ui: UiDep,
    flow_id: str,
    status: str = "",
    since: str = "",  # from this day (UTC)
    until: str = "",  # to this day (UTC), inclusive
    page: str = "",
    partial: str = "",
    done: str = "",
    error: str = "",
) -> Response:
    flow = monitoring.flow(ui.services, ui.caller, flow_id)
    first, last = _day(since, "since"), _day(until, "until")
    bound = [f"status={status}", f"since={since}", f"until={until}"]
    collection = f"ui/runs/{flow_id}"
    after = page_after(request, ui, collection, bound, page)
    runs, following = monitoring.runs_page(
        ui.services,
        ui.caller,
        flow_id,
        status=status,
        since=_ms(first) if first else None,
        until=_ms(last + timedelta(days=1)) if last else None,
        after=(int(after[0]), str(after[1])) if after else None,
        limit=PAGE,
    )
    context: dict[str, Any] = {
        "flow": flow,
        "runs": runs,
        "filters": {"status": status, "since": since, "until": until},
        "statuses": monitoring.RUN_STATUSES,
        "next_page": next_page_token(
            request, ui, collection, bound, list(following) if following else None, PAGE
        ),
        "page": page,
        "done": done,
        "error": error,
    }
    if partial:
        return render(request, ui, "_runs_table.html", **context)
    recent = monitoring.chart_runs(ui.services, ui.caller, flow_id)
    totals = {
        "runs": len(recent),
        "failed_runs": sum(1 for r in recent if r.status == "failed"),
        "records": sum(max(r.input_records or 0, 0) for r in recent),
        "failed_records": sum(max(r.failed_records or 0, 0) for r in recent),
    }
    context.update(chart=charts.records_chart(recent), totals=totals)
    return render(request, ui, "flow.html", **context)


@router.get("/flows/{flow_id}/confirm")
def confirm_flow_action(request: Request, ui: UiDep, flow_id: str, action: str) -> Response:
    if action not in CONFIRM:
        raise InvalidRequest("1000", f"Unknown action '{action[:20]}'.", field="action")
    flow = monitoring.flow(ui.services, ui.caller, flow_id)
    return render(
        request,
        ui,
        "confirm.html",
        question=CONFIRM[action],
        subject=flow.name,
        action_url=f"/ui/flows/{quoted(flow_id)}/{action}",
        back_url=f"/ui/flows/{quoted(flow_id)}",
        button=action.capitalize() if action != "run" else "Run now",
    )


@router.post("/flows/{flow_id}/run")
def run_now(ui: UiDep, flow_id: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    check_csrf(ui, csrf)
    back = f"/ui/flows/{quoted(flow_id)}"
    try:
        run = triggers.run_now(ui.services, ui.caller, flow_id)
    except FlowServiceError as exc:
        return redirect(back, error=f"{exc.error_type}: {exc.message}")
    return redirect(back, done=f"Run {run['id']} started.")


@router.post("/flows/{flow_id}/{action}")
def set_state(ui: UiDep, flow_id: str, action: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    check_csrf(ui, csrf)
    if action not in ("enable", "disable"):
        raise InvalidRequest("1000", f"Unknown action '{action[:20]}'.", field="action")
    back = f"/ui/flows/{quoted(flow_id)}"
    try:
        resources.set_state(ui.services, ui.caller, FLOWS, flow_id, action, ACTIONS[action])
    except FlowServiceError as exc:
        return redirect(back, error=f"{exc.error_type}: {exc.message}")
    return redirect(back, done=f"Dataflow {action}d.")
