"""The gateway in front of the Platform APIs: request ids, body limits, content type, headers and tokens.

It runs as ASGI middleware, before routing and body parsing, as Adobe's gateway does: a request
without a valid token gets the gateway's answer even if its body is malformed or its route unknown.
Check order (digest 6.1): Authorization → x-api-key → x-gw-ims-org-id → x-sandbox-name.

With `rate_limit_per_second` set, a client whose token and api key check out is then counted against
its bucket (api/ratelimit.py) before anything reads the database, and answered 429 with Retry-After
and the gateway's body when it is empty: a throttled client costs no query.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowservice.api.errors import gateway_response, problem_response
from flowservice.api.ratelimit import TokenBuckets, retry_after
from flowservice.domain.tenancy import DEFAULT_SANDBOX, Caller
from flowservice.errors import FlowServiceError, GatewayError, PayloadTooLarge
from flowservice.services.context import Services
from flowservice.services.identity import resolve_caller
from flowservice.services.tokens import InvalidToken

PROTECTED_PREFIX = "/data/"
BODY_METHODS = ("POST", "PUT", "PATCH")


class Throttled(GatewayError):
    """Adobe's gateway answer to a client over its rate, with how long to wait."""

    def __init__(self, wait_s: float) -> None:
        super().__init__("429050", "Too many requests")
        self.wait_s = wait_s


class Gateway:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        settings = services.settings
        self.limiter = (
            TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
            if settings.rate_limit_per_second > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = (headers.get("x-request-id") or "")[:128] or str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        send = _with_request_id(send, request_id)

        response: Response | None = None
        body_size = 0
        if scope["method"] in BODY_METHODS:
            receive, response, body_size = await self._buffer_body(receive, headers, request_id)
        if response is None and scope["path"].startswith(PROTECTED_PREFIX):
            try:
                state["caller"] = await self._authenticate(headers, request_id)
            except Throttled as exc:
                response = gateway_response(exc)
                response.headers["Retry-After"] = retry_after(exc.wait_s)
            except GatewayError as exc:
                response = gateway_response(exc)
            except FlowServiceError as exc:
                response = problem_response(exc, request_id)
            if response is None and scope["method"] in BODY_METHODS:
                response = _content_type_problem(headers, body_size)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _buffer_body(
        self, receive: Receive, headers: Headers, request_id: str
    ) -> tuple[Receive, Response | None, int]:
        """Read the body up to the limit (refusing more with 413) and replay it to the app."""
        limit = self.services.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return receive, problem_response(PayloadTooLarge(limit), request_id), 0
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return receive, Response(status_code=400), 0
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return receive, problem_response(PayloadTooLarge(limit), request_id), size
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: wait for disconnect, as a server would
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay, None, len(body)

    async def _authenticate(self, headers: Headers, request_id: str) -> Caller:
        authorization = headers.get("authorization")
        if not authorization:
            raise GatewayError("403010", "Oauth token is missing.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError("401013", "Oauth token is not valid")
        try:
            claims = self.services.tokens.verify(token.strip(), self.services.clock.now_ms() // 1000)
        except InvalidToken:
            raise GatewayError("401013", "Oauth token is not valid") from None
        api_key = headers.get("x-api-key")
        if not api_key:
            raise GatewayError("403000", "Api Key is required")
        if api_key != claims.client_id:
            raise GatewayError("403003", "Api Key is invalid")
        if self.limiter is not None:
            wait_s = self.limiter.take(claims.client_id)
            if wait_s > 0:
                raise Throttled(wait_s)
        org_id = headers.get("x-gw-ims-org-id")
        if not org_id:
            raise GatewayError("400003", "Missing header")
        if org_id != claims.org_id:
            raise FlowServiceError(
                "2000", 401, "Unauthorized", f"The access token has no access to the org '{org_id[:255]}'."
            )
        sandbox = headers.get("x-sandbox-name") or DEFAULT_SANDBOX
        return await run_in_threadpool(
            resolve_caller, self.services.db, claims.client_id, org_id, sandbox, request_id
        )


def _content_type_problem(headers: Headers, body_size: int) -> Response | None:
    """Bodies must be JSON; bodiless POSTs (actions) need no content type, as in Adobe's own examples."""
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if body_size == 0 or media == "application/json" or media.endswith("+json"):
        return None
    return JSONResponse(
        {
            "type": "/placeholder/type/uri",
            "status": 400,
            "title": "BadRequestError",
            "detail": "A valid content-type must be specified",
        },
        status_code=400,
    )


def _with_request_id(send: Send, request_id: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message)["x-request-id"] = request_id
        await send(message)

    return wrapped


def caller(request: Request) -> Caller:
    """FastAPI dependency: the caller the gateway authenticated (protected routes only)."""
    found: Any = getattr(request.state, "caller", None)
    if not isinstance(found, Caller):  # a route outside /data/ asked for a caller: a wiring bug
        raise RuntimeError("no authenticated caller on this request")
    return found
