"""The alerts' statements: the rules a run's news concerns, the outbox of deliveries, its claims.

The outbox is a table, so a notification queued in a run's transaction survives any crash after
it; the notifier claims due rows with `FOR UPDATE SKIP LOCKED` (several notifiers share the work)
and pushes their next attempt into the future while it delivers, so a notifier that dies mid-way
only delays a delivery, never loses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flowservice.domain.tenancy import Tenant
from flowservice.store.repos.resources import columns_for
from flowservice.store.tables import AlertDelivery, AlertRule, Run


def enabled_rules(session: Session, tenant: Tenant, kinds: Sequence[str], flow_id: str) -> list[AlertRule]:
    """The tenant's enabled rules of these kinds that watch this flow (or every flow)."""
    query = select(AlertRule).where(
        AlertRule.ims_org_id == tenant.org_id,
        AlertRule.sandbox_name == tenant.sandbox_name,
        AlertRule.enabled.is_(True),
        AlertRule.kind.in_(list(kinds)),
        or_(AlertRule.flow_id.is_(None), AlertRule.flow_id == flow_id),
    )
    return list(session.scalars(query))


def rules_of_kind(session: Session, kind: str) -> list[AlertRule]:
    """Enabled rules of one kind in every tenant (the delay sweep's)."""
    return list(session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True), AlertRule.kind == kind)))


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(AlertDelivery).on_conflict_do_nothing(
            index_elements=[AlertDelivery.rule_id, AlertDelivery.dedupe_key]
        )
    return sqlite.insert(AlertDelivery).on_conflict_do_nothing(
        index_elements=[AlertDelivery.rule_id, AlertDelivery.dedupe_key]
    )


def queue(session: Session, tenant: Tenant, docs: Sequence[dict[str, Any]]) -> None:
    """Add deliveries to the outbox; one that exists already (same rule and key) is kept as it is."""
    if not docs:
        return
    rows = [
        {
            "id": doc["id"],
            "ims_org_id": tenant.org_id,
            "sandbox_name": tenant.sandbox_name,
            "doc": doc,
            **columns_for(AlertDelivery, doc),
        }
        for doc in docs
    ]
    conn = session.connection()
    conn.execute(_insert_ignoring_duplicates(conn.dialect.name), rows)


def recent_outputs(session: Session, tenant: Tenant, flow_id: str, before_run: str, limit: int) -> list[int]:
    """Records ingested by the flow's latest successful runs other than `before_run`, newest first."""
    query = (
        select(Run.output_record_count)
        .where(
            Run.ims_org_id == tenant.org_id,
            Run.sandbox_name == tenant.sandbox_name,
            Run.flow_id == flow_id,
            Run.status == "success",
            Run.id != before_run,
            Run.output_record_count.is_not(None),
            Run.output_record_count >= 0,
        )
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(limit)
    )
    return [v for v in session.scalars(query) if v is not None]


def runs_in_progress_since(session: Session, started_before: int, limit: int) -> list[Run]:
    """Runs still in progress that started before the given time, in every tenant."""
    query = (
        select(Run)
        .where(Run.status == "inProgress", Run.started_at.is_not(None), Run.started_at < started_before)
        .order_by(Run.started_at)
        .limit(limit)
    )
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery: dict[str, Any]  # the delivery's document
    org_id: str
    sandbox_name: str
    url: str | None  # None: the rule is gone
    sealed_secret: str | None


def claim_due(session: Session, now: int, limit: int, hold_ms: int) -> list[Claimed]:
    """Due pending deliveries, held for `hold_ms` (their next attempt moves past the delivery)."""
    query = (
        select(AlertDelivery)
        .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
        .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    deliveries = list(session.scalars(query))
    if not deliveries:
        return []
    rules = {
        r.id: r
        for r in session.scalars(select(AlertRule).where(AlertRule.id.in_({d.rule_id for d in deliveries})))
    }
    claimed = []
    for delivery in deliveries:
        delivery.next_attempt_at = now + hold_ms
        rule = rules.get(delivery.rule_id)
        url = str(((rule.doc.get("webhook") or {}).get("url")) or "") if rule is not None else None
        claimed.append(
            Claimed(
                dict(delivery.doc),
                delivery.ims_org_id,
                delivery.sandbox_name,
                url,
                rule.secret if rule is not None else None,
            )
        )
    session.flush()
    return claimed


def save(session: Session, doc: dict[str, Any]) -> None:
    """Write a delivery's new state (its document and the columns derived from it)."""
    session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id == doc["id"])
        .values(doc=doc, **columns_for(AlertDelivery, doc))
        .execution_options(synchronize_session=False)
    )


def earliest_due(session: Session) -> int | None:
    value = session.scalar(
        select(AlertDelivery.next_attempt_at)
        .where(AlertDelivery.status == "pending")
        .order_by(AlertDelivery.next_attempt_at)
        .limit(1)
    )
    return int(value) if value is not None else None
