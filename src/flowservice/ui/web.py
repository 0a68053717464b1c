"""What every UI page shares: the signed-in caller, rendering, errors as pages, form checks.

UI routes use `UiRoute`, so a missing session becomes a redirect to sign-in and a service error
(404, 400 with Adobe's code) becomes an HTML page with the same status, never the API's JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from flowservice.domain.tenancy import Caller
from flowservice.errors import FlowServiceError, GatewayError, InvalidRequest, SandboxNotFound
from flowservice.services import identity
from flowservice.services.context import Services
from flowservice.services.paging import ContinuationTokens, Position
from flowservice.ui import format as fmt
from flowservice.ui.session import COOKIE, TTL_S, Session, SessionCodec

log = logging.getLogger("flowservice.ui")
HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
templates.env.globals.update(
    count=fmt.count, size=fmt.size, duration=fmt.duration, when=fmt.when, ago=fmt.ago, iso=fmt.iso
)


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class UiRoute(APIRoute):
    """Errors of UI routes answered as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignInRequired as exc:
                return RedirectResponse(f"/ui/signin?{urlencode({'next': exc.next_url})}", status_code=303)
            except FlowServiceError as exc:
                return error_page(request, exc.status, exc.title, exc.message, exc.error_type)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path"))
                message = f"{where}: {first.get('msg', 'invalid value')}" if where else "invalid request"
                return error_page(request, 400, "Bad request", message, "")

        return handler


@dataclass(frozen=True, slots=True)
class Ui:
    """The services, the session and its caller, for one request."""

    services: Services
    session: Session
    caller: Caller
    now_ms: int
    session_changed: bool = False


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def codec(request: Request) -> SessionCodec:
    found: SessionCodec | None = getattr(request.app.state, "ui_sessions", None)
    if found is None:
        settings = services_of(request).settings
        found = SessionCodec(settings.secret, settings.previous_secrets)
        request.app.state.ui_sessions = found
    return found


def tokens(request: Request) -> ContinuationTokens:
    found: ContinuationTokens = request.app.state.continuation_tokens
    return found


def page_after(request: Request, ui: Ui, collection: str, bound: list[str], page: str) -> list[Any] | None:
    """The keyset position of `page` (a continuation token), checked to belong to this very list."""
    if not page:
        return None
    position = tokens(request).read(page, ui.caller.tenant, collection)
    if position.properties != bound:
        raise InvalidRequest("1000", "This page link belongs to other filters; start from the first page.")
    return position.after


def next_page_token(
    request: Request, ui: Ui, collection: str, bound: list[str], following: list[Any] | None, limit: int
) -> str:
    """The link to the page after `following` (none when this page was the last)."""
    if following is None:
        return ""
    return tokens(request).issue(ui.caller.tenant, collection, Position(bound, [], limit, list(following)))


def current_ui(request: Request) -> Ui:
    """The signed-in caller of this request; sign-in when there is none or its credential was revoked."""
    services = services_of(request)
    now_ms = services.clock.now_ms()
    session = codec(request).load(request.cookies.get(COOKIE), now_ms // 1000)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if session is None:
        raise SignInRequired(target)
    signed_in, changed = session.signed_in, False
    try:
        caller = identity.resolve_caller(services.db, signed_in.client_id, signed_in.org_id, session.sandbox)
    except SandboxNotFound:  # the sandbox was deleted: fall back to prod
        session, changed = replace(session, sandbox="prod"), True
        caller = identity.resolve_caller(services.db, signed_in.client_id, signed_in.org_id, "prod")
    except GatewayError:
        raise SignInRequired(target) from None
    return Ui(services, session, caller, now_ms, changed)


def set_session(request: Request, response: Response, session: Session) -> None:
    now_s = services_of(request).clock.now_ms() // 1000
    response.set_cookie(
        COOKIE,
        codec(request).dump(session, now_s),
        max_age=TTL_S,
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def render(
    request: Request, ui: Ui | None, template: str, http_status: int = 200, **context: Any
) -> HTMLResponse:
    common: dict[str, Any] = {"ui": ui, "now": ui.now_ms if ui else services_of(request).clock.now_ms()}
    if ui is not None:
        common["sandboxes"] = [
            s.name for s in identity.list_sandboxes(ui.services.db, ui.caller.tenant.org_id)
        ]
        common["csrf"] = ui.session.csrf
    response: HTMLResponse = templates.TemplateResponse(
        request, template, {**common, **context}, status_code=http_status
    )
    if ui is not None and ui.session_changed:
        set_session(request, response, ui.session)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: Request, status: int, title: str, message: str, code: str) -> HTMLResponse:
    try:
        ui: Ui | None = current_ui(request)
    except (SignInRequired, FlowServiceError, GatewayError):
        ui = None
    return render(request, ui, "error.html", http_status=status, title=title, message=message, code=code)


def check_csrf(ui: Ui, token: str) -> None:
    if not ui.session.csrf_ok(token):
        raise InvalidRequest("1000", "This form has expired; reload the page and try again.", field="csrf")


def redirect(url: str, **notice: str) -> RedirectResponse:
    """303 to `url`, with a notice (`done=…` or `error=…`) the page shows once."""
    query = urlencode({k: v[:300] for k, v in notice.items() if v})
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{query}" if query else url, status_code=303)


def quoted(value: str) -> str:
    return quote(value, safe="")
