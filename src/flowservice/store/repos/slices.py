"""The slices of large runs (`run_slices`), as services/slices.py uses them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from flowservice.store.tables import Run, RunSlice


def planned(session: Session, run_id: str) -> bool:
    return session.scalar(select(RunSlice.idx).where(RunSlice.run_id == run_id).limit(1)) is not None


def of_run(session: Session, run_id: str) -> list[RunSlice]:
    return list(session.scalars(select(RunSlice).where(RunSlice.run_id == run_id).order_by(RunSlice.idx)))


def claimable(
    session: Session, now: int, *, run_id: str | None = None, index: int | None = None
) -> tuple[RunSlice, Run] | None:
    """A slice waiting, or held under an expired lease, of a run in progress; locked (SKIP LOCKED)."""
    query = (
        select(RunSlice, Run)
        .join(Run, Run.id == RunSlice.run_id)
        .where(
            Run.status == "inProgress",
            or_(RunSlice.status == "todo", and_(RunSlice.status == "doing", RunSlice.lease_expires_at < now)),
        )
        .order_by(RunSlice.run_id, RunSlice.idx)
        .limit(1)
        .with_for_update(skip_locked=True, of=RunSlice)
    )
    if run_id is not None:
        query = query.where(RunSlice.run_id == run_id)
    if index is not None:
        query = query.where(RunSlice.idx == index)
    found = session.execute(query).first()
    return None if found is None else (found[0], found[1])


def update_held(session: Session, run_id: str, index: int, epoch: int, values: dict[str, Any]) -> bool:
    """Change a slice still held under `epoch`; False when the holder lost it."""
    changed = session.execute(
        update(RunSlice)
        .where(
            RunSlice.run_id == run_id,
            RunSlice.idx == index,
            RunSlice.lease_epoch == epoch,
            RunSlice.status == "doing",
        )
        .values(**values)
    )
    return bool(getattr(changed, "rowcount", 0))
