"""Retention's statements: old rows of one tenant at a time, a bounded batch per call.

Every selection walks the tenants' `(ims_org_id, sandbox_name, created_at, id)` index from a keyset
position, so a purge never scans a table or holds more than one batch of rows; rows another purge
holds are skipped (SKIP LOCKED on PostgreSQL; SQLite serialises writers), so purges run side by side.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.orm import Session

from flowservice.domain.runs import TERMINAL
from flowservice.domain.tenancy import Tenant
from flowservice.store.tables import AlertDelivery, Batch, Run, Sandbox, TenantOwned

SETTLED = ("delivered", "failed")  # alert deliveries nobody will send again
IN_FLIGHT = ("scheduled", "inProgress")
IDS_PER_STATEMENT = 1_000  # bound parameters per IN list


@dataclass(frozen=True, slots=True)
class Position:
    """Where the next batch starts: strictly after this `(created_at, id)`."""

    created_at: int
    id: str


@dataclass(frozen=True, slots=True)
class OldRun:
    id: str
    flow_id: str
    position: Position


@dataclass(frozen=True, slots=True)
class OldBatch:
    id: str
    dataset_id: str
    position: Position
    lake_attempt: str = ""  # the upload the batch row committed, in an S3 lake


# where the commit (services/execution.py) records which upload of an S3 lake is the batch
LAKE_ATTEMPT = ("flowservice", "lakeAttempt")


def tenants(session: Session) -> list[Tenant]:
    rows = session.execute(
        select(Sandbox.ims_org_id, Sandbox.name, Sandbox.id).order_by(Sandbox.ims_org_id, Sandbox.name)
    )
    return [Tenant(org, name, sandbox_id) for org, name, sandbox_id in rows]


def lock_finished_runs(
    session: Session, tenant: Tenant, before: int, after: Position | None, limit: int
) -> list[OldRun]:
    """Up to `limit` finished runs created before `before`, oldest first, locked until the
    transaction ends. Runs in flight never match, whatever their age."""
    query = (
        select(Run.id, Run.flow_id, Run.created_at)
        .where(*_older(Run, tenant, before, after), Run.status.in_(sorted(TERMINAL)))
        .order_by(Run.created_at, Run.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [OldRun(id_, flow_id, Position(created, id_)) for id_, flow_id, created in session.execute(query)]


def delete_runs(session: Session, tenant: Tenant, ids: Sequence[str]) -> int:
    """Delete these runs if they are still finished (they are locked, so they are)."""
    if not ids:
        return 0
    result = session.execute(
        delete(Run)
        .where(*_in_tenant(Run, tenant), Run.id.in_(ids), Run.status.in_(sorted(TERMINAL)))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


def delete_settled_deliveries(
    session: Session, tenant: Tenant, before: int, after: Position | None, limit: int
) -> tuple[int, Position | None]:
    """Delete up to `limit` delivered or given-up alert deliveries created before `before`: how many,
    and where the next batch starts (None: this was the last)."""
    query = (
        select(AlertDelivery.id, AlertDelivery.created_at)
        .where(*_older(AlertDelivery, tenant, before, after), AlertDelivery.status.in_(SETTLED))
        .order_by(AlertDelivery.created_at, AlertDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.execute(query))
    if not rows:
        return 0, None
    result = session.execute(
        delete(AlertDelivery)
        .where(AlertDelivery.id.in_([id_ for id_, _ in rows]), AlertDelivery.status.in_(SETTLED))
        .execution_options(synchronize_session=False)
    )
    last_id, last_created = rows[-1]
    following = Position(last_created, last_id) if len(rows) == limit else None
    return int(getattr(result, "rowcount", 0)), following


def batches_created_between(
    session: Session, tenant: Tenant, since: int, before: int, after: Position | None, limit: int
) -> list[OldBatch]:
    """Committed batches created in `[since, before)`, oldest first: whose diagnostics may go."""
    query = (
        select(Batch.id, Batch.dataset_id, Batch.created_at, Batch.doc[LAKE_ATTEMPT].as_string())
        .where(*_older(Batch, tenant, before, after), Batch.created_at >= since)
        .order_by(Batch.created_at, Batch.id)
        .limit(limit)
    )
    return [
        OldBatch(id_, dataset_id, Position(created, id_), attempt or "")
        for id_, dataset_id, created, attempt in session.execute(query)
    ]


def lake_attempts(session: Session, tenant: Tenant, batch_ids: Collection[str]) -> dict[str, str]:
    """Batch id -> the upload its row committed, for those of these batches that have a row."""
    wanted = sorted(batch_ids)
    found: dict[str, str] = {}
    for start in range(0, len(wanted), IDS_PER_STATEMENT):
        query = select(Batch.id, Batch.doc[LAKE_ATTEMPT].as_string()).where(
            *_in_tenant(Batch, tenant), Batch.id.in_(wanted[start : start + IDS_PER_STATEMENT])
        )
        found.update((id_, attempt or "") for id_, attempt in session.execute(query))
    return found


def in_flight(session: Session, tenant: Tenant, ids: Collection[str]) -> set[str]:
    """Those of these runs that are scheduled or in progress."""
    wanted = sorted(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), IDS_PER_STATEMENT):
        query = select(Run.id).where(
            *_in_tenant(Run, tenant),
            Run.id.in_(wanted[start : start + IDS_PER_STATEMENT]),
            Run.status.in_(IN_FLIGHT),
        )
        found.update(session.scalars(query))
    return found


def _in_tenant(model: type[TenantOwned], tenant: Tenant) -> list[ColumnElement[bool]]:
    return [model.ims_org_id == tenant.org_id, model.sandbox_name == tenant.sandbox_name]


def _older(
    model: type[TenantOwned], tenant: Tenant, before: int, after: Position | None
) -> list[ColumnElement[bool]]:
    clauses = [*_in_tenant(model, tenant), model.created_at < before]
    if after is not None:  # one row-value comparison: an index seek on both databases
        clauses.append(tuple_(model.created_at, model.id) > tuple_(after.created_at, after.id))
    return clauses
