"""`GET /metrics` for Prometheus, who may scrape it, and the middleware timing every HTTP request.

`/metrics` lists every tenant's flows by name, so it is an operator's endpoint, outside the Adobe
gateway (a scraper has no IMS token and no org) and never open to tenants by accident: with
`FLOWSERVICE_METRICS_TOKEN` set it takes `Authorization: Bearer <token>` only; unset, it answers
only clients on the loopback interface, and refuses relayed requests (`Forwarded`, `X-Forwarded-For`
or `X-Real-IP`), since behind a reverse proxy on the same host every client would look local.

Latency is labelled with the route's template (`/data/foundation/flowservice/runs/{run_id}`),
never the raw path: ids in paths would make a series per resource. Paths no route knows share one
label, and a request the gateway refused before routing is still given its route's template.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import Iterable, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import Histogram
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowservice.errors import FlowServiceError
from flowservice.services import metrics as service
from flowservice.services.context import Services

UNMATCHED_ROUTE = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
RELAY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")

router = APIRouter()


@router.get("/metrics", include_in_schema=False)  # an operator's endpoint, not part of Adobe's APIs
def scrape(request: Request) -> Response:
    """Sync on purpose: the collector reads the database, so FastAPI runs this in its thread pool."""
    services: Services = request.app.state.services
    refuse_unless_allowed(request, services)
    body, content_type = service.exposition(request.app.state.metrics, request.headers.get("accept", ""))
    return Response(body, media_type=content_type)


def refuse_unless_allowed(request: Request, services: Services) -> None:
    secret = services.settings.metrics_token
    token = secret.get_secret_value() if secret is not None else ""
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), token):
            return
        raise FlowServiceError(
            "2000",
            401,
            "Unauthorized",
            "/metrics requires Authorization: Bearer <FLOWSERVICE_METRICS_TOKEN>.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    relayed = any(name in request.headers for name in RELAY_HEADERS)
    if relayed or not is_loopback(request.client.host if request.client else None):
        raise FlowServiceError(
            "2000",
            403,
            "Forbidden",
            "/metrics answers only loopback clients while FLOWSERVICE_METRICS_TOKEN is unset; "
            "set it and scrape with Authorization: Bearer <token>.",
        )


def _same(given: str, token: str) -> bool:
    """Constant-time comparison of digests: the time taken reveals neither the token nor its length."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(token.encode()).digest()
    )


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1, or IPv4-mapped loopback; anything else (a name, a Unix socket, none) is not."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class RequestLatency:
    """Observes each HTTP request's duration by method, route template and status class. Pure ASGI,
    not BaseHTTPMiddleware: that one runs the app in another task and re-wraps every answer as a
    stream, a cost on every request (file downloads included) for what a wrapped `send` does."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the answer started becomes the server's 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.histogram.labels(method, self.route_template(scope), f"{status // 100}xx").observe(
                time.perf_counter() - started
            )

    def route_template(self, scope: Scope) -> str:
        """The template of the route that took the request, as routing left it in the scope; else
        (the gateway answered before routing, or a mount served it) the first template whose pattern
        matches the path; `UNMATCHED_ROUTE` when none does."""
        template = getattr(scope.get("route"), "path_format", None)
        if template:
            return str(template)
        if self._templates is None:  # the routes are all added before the first request
            self._templates = list(route_templates(getattr(scope.get("app"), "routes", [])))
        path = scope["path"]
        return next((t for pattern, t in self._templates if pattern.match(path)), UNMATCHED_ROUTE)


def route_templates(routes: Iterable[BaseRoute]) -> Iterator[tuple[re.Pattern[str], str]]:
    """Every route's (pattern, template), in routing order. Routers included into others are walked
    (FastAPI ≥ 0.16x keeps them nested: `original_router`); a mount is one template, `…/{path}`. The
    app includes its routers without an extra prefix, so a nested route's own template is its path."""
    for route in routes:
        pattern, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
        if isinstance(route, Mount) or (pattern is not None and template):
            if pattern is not None and template:
                yield pattern, str(template)
            continue
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is None:
            nested = getattr(route, "routes", None)
        if nested:
            yield from route_templates(nested)
