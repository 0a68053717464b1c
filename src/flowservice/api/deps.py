"""FastAPI dependencies, aliased once so handlers read like types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flowservice.api.auth import caller
from flowservice.domain.tenancy import Caller
from flowservice.services.context import Services
from flowservice.services.paging import ContinuationTokens


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_tokens(request: Request) -> ContinuationTokens:
    tokens: ContinuationTokens = request.app.state.continuation_tokens
    return tokens


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(caller)]
TokensDep = Annotated[ContinuationTokens, Depends(get_tokens)]
