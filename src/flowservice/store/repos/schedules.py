"""The scheduler's statements: due flows of every tenant, their runs and cursors, in bulk.

A tick may create thousands of runs at one slot, so these are set-based (one SELECT, one
multi-row INSERT, one executemany UPDATE per batch) rather than an ORM flush per run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Insert, String, bindparam, cast, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowservice.domain.schedule import Cursor
from flowservice.domain.tenancy import Tenant
from flowservice.store.repos.resources import columns_for
from flowservice.store.tables import Flow, Run

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DueFlow:
    """What a tick needs of a flow: the parts of its document a run copies, not all of it."""

    id: str
    org_id: str
    sandbox_name: str
    sandbox_id: str
    flow_spec: Any
    schedule_params: Any
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class NewRun:
    tenant: Tenant
    doc: dict[str, Any]
    window: tuple[int, int]
    run_key: str


@dataclass(frozen=True, slots=True)
class Advance:
    flow_id: str
    cursor: Cursor
    newest_run: dict[str, Any] | None  # the flow's new lastRunDetails, or None to keep it


def due_flows(session: Session, now: int, limit: int) -> list[DueFlow]:
    """Enabled flows whose next window has closed, earliest first, locked for this transaction
    (SKIP LOCKED: schedulers running at once share the due flows instead of waiting on each other)."""
    query = (
        select(
            Flow.id,
            Flow.ims_org_id,
            Flow.sandbox_name,
            Flow.doc["sandboxId"].as_string(),
            Flow.doc["flowSpec"],
            Flow.doc["scheduleParams"],
            Flow.schedule_window_start,
            Flow.schedule_next_at,
        )
        .where(Flow.state == "enabled", Flow.schedule_next_at.is_not(None), Flow.schedule_next_at <= now)
        .order_by(Flow.schedule_next_at, Flow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        DueFlow(id_, org, sandbox, sandbox_id or "", spec, params, Cursor(start or 0, next_at))
        for id_, org, sandbox, sandbox_id, spec, params, start, next_at in session.execute(query)
    ]


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(Run).on_conflict_do_nothing(index_elements=[Run.flow_id, Run.run_key])
    if dialect == "sqlite":
        return sqlite.insert(Run).on_conflict_do_nothing(index_elements=[Run.flow_id, Run.run_key])
    raise NotImplementedError(f"no conflict-ignoring insert for {dialect}")


def insert_runs(session: Session, runs: Sequence[NewRun]) -> set[str]:
    """Insert the runs; the ids of those inserted. A run whose (flow, key) exists already is skipped:
    another scheduler made it, and that run stands."""
    if not runs:
        return set()
    rows = [
        {
            "id": run.doc["id"],
            "ims_org_id": run.tenant.org_id,
            "sandbox_name": run.tenant.sandbox_name,
            "doc": run.doc,
            **columns_for(Run, run.doc),
            "window_start": run.window[0],
            "window_end": run.window[1],
            "run_key": run.run_key,
        }
        for run in runs
    ]
    conn = session.connection()
    # executemany without RETURNING: psycopg pipelines it; asking which rows landed is one more query
    conn.execute(_insert_ignoring_duplicates(conn.dialect.name), rows)
    wanted = [row["id"] for row in rows]
    return set(conn.execute(select(Run.id).where(Run.id.in_(wanted))).scalars())


def _with_newest_run(dialect: str) -> Any:
    """The flow document with lastRunDetails replaced, computed by the database (no round trip of
    the whole document through Python)."""
    details = bindparam("details", type_=String())
    if dialect == "postgresql":
        return func.jsonb_set(Flow.doc, literal_column("ARRAY['lastRunDetails']"), cast(details, JSONB))
    return func.json_set(Flow.doc, "$.lastRunDetails", func.json(details))


def advance(session: Session, moves: Sequence[Advance]) -> None:
    """Move each flow's cursor (and set its newest run where given), in two executemany UPDATEs."""
    conn = session.connection()
    cursor_values: dict[str, Any] = {
        "schedule_window_start": bindparam("window_start"),
        "schedule_next_at": bindparam("next_at"),
    }
    keep = [m for m in moves if m.newest_run is None]
    newest = [m for m in moves if m.newest_run is not None]
    if keep:
        conn.execute(
            update(Flow).where(Flow.id == bindparam("flow_id")).values(**cursor_values),
            [
                {"flow_id": m.flow_id, "window_start": m.cursor.window_start, "next_at": m.cursor.next_fire}
                for m in keep
            ],
        )
    if newest:
        conn.execute(
            update(Flow)
            .where(Flow.id == bindparam("flow_id"))
            .values(**cursor_values, doc=_with_newest_run(conn.dialect.name)),
            [
                {
                    "flow_id": m.flow_id,
                    "window_start": m.cursor.window_start,
                    "next_at": m.cursor.next_fire,
                    "details": json.dumps(m.newest_run),
                }
                for m in newest
            ],
        )


def earliest_next(session: Session) -> int | None:
    query = select(func.min(Flow.schedule_next_at)).where(Flow.state == "enabled")
    value = session.execute(query).scalar_one_or_none()
    return int(value) if value is not None else None


def unless_exists(session: Session, insert: Callable[[], T]) -> T | None:
    """Run `insert` in a savepoint; None when a unique key says the row exists already."""
    try:
        with session.begin_nested():
            return insert()
    except IntegrityError:
        return None
