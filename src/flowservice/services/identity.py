"""Orgs, sandboxes and client credentials: what `flowservice credentials|sandboxes` and the IMS endpoint use."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from flowservice.domain.clock import SYSTEM_CLOCK, Clock
from flowservice.domain.tenancy import DEFAULT_SANDBOX, Caller, Tenant
from flowservice.errors import BadRequest, GatewayError, InvalidRequest, SandboxNotFound
from flowservice.services import crypto
from flowservice.store.db import Database
from flowservice.store.repos import identity as repo

ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,254}$")
SANDBOX_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class NewCredential:
    client_id: str
    client_secret: str
    org_id: str


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    id: str
    name: str
    org_id: str


def check_org_id(org_id: str) -> str:
    if not ORG_ID.match(org_id):
        raise BadRequest(
            f"'{org_id[:80]}' is not a valid org id: use letters, digits and @._- (e.g. 0123ABCD@AdobeOrg).",
            field="org",
        )
    return org_id


def ensure_org(session: Session, org_id: str, now_ms: int) -> None:
    """Create the org and its `prod` sandbox on first use."""
    if repo.get_org(session, check_org_id(org_id)) is None:
        repo.add_org(session, org_id, now_ms)
        repo.add_sandbox(session, org_id, DEFAULT_SANDBOX, now_ms)


def create_credentials(
    db: Database, org_id: str, name: str = "", clock: Clock = SYSTEM_CLOCK
) -> NewCredential:
    secret = crypto.new_client_secret()
    with db.transaction() as session:
        now = clock.now_ms()
        ensure_org(session, org_id, now)
        credential = repo.add_credential(
            session,
            client_id=crypto.new_client_id(),
            org_id=org_id,
            secret_hash=crypto.hash_client_secret(secret),
            name=name,
            now_ms=now,
        )
    return NewCredential(credential.client_id, secret, org_id)


def create_sandbox(db: Database, org_id: str, name: str, clock: Clock = SYSTEM_CLOCK) -> SandboxInfo:
    if not SANDBOX_NAME.match(name):
        raise BadRequest(
            f"'{name[:80]}' is not a valid sandbox name: 1-64 lower-case letters, digits and inner hyphens.",
            field="name",
        )
    with db.transaction() as session:
        ensure_org(session, org_id, clock.now_ms())
        if repo.get_sandbox(session, org_id, name) is not None:
            raise InvalidRequest(
                "1000", f"The sandbox '{name}' already exists in org {org_id}.", field="name"
            )
        sandbox = repo.add_sandbox(session, org_id, name, clock.now_ms())
    return SandboxInfo(sandbox.id, sandbox.name, org_id)


def list_sandboxes(db: Database, org_id: str) -> list[SandboxInfo]:
    with db.reader() as session:
        return [SandboxInfo(s.id, s.name, s.ims_org_id) for s in repo.list_sandboxes(session, org_id)]


def authenticate_client(db: Database, client_id: str, client_secret: str) -> str | None:
    """The org of a live credential whose secret matches, else None."""
    with db.reader() as session:
        credential = repo.get_credential(session, client_id)
        if credential is None or credential.revoked_at is not None:
            crypto.secret_matches(client_secret, "0" * 64)  # same work either way: no timing oracle on ids
            return None
        if not crypto.secret_matches(client_secret, credential.secret_hash):
            return None
        return credential.ims_org_id


def revoke_credentials(db: Database, client_id: str, clock: Clock = SYSTEM_CLOCK) -> bool:
    with db.transaction() as session:
        credential = repo.get_credential(session, client_id)
        if credential is None or credential.revoked_at is not None:
            return False
        credential.revoked_at = clock.now_ms()
    return True


def resolve_caller(
    db: Database, client_id: str, org_id: str, sandbox_name: str, request_id: str = ""
) -> Caller:
    """The caller behind a verified token, if its credential is still live and the sandbox exists.

    Checked on every request (one indexed read), so revoking a credential takes effect at once.
    """
    with db.reader() as session:
        live, sandbox = repo.caller_context(session, client_id, org_id, sandbox_name)
    if not live:
        raise GatewayError("401013", "Oauth token is not valid")
    if sandbox is None:
        raise SandboxNotFound(sandbox_name)
    return Caller(Tenant(org_id, sandbox.name, sandbox.id), client_id, request_id)
