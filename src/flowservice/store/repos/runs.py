"""Run-specific data functions: the newest run of a flow, the bulk insert, the flow's lastRunDetails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from flowservice.domain.tenancy import Tenant
from flowservice.store.repos.resources import columns_for
from flowservice.store.tables import Batch, Flow, Run

BATCH = 2_000


def newest_of_flow(session: Session, tenant: Tenant, flow_id: str) -> Run | None:
    query = (
        select(Run)
        .where(
            Run.ims_org_id == tenant.org_id, Run.sandbox_name == tenant.sandbox_name, Run.flow_id == flow_id
        )
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def set_last_run_details(session: Session, flow: Flow, details: dict[str, Any] | None) -> None:
    """Set the flow's lastRunDetails, or remove them (None: the flow has no run left)."""
    if details is None:
        flow.doc = {key: value for key, value in flow.doc.items() if key != "lastRunDetails"}
    else:
        flow.doc = {**flow.doc, "lastRunDetails": details}  # a new dict, so the ORM sees the change
    session.flush()


def insert_many(session: Session, tenant: Tenant, docs: Sequence[dict[str, Any]]) -> None:
    """Insert run documents in batches with executemany (no ORM objects): the path for bulk loads."""
    for start in range(0, len(docs), BATCH):
        rows = [
            {
                "id": doc["id"],
                "ims_org_id": tenant.org_id,
                "sandbox_name": tenant.sandbox_name,
                "doc": doc,
                **columns_for(Run, doc),
            }
            for doc in docs[start : start + BATCH]
        ]
        session.execute(insert(Run), rows)


def claimable(session: Session, now: int, limit: int) -> list[Run]:
    """Runs a worker may take, oldest first, locked (PostgreSQL skips rows other workers hold)."""
    query = (
        select(Run)
        .where(
            or_(
                and_(Run.status == "scheduled", Run.ready_at <= now),
                and_(Run.status == "inProgress", Run.lease_expires_at < now),
            )
        )
        .order_by(Run.created_at, Run.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def locked(session: Session, run_id: str) -> Run | None:
    """One run of any tenant by id, locked for this transaction (a queued job names only the run)."""
    return session.scalars(select(Run).where(Run.id == run_id).with_for_update()).first()


def release_lease(session: Session, run_id: str, epoch: int) -> bool:
    """End the claim of `epoch` now: the lease expires and the epoch moves on, so the holder's later
    fenced writes fail even before another worker claims the run. False if it was not held so."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.lease_epoch == epoch, Run.status == "inProgress")
        .values(lease_epoch=epoch + 1, lease_expires_at=0, lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def renew_lease(session: Session, run_id: str, epoch: int, expires_at: int) -> bool:
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.lease_epoch == epoch, Run.status == "inProgress")
        .values(lease_expires_at=expires_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def batch_of_run(session: Session, run_id: str) -> Batch | None:
    """The batch a run committed, if any (run ids are unique across tenants)."""
    return session.scalars(select(Batch).where(Batch.run_id == run_id)).first()
