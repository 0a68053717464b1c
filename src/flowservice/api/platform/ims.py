"""IMS: `POST /ims/token/v3`, the client-credentials grant that issues the Bearer tokens the API checks.

Answers follow OAuth 2.0 (RFC 6749 §5), as Adobe IMS does: `{"access_token", "token_type",
"expires_in"}` on success, `{"error", "error_description"}` otherwise.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from flowservice.api.deps import ServicesDep
from flowservice.api.openapi import TokenAnswer, ok
from flowservice.services.identity import authenticate_client

router = APIRouter(tags=["IMS"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post(
    "/ims/token/v3",
    summary="Exchange client credentials for an access token",
    response_model=None,
    responses=ok(TokenAnswer, description="An access token (`Cache-Control: no-store`)"),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type", "client_id", "client_secret"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "scope": {"type": "string"},
                        },
                    }
                }
            }
        }
    },
)
async def issue_token(request: Request, services: ServicesDep) -> JSONResponse:
    fields: dict[str, Any] = dict(request.query_params)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in FORM_TYPES:
        try:
            form = await request.form()
        except Exception:  # python-multipart raises several types for a malformed body
            return _oauth_error(400, "invalid_request", "The form body could not be parsed.")
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    grant_type = fields.get("grant_type")
    if not grant_type:
        return _oauth_error(400, "invalid_request", "grant_type is required.")
    if grant_type != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", f"grant_type '{grant_type[:64]}' is not supported."
        )
    client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
    if not client_id:
        return _oauth_error(400, "invalid_request", "client_id is required.")
    if not client_secret:
        return _oauth_error(400, "invalid_request", "client_secret is required.")
    org_id = await run_in_threadpool(authenticate_client, services.db, client_id, client_secret)
    if org_id is None:
        return _oauth_error(401, "invalid_client", "invalid client_id or client_secret.")
    ttl = services.settings.token_ttl_seconds
    token = services.tokens.issue(client_id, org_id, services.clock.now_ms() // 1000, ttl)
    return JSONResponse(
        {"access_token": token, "token_type": "bearer", "expires_in": ttl},
        headers={"Cache-Control": "no-store"},
    )
