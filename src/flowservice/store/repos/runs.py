"""Run-specific data functions: the newest run of a flow, the bulk insert, the flow's lastRunDetails."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from flowservice.domain.tenancy import Tenant
from flowservice.store.repos.resources import columns_for
from flowservice.store.tables import Flow, Run

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


def set_last_run_details(session: Session, flow: Flow, details: dict[str, Any]) -> None:
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
