"""Creating the runs that schedules call for: one per flow and window, never twice.

A flow row carries its schedule cursor (where the next window starts, when it closes). A tick
takes the enabled flows whose next window has closed, locked (SKIP LOCKED on PostgreSQL, so
several schedulers share the work; SQLite serialises writers), creates one run per flow over
its window (domain/schedule.py: one run catches up any missed slots), and moves the cursor, in
the same transaction. The run's key (flow, window start) is unique in the store, a backstop
should two schedulers ever reach the same flow: the second insert is refused and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flowservice.domain import schedule
from flowservice.domain.tenancy import Tenant
from flowservice.errors import InvalidRequest
from flowservice.services import dispatch, runs
from flowservice.services.context import Services
from flowservice.store.repos import schedules as schedule_repo

log = logging.getLogger("flowservice.scheduler")
BATCH = 500


@dataclass(frozen=True, slots=True)
class Created:
    run_id: str
    flow_id: str
    slot: int  # the scheduled time of the run's window end (epoch ms)


def tick(services: Services, *, limit: int | None = None) -> list[Created]:
    """Create the runs due now (at most `limit` flows, default BATCH); the runs created."""
    created: list[Created] = []
    with services.db.transaction() as session:
        now = services.clock.now_ms()
        new_runs: list[schedule_repo.NewRun] = []
        moves: list[tuple[schedule_repo.DueFlow, schedule.Cursor, str | None]] = []
        for flow in schedule_repo.due_flows(session, now, limit or BATCH):
            try:
                parsed = schedule.parse(flow.schedule_params)
            except InvalidRequest:  # cannot happen for a flow the API accepted; never stop the loop for it
                log.error("flow %s has an invalid schedule; it is not scheduled", flow.id)
                moves.append((flow, schedule.Cursor(flow.cursor.window_start, None), None))
                continue
            firing = schedule.due(parsed, flow.cursor, now)
            if firing is None:
                continue
            tenant = Tenant(flow.org_id, flow.sandbox_name, flow.sandbox_id)
            params = {"windowStartTime": firing.window[0] // 1000, "windowEndTime": firing.window[1] // 1000}
            doc = runs.new_run_document(
                tenant,
                {"id": flow.id, "flowSpec": flow.flow_spec},
                client_id=runs.SYSTEM_ACTOR,
                now=now,
                params=params,
            )
            new_runs.append(schedule_repo.NewRun(tenant, doc, firing.window, firing.key))
            moves.append((flow, firing.after, doc["id"]))
        inserted = schedule_repo.insert_runs(session, new_runs)
        # their jobs, in this transaction and one statement (a no-op for the embedded queue)
        dispatch.enqueue(
            session, services, [(run.doc["id"], 0) for run in new_runs if run.doc["id"] in inserted]
        )
        advances = []
        for flow, cursor, run_id in moves:
            newest = None
            if run_id in inserted:  # a new run is always the flow's newest
                newest = {"id": run_id, "state": "scheduled"}
                created.append(Created(run_id, flow.id, cursor.window_start))
            elif run_id is not None:  # another scheduler made this very run: keep theirs
                log.info("a run of flow %s for this window exists already", flow.id)
            advances.append(schedule_repo.Advance(flow.id, cursor, newest))
        schedule_repo.advance(session, advances)
    for item in created:
        services.run_created(item.run_id)
    return created


def next_due(services: Services) -> int | None:
    """When the earliest enabled flow's next window closes (epoch ms), if any flow is scheduled."""
    with services.db.reader() as session:
        return schedule_repo.earliest_next(session)
