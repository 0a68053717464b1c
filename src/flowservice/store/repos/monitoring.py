"""Reads for the monitoring pages: runs as their typed columns only, never their documents.

A page of 50 dataflows shows the last 20 runs of each; a dataflow's page shows a page of its runs
and a chart of the last 60. Reading the typed columns (status, times, counts) through the
`(org, sandbox, flow_id, created_at, id)` index keeps those pages fast at a million runs; the
run documents (several KB each) are read only on a run's own page.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Row, func, or_, select, tuple_
from sqlalchemy.orm import Session

from flowservice.domain.runs import RunBrief
from flowservice.domain.tenancy import Tenant
from flowservice.store.tables import Run

_COLUMNS = (
    Run.id,
    Run.flow_id,
    Run.status,
    Run.created_at,
    Run.started_at,
    Run.completed_at,
    Run.input_record_count,
    Run.output_record_count,
    Run.failed_record_count,
    Run.input_file_count,
    Run.input_bytes,
    Run.output_bytes,
    Run.retry_of,
    Run.window_start,
    Run.window_end,
)


def _in_tenant(tenant: Tenant) -> list[ColumnElement[bool]]:
    return [Run.ims_org_id == tenant.org_id, Run.sandbox_name == tenant.sandbox_name]


def _brief(row: Row[tuple[object, ...]] | Sequence[object]) -> RunBrief:
    return RunBrief(*row)  # the columns are RunBrief's, in its order


def recent_runs(
    session: Session, tenant: Tenant, flow_ids: Sequence[str], per_flow: int
) -> dict[str, list[RunBrief]]:
    """The newest `per_flow` runs of each flow, newest first: one query, each flow's part read
    through the index in order (a window function numbers the rows per flow)."""
    if not flow_ids:
        return {}
    rank = func.row_number().over(partition_by=Run.flow_id, order_by=(Run.created_at.desc(), Run.id.desc()))
    inner = (
        select(*_COLUMNS, rank.label("rank"))
        .where(*_in_tenant(tenant), Run.flow_id.in_(list(flow_ids)))
        .subquery()
    )
    query = (
        select(*[inner.c[c.key] for c in _COLUMNS])
        .where(inner.c.rank <= per_flow)
        .order_by(inner.c.flow_id, inner.c.created_at.desc(), inner.c.id.desc())
    )
    found: dict[str, list[RunBrief]] = {flow_id: [] for flow_id in flow_ids}
    for row in session.execute(query):
        brief = _brief(tuple(row))
        found[brief.flow_id].append(brief)
    return found


def runs_of_flow(
    session: Session,
    tenant: Tenant,
    flow_id: str,
    *,
    statuses: Sequence[str] = (),
    since: int | None = None,
    until: int | None = None,
    after: tuple[int, str] | None = None,
    limit: int,
) -> tuple[list[RunBrief], tuple[int, str] | None]:
    """A page of the flow's runs, newest first, filtered by status and creation time; and the
    (created_at, id) key to continue after, None on the last page."""
    query = select(*_COLUMNS).where(
        *_in_tenant(tenant),
        Run.flow_id == flow_id,
    )
    if statuses:
        query = query.where(Run.status.in_(list(statuses)))
    if since is not None:
        query = query.where(Run.created_at >= since)
    if until is not None:
        query = query.where(Run.created_at < until)
    if after is not None:
        query = query.where(tuple_(Run.created_at, Run.id) < tuple_(*after))
    rows = [
        _brief(tuple(r))
        for r in session.execute(query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1))
    ]
    following = (rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], following


def in_flight(session: Session, tenant: Tenant, flow_id: str | None = None) -> list[RunBrief]:
    """Runs not yet finished (scheduled or in progress), newest first."""
    query = select(*_COLUMNS).where(
        *_in_tenant(tenant),
        or_(Run.status == "scheduled", Run.status == "inProgress"),
    )
    if flow_id is not None:
        query = query.where(Run.flow_id == flow_id)
    return [_brief(tuple(r)) for r in session.execute(query.order_by(Run.created_at.desc()).limit(200))]


def last_window_end(session: Session, tenant: Tenant, flow_id: str) -> int | None:
    """Where the flow's covered time ends: the latest window end of its runs."""
    query = select(func.max(Run.window_end)).where(*_in_tenant(tenant), Run.flow_id == flow_id)
    value = session.execute(query).scalar_one_or_none()
    return int(value) if value is not None else None
