"""A run's page (summary, timeline, activities, errors, failed records, input files), the download
of its failed records, and retrying it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import StreamingResponse

from flowservice.errors import FlowServiceError
from flowservice.services import monitoring, triggers
from flowservice.ui import charts
from flowservice.ui.web import Ui, UiRoute, check_csrf, current_ui, quoted, redirect, render

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
UiDep = Annotated[Ui, Depends(current_ui)]
FINAL = ("success", "failed", "cancelled")


def _bars(doc: dict[str, Any]) -> list[charts.Bar]:
    bars = []
    for activity in doc.get("activities") or []:
        duration = activity.get("durationSummary") or {}
        start = duration.get("startedAtUTC")
        if isinstance(start, int) and start > 0:
            end = duration.get("completedAtUTC")
            status = (activity.get("statusSummary") or {}).get("status", "")
            bars.append(
                charts.Bar(
                    str(activity.get("name", "")), str(status), start, end if isinstance(end, int) else None
                )
            )
    return bars


def _window(doc: dict[str, Any]) -> tuple[int, int] | None:
    for activity in doc.get("activities") or []:
        extensions = (activity.get("durationSummary") or {}).get("extensions") or {}
        if "windowStart" in extensions and "windowEnd" in extensions:
            return int(extensions["windowStart"]), int(extensions["windowEnd"])
    params = doc.get("params") or {}
    if "windowStartTime" in params and "windowEndTime" in params:
        return int(params["windowStartTime"]) * 1000, int(params["windowEndTime"]) * 1000
    return None


@router.get("/runs/{run_id}")
def run_page(
    request: Request, ui: UiDep, run_id: str, partial: str = "", done: str = "", error: str = ""
) -> Response:
    view = monitoring.run(ui.services, ui.caller, run_id)
    doc = view.doc
    context: dict[str, Any] = {
        "view": view,
        "run": doc,
        "metrics": doc.get("metrics") or {},
        "window": _window(doc),
        "timeline": charts.timeline(_bars(doc), ui.now_ms),
        "final": doc.get("state") in FINAL,
        "done": done,
        "error": error,
    }
    return render(request, ui, "_run_body.html" if partial else "run.html", **context)


@router.get("/runs/{run_id}/failed-records.jsonl")
def failed_records(ui: UiDep, run_id: str) -> Response:
    lines = monitoring.failed_records_jsonl(ui.services, ui.caller, run_id)
    first = next(lines, b"")  # raise NotFound before the response starts, not in the middle of it

    def body() -> Any:
        if first:
            yield first
        yield from lines

    return StreamingResponse(
        body(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="failed-records-{run_id}.jsonl"'},
    )


@router.get("/runs/{run_id}/confirm-retry")
def confirm_retry(request: Request, ui: UiDep, run_id: str) -> Response:
    view = monitoring.run(ui.services, ui.caller, run_id)
    return render(
        request,
        ui,
        "confirm.html",
        question="Retry this run? A new run reads the same window again.",
        subject=f"run {run_id} of {view.flow_name}",
        action_url=f"/ui/runs/{quoted(run_id)}/retry",
        back_url=f"/ui/runs/{quoted(run_id)}",
        button="Retry",
    )


@router.post("/runs/{run_id}/retry")
def retry(ui: UiDep, run_id: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    check_csrf(ui, csrf)
    try:
        created = triggers.retrigger(ui.services, ui.caller, run_id)
    except FlowServiceError as exc:
        return redirect(f"/ui/runs/{quoted(run_id)}", error=f"{exc.error_type}: {exc.message}")
    return redirect(f"/ui/runs/{quoted(created['id'])}", done=f"Retry of run {run_id} started.")
