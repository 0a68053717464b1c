"""One handler table: every error the service can raise becomes one of Adobe's error bodies.

Gateway failures (headers, tokens) use the gateway's `{"error_code", "message"}`; everything else
uses the Flow Service problem body of digest 6.2. Nothing answers with a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from flowservice.errors import FlowServiceError, GatewayError, InvalidRequest
from flowservice.schemas import describe

log = logging.getLogger("flowservice.api")

ERROR_TYPE_BASE = "https://ns.adobe.com/aep/errors/"
PARAM_SOURCES = ("body", "query", "header", "path", "cookie")


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def problem_body(error: FlowServiceError, request_id: str) -> dict[str, Any]:
    report: dict[str, Any] = {"detailed-message": error.message, "request-id": request_id}
    report.update(error.report)
    return {
        "type": ERROR_TYPE_BASE + error.error_type,
        "title": error.title,
        "status": error.status,
        "report": report,
        "errorMessage": error.message,
        "errorDetails": error.message,
    }


def problem_response(error: FlowServiceError, request_id: str) -> JSONResponse:
    return JSONResponse(
        problem_body(error, request_id), status_code=error.status, headers=error.headers or None
    )


def gateway_response(error: GatewayError) -> JSONResponse:
    return JSONResponse({"error_code": error.error_code, "message": error.message}, status_code=error.status)


def _validation_error(errors: list[Any]) -> FlowServiceError:
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    if loc == ("body",) and first.get("type") == "missing":
        return InvalidRequest("1405", "The request body cannot be null or empty.")
    return describe([_without_source(e) for e in errors])


def _without_source(error: Any) -> dict[str, Any]:
    """`("query", "limit")` → `("limit",)`: messages name the parameter, not where FastAPI found it."""
    loc = tuple(error.get("loc", ()))
    return {**error, "loc": loc[1:] if loc and loc[0] in PARAM_SOURCES else loc}


def install(app: FastAPI) -> None:
    @app.exception_handler(FlowServiceError)
    async def _domain(request: Request, exc: FlowServiceError) -> JSONResponse:
        return problem_response(exc, request_id_of(request))

    @app.exception_handler(GatewayError)
    async def _gateway(_request: Request, exc: GatewayError) -> JSONResponse:
        return gateway_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(_validation_error(list(exc.errors())), request_id_of(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error = FlowServiceError(
                "1003", 404, "Not found", f"No resource at {request.method} {request.url.path}."
            )
        elif exc.status_code == 405:
            error = FlowServiceError(
                "1000", 405, "Method not allowed", f"{request.method} is not supported on {request.url.path}."
            )
        else:
            error = FlowServiceError("1000", exc.status_code, "Request failed", str(exc.detail))
        if exc.headers:
            error.headers = dict(exc.headers)
        return problem_response(error, request_id_of(request))

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, _exc: RecursionError) -> JSONResponse:
        # json.loads recurses per nesting level; a body of 100k "[" must be a 400, not a crash.
        error = InvalidRequest("1000", "The request body is nested too deeply.")
        return problem_response(error, request_id_of(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error on %s %s (request %s)",
            request.method,
            request.url.path,
            request_id_of(request),
            exc_info=exc,
        )
        error = FlowServiceError(
            "1102", 500, "Internal error", "The server failed to process the request; it has been logged."
        )
        return problem_response(error, request_id_of(request))
