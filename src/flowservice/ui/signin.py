"""Signing in with client credentials (as the IMS grant does), the development link, signing out,
and switching org or sandbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from flowservice.errors import FlowServiceError, GatewayError
from flowservice.services import identity
from flowservice.services.tokens import SIGN_IN, InvalidToken
from flowservice.ui.session import COOKIE, SignedIn, new_session
from flowservice.ui.web import (
    Ui,
    UiRoute,
    check_csrf,
    codec,
    current_ui,
    redirect,
    render,
    services_of,
    set_session,
)

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
UiDep = Annotated[Ui, Depends(current_ui)]


def _safe_next(target: str) -> str:
    """Only a path of the UI: a sign-in must not be a way to send people to another site."""
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/flows"


def _signed_in_session(request: Request, credential: SignedIn, sandbox: str) -> RedirectResponse | None:
    """Sign `credential` in to `sandbox`; None when the sandbox does not exist in its org."""
    services = services_of(request)
    try:
        identity.resolve_caller(services.db, credential.client_id, credential.org_id, sandbox)
    except FlowServiceError:
        return None
    now_s = services.clock.now_ms() // 1000
    existing = codec(request).load(request.cookies.get(COOKIE), now_s)
    session = existing.with_credential(credential, sandbox) if existing else new_session(credential, sandbox)
    response = RedirectResponse("/ui/flows", status_code=303)
    set_session(request, response, session)
    return response


@router.get("/signin")
def signin_form(request: Request, next: str = "/ui/flows", error: str = "") -> Response:
    return render(request, None, "signin.html", next=_safe_next(next), error=error)


@router.post("/signin")
def signin(
    request: Request,
    client_id: Annotated[str, Form(max_length=128)],
    client_secret: Annotated[str, Form(max_length=256)],
    sandbox: Annotated[str, Form(max_length=64)] = "prod",
    next: Annotated[str, Form(max_length=2048)] = "/ui/flows",
) -> Response:
    services = services_of(request)
    org_id = identity.authenticate_client(services.db, client_id.strip(), client_secret.strip())
    if org_id is None:
        return render(
            request,
            None,
            "signin.html",
            http_status=401,
            next=_safe_next(next),
            error="Unknown client id or secret.",
        )
    response = _signed_in_session(request, SignedIn(client_id.strip(), org_id), sandbox.strip() or "prod")
    if response is None:
        message = f"The sandbox '{sandbox}' does not exist in org {org_id}."
        return render(request, None, "signin.html", http_status=400, next=_safe_next(next), error=message)
    response.headers["location"] = _safe_next(next)
    return response


@router.get("/signin/link")
def signin_link(request: Request, ticket: str = "") -> Response:
    """The one-click link `flowservice serve --dev` prints: a signed, expiring ticket for a credential."""
    services = services_of(request)
    try:
        claims = services.tokens.verify(ticket, services.clock.now_ms() // 1000, kind=SIGN_IN)
        identity.resolve_caller(services.db, claims.client_id, claims.org_id, "prod")
    except (InvalidToken, GatewayError, FlowServiceError):
        return redirect(
            "/ui/signin", error="That sign-in link is not valid any more; sign in with the credentials."
        )
    response = _signed_in_session(request, SignedIn(claims.client_id, claims.org_id), "prod")
    return response or redirect("/ui/signin")


@router.post("/signout")
def signout(ui: UiDep, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    check_csrf(ui, csrf)
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@router.post("/switch")
def switch(
    request: Request,
    ui: UiDep,
    csrf: Annotated[str, Form(max_length=64)],
    org: Annotated[str, Form(max_length=128)],
    sandbox: Annotated[str, Form(max_length=64)] = "prod",
) -> Response:
    check_csrf(ui, csrf)
    switched = ui.session.looking_at(org, sandbox)
    if switched is None:
        return redirect("/ui/flows", error=f"Sign in with a credential of org {org} first.")
    try:
        identity.resolve_caller(ui.services.db, switched.signed_in.client_id, org, sandbox)
    except (FlowServiceError, GatewayError):
        return redirect("/ui/flows", error=f"The sandbox '{sandbox}' does not exist in org {org}.")
    response = RedirectResponse("/ui/flows", status_code=303)
    set_session(request, response, switched)
    return response


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse("/ui/flows", status_code=303)
