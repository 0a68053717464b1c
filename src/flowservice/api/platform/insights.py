"""Observability Insights: `POST /data/infrastructure/observability/insights/metrics` (digest 7.1).

Refusals use the Insights service's own body (`INSGHT-1000-400`, tenant info, an error chain), not
the Flow Service's, and that includes what FastAPI refuses before the endpoint runs (malformed
JSON, unknown fields, wrong types). An APIRouter cannot register exception handlers, and the app's
table answers with the Flow Service body, so this router's routes use `InsightsRoute`, which
catches both kinds around the endpoint and answers them here; the app's table is left alone.
(No `from __future__ import annotations`: FastAPI inspects the body annotation at runtime.)
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.domain import insights as model
from flowservice.domain.insights import InsightsError
from flowservice.domain.tenancy import Caller
from flowservice.schemas import describe
from flowservice.schemas.insights import MetricsRequest
from flowservice.services import insights
from flowservice.services.context import Services

BASE = "/data/infrastructure/observability/insights"
PARAM_SOURCES = ("body", "query", "header", "path", "cookie")


def _invalid_body(errors: list[Any]) -> InsightsError:
    """A body FastAPI could not read into `MetricsRequest`, as one reason naming the field."""
    first = errors[0] if errors else {}
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") == "missing":
        return InsightsError("The request body cannot be empty.")
    located = [
        {**e, "loc": tuple(part for part in e.get("loc", ()) if part not in PARAM_SOURCES)} for e in errors
    ]
    return InsightsError(describe(located).message)


def refusal(request: Request, error: InsightsError) -> JSONResponse:
    caller = getattr(request.state, "caller", None)
    tenant = caller.tenant if isinstance(caller, Caller) else None
    services: Services = request.app.state.services
    return JSONResponse(model.error_body(error, tenant, services.clock.now_ms()), status_code=error.status)


class InsightsRoute(APIRoute):
    """A route whose refusals, body parsing included, are answered with the INSGHT body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return refusal(request, _invalid_body(list(exc.errors())))
            except InsightsError as exc:
                return refusal(request, exc)

        return guarded


router = APIRouter(prefix=BASE, tags=["Observability Insights"], route_class=InsightsRoute)


@router.post(
    "/metrics",
    summary="Ingestion metrics per dataset over time (recordsuccess/recordfailed/batch counts, size)",
    response_model=None,
    responses={400: {"description": "INSGHT-1000-400: the payload is invalid; the title says why"}},
)
def metrics(body: MetricsRequest, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    """Adobe's V2 metrics query, answered from the hourly and daily ingestion rollups.

    - Metrics: `timeseries.ingestion.dataset.recordsuccess.count`, `.recordfailed.count` (ours:
      records rejected), `.batchsuccess.count`, `.batchfailed.count`, `.dailysize` (bytes written in
      the bucket) and `.size` (bytes written up to the bucket's end, a running total).
    - Buckets are UTC hours, days, weeks (from Monday) or months; every bucket overlapping
      `[start, end)` has a point (`end` is exclusive), zero where nothing happened.
    - `downsample` combines a bucket's hourly (for `hour`) or daily points, a missing one counting
      as 0; `aggregator` combines the datasets (those with data in the range), `avg` = sum / their
      number, `count` = how many had a point in the bucket. With `groupBy` each dataset id gets its
      own datapoint.
    - `aggregator` and `downsample` are required; at most 10,000 buckets and 200,000 datapoints.
    """
    return JSONResponse(insights.answer(services, caller, body))
