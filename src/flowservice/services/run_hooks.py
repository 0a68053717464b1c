"""What a run's change of status sets off, in the same transaction as the change itself.

Alerts are queued in the store's outbox and the rollups and totals are added to before the change
commits, so a crash can neither lose a notification nor count a run twice (or not at all).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from flowservice.domain import runs as model
from flowservice.domain.tenancy import Tenant
from flowservice.services import alerts, rollups


def on_change(
    session: Session,
    tenant: Tenant,
    before: str,
    doc: dict[str, Any],
    now: int,
    *,
    retrying: bool = False,
) -> None:
    """`before` is the run's status before the change; `retrying`: a retry of a failed run was made."""
    after = str(doc.get("state", ""))
    if after == before:
        return
    if before == "scheduled" and after == "inProgress":
        alerts.on_run_started(session, tenant, doc, now)
    elif after in model.TERMINAL:
        rollups.record_finished_run(session, tenant, doc, now)
        alerts.on_run_finished(session, tenant, doc, now, retrying=retrying)
