"""Orgs, sandboxes and client credentials: the identity behind every token."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowservice.store.tables import Credential, Org, Sandbox


def get_org(session: Session, org_id: str) -> Org | None:
    return session.get(Org, org_id)


def add_org(session: Session, org_id: str, now_ms: int) -> Org:
    org = Org(id=org_id, created_at=now_ms)
    session.add(org)
    session.flush()
    return org


def get_sandbox(session: Session, org_id: str, name: str) -> Sandbox | None:
    return session.scalars(select(Sandbox).where(Sandbox.ims_org_id == org_id, Sandbox.name == name)).first()


def list_sandboxes(session: Session, org_id: str) -> list[Sandbox]:
    return list(session.scalars(select(Sandbox).where(Sandbox.ims_org_id == org_id).order_by(Sandbox.name)))


def add_sandbox(session: Session, org_id: str, name: str, now_ms: int) -> Sandbox:
    sandbox = Sandbox(id=str(uuid.uuid4()), ims_org_id=org_id, name=name, created_at=now_ms)
    session.add(sandbox)
    session.flush()
    return sandbox


def add_credential(
    session: Session, *, client_id: str, org_id: str, secret_hash: str, name: str, now_ms: int
) -> Credential:
    credential = Credential(
        client_id=client_id, ims_org_id=org_id, secret_hash=secret_hash, name=name, created_at=now_ms
    )
    session.add(credential)
    session.flush()
    return credential


def get_credential(session: Session, client_id: str) -> Credential | None:
    return session.get(Credential, client_id)


def list_credentials(session: Session, org_id: str) -> list[Credential]:
    query = select(Credential).where(Credential.ims_org_id == org_id).order_by(Credential.created_at)
    return list(session.scalars(query))


def caller_context(
    session: Session, client_id: str, org_id: str, sandbox: str
) -> tuple[bool, Sandbox | None]:
    """One round trip for the gateway: is the credential live for this org, and does the sandbox exist?"""
    credential = session.get(Credential, client_id)
    live = credential is not None and credential.revoked_at is None and credential.ims_org_id == org_id
    return live, get_sandbox(session, org_id, sandbox) if live else None
