"""Who is calling and on whose data: every tenant-owned read and write is scoped by a `Tenant`."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SANDBOX = "prod"


@dataclass(frozen=True, slots=True)
class Tenant:
    org_id: str
    sandbox_name: str
    sandbox_id: str


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated client acting in one tenant.

    For service (client-credentials) tokens Adobe reports `createdBy` equal to `createdClient`,
    so `user` is the client id.
    """

    tenant: Tenant
    client_id: str
    request_id: str = ""

    @property
    def user(self) -> str:
        return self.client_id
