"""Every sealed value the store holds, for the key rotation: read in primary-key order, a bounded page
at a time, and replaced only if unchanged since it was read.

Sealed values live in two columns: `connections.secrets` (a connection's secret auth params) and
`alert_rules.secret` (a webhook's signing secret). They are read across every tenant, by id (the
primary key's index), so a rotation never scans more than one page per statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from flowservice.store.tables import AlertRule, Connection

Kind = Literal["connections", "alertRules"]
KINDS: tuple[Kind, ...] = ("connections", "alertRules")


@dataclass(frozen=True, slots=True)
class Sealed:
    id: str
    token: str


def _column(kind: Kind) -> tuple[type[Connection] | type[AlertRule], InstrumentedAttribute[str | None]]:
    if kind == "connections":
        return Connection, Connection.secrets
    return AlertRule, AlertRule.secret


def page(session: Session, kind: Kind, after: str, limit: int) -> list[Sealed]:
    """Up to `limit` sealed values of `kind` whose row id sorts after `after` ("" for the first page)."""
    model, column = _column(kind)
    rows = session.execute(
        select(model.id, column)
        .where(model.id > after, column.is_not(None), column != "")
        .order_by(model.id)
        .limit(limit)
    )
    return [Sealed(row_id, token or "") for row_id, token in rows]


def replace(session: Session, kind: Kind, row_id: str, old: str, new: str) -> bool:
    """Store `new` in place of `old`; False if the row changed meanwhile (a PATCH sealed it anew)."""
    model, column = _column(kind)
    result = session.execute(update(model).where(model.id == row_id, column == old).values({column.key: new}))
    return bool(getattr(result, "rowcount", 0))
