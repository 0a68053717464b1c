"""Recording a run's life: created, started, each activity reported, finished.

These are the functions the engine calls (and the tests, which never write run rows by hand).
Every change goes through the transition table of `domain/runs.py`, recomputes the run-level
metrics from the activities, renews the etag, and keeps the flow's `lastRunDetails` in step with
its newest run, all in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from flowservice.domain import etags
from flowservice.domain import runs as model
from flowservice.domain.runs import Activity, RunError
from flowservice.domain.tenancy import Tenant
from flowservice.errors import InvalidRequest, NotFound, Transient
from flowservice.services import dispatch, rollups, run_hooks
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos
from flowservice.store.repos import runs as run_repo
from flowservice.store.tables import Flow, Run

SYSTEM_ACTOR = "flowservice"  # updatedBy / updatedClient of changes the service makes by itself


class LeaseLost(Transient):
    """This worker's claim on the run ended (its lease expired and another worker claimed it).

    Fenced writes raise it instead of writing, so a paused or partitioned worker cannot change a
    run that someone else now executes.
    """


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker's hold on a run: valid while `epoch` is the run's lease epoch."""

    run_id: str
    tenant: Tenant
    flow_id: str
    epoch: int
    owner: str
    attempt: int
    created_at: int
    window: tuple[int, int] | None


@dataclass(slots=True)
class RunState:
    """A run as the engine sees it, rebuilt from (and written back to) its wire document."""

    status: str
    started_at: int | None = None
    completed_at: int | None = None
    activities: list[Activity] = field(default_factory=list)
    errors: list[RunError] = field(default_factory=list)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> RunState:
        metrics = doc.get("metrics") or {}
        return cls(
            status=(metrics.get("statusSummary") or {}).get("status", "scheduled"),
            started_at=(metrics.get("durationSummary") or {}).get("startedAtUTC"),
            completed_at=(metrics.get("durationSummary") or {}).get("completedAtUTC"),
            activities=[Activity.from_wire(a) for a in doc.get("activities") or []],
            errors=[RunError.from_wire(e) for e in (metrics.get("statusSummary") or {}).get("errors") or []],
        )

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        updated = dict(doc)
        updated["state"] = self.status
        updated["metrics"] = model.run_metrics(
            self.activities,
            self.status,
            started_at=self.started_at,
            completed_at=self.completed_at,
            errors=self.errors,
        )
        updated["activities"] = [a.wire() for a in self.activities]
        return updated


def new_run_document(
    tenant: Tenant,
    flow: dict[str, Any],
    *,
    client_id: str,
    now: int,
    params: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": run_id or str(uuid.uuid4()),
        "createdAt": now,
        "updatedAt": now,
        "createdBy": client_id,
        "updatedBy": client_id,
        "createdClient": client_id,
        "updatedClient": client_id,
        "sandboxId": tenant.sandbox_id,
        "sandboxName": tenant.sandbox_name,
        "imsOrgId": tenant.org_id,
        "flowId": flow["id"],
        "flowSpec": flow.get("flowSpec"),
        "etag": etags.new_etag(now),
    }
    if params is not None:
        doc["params"] = params
    return RunState("scheduled").apply(doc)


def create_run(
    services: Services,
    tenant: Tenant,
    flow_id: str,
    *,
    client_id: str = SYSTEM_ACTOR,
    params: dict[str, Any] | None = None,
    window: tuple[int, int] | None = None,
    retry_of: str | None = None,
) -> dict[str, Any]:
    """A new `scheduled` run of the flow over `window` (ms), now; it becomes the flow's newest run.
    The run paths of users (on demand, re-trigger); the scheduler and retries use `insert_run`."""
    with services.db.transaction() as session:
        flow = repos.flows(session, tenant).get(flow_id, lock=True)
        if flow is None:
            raise NotFound("flows", flow_id)
        now = services.clock.now_ms()
        doc = insert_run(
            session,
            tenant,
            flow,
            services=services,
            now=now,
            client_id=client_id,
            params=params,
            window=window,
            retry_of=retry_of,
        )
    services.run_created(doc["id"])
    return doc


def insert_run(
    session: Session,
    tenant: Tenant,
    flow: Flow,
    *,
    services: Services,
    now: int,
    client_id: str = SYSTEM_ACTOR,
    params: dict[str, Any] | None = None,
    window: tuple[int, int] | None = None,
    retry_of: str | None = None,
    retry_number: int = 0,
    ready_at: int = 0,
    run_key: str | None = None,
) -> dict[str, Any]:
    """Insert a scheduled run in the caller's transaction (the flow row held), with its job when runs
    are dispatched through PostgreSQL; no in-process wake-up is sent (that follows the commit)."""
    doc = new_run_document(tenant, flow.doc, client_id=client_id, now=now, params=params)
    if retry_of is not None:
        doc["parentFlowRunId"] = retry_of  # Adobe's field for a run made from another run
    repos.runs(session, tenant).insert(
        doc,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        retry_of=retry_of,
        retry_number=retry_number,
        ready_at=ready_at,
        run_key=run_key,
    )
    dispatch.enqueue(session, services, [(doc["id"], ready_at)])
    details = {"id": doc["id"], "state": "scheduled"}  # a new run is always the flow's newest
    if flow.doc.get("lastRunDetails") != details:
        run_repo.set_last_run_details(session, flow, details)
    return doc


def claim_next(services: Services, owner: str, *, lease_ms: int) -> Claim | None:
    """Claim the oldest runnable run of any tenant: scheduled and due, or in progress with an expired lease.

    The claim is a conditional write under a row lock (SKIP LOCKED on PostgreSQL), so two workers
    never hold one run; every claim renews the lease epoch that fences the previous holder.
    """
    with services.db.transaction() as session:
        now = services.clock.now_ms()
        for row in run_repo.claimable(session, now, limit=8):
            claim = _take(session, row, owner, lease_ms=lease_ms, now=now)
            if claim is not None:
                return claim
    return None


def claim(services: Services, run_id: str, owner: str, *, lease_ms: int) -> Claim | None:
    """Claim the run a queued job names, under the same lease and epoch as `claim_next`.

    None when there is nothing to do: the run is gone or finished, or another worker holds it under
    a live lease (a duplicate or late job). A job that came before the run is due (the clocks of the
    database and of the machine that made the run differ) is queued again for then.
    """
    with services.db.transaction() as session:
        now = services.clock.now_ms()
        row = run_repo.locked(session, run_id)
        if row is None:
            return None
        if row.status == "scheduled" and row.ready_at > now:
            dispatch.enqueue(session, services, [(row.id, row.ready_at)])
            return None
        return _take(session, row, owner, lease_ms=lease_ms, now=now)


def release(services: Services, claim: Claim) -> bool:
    """Give a claimed run back (a worker shutting down): the lease ends now and the epoch moves on,
    so this worker can no longer write to the run, and, dispatched through PostgreSQL, a new job is
    queued in the same transaction. False if the claim had ended already."""
    with services.db.transaction() as session:
        released = run_repo.release_lease(session, claim.run_id, claim.epoch)
        if released:
            dispatch.enqueue(session, services, [(claim.run_id, 0)])
    if released:
        services.run_created(claim.run_id)  # in-process workers may take it at once
    return released


def _take(session: Session, row: Run, owner: str, *, lease_ms: int, now: int) -> Claim | None:
    """Claim a locked run if it is runnable: scheduled, or in progress under an expired lease."""
    tenant = Tenant(row.ims_org_id, row.sandbox_name, str(row.doc.get("sandboxId", "")))
    state = RunState.of(row.doc)
    before = state.status  # the row object is refreshed by the write below
    if state.status == "scheduled":
        _move(state, "inProgress")
        state.started_at = state.started_at or now
    elif not (state.status == "inProgress" and (row.lease_expires_at or 0) < now):
        return None  # finished, or held under a live lease
    doc = state.apply(row.doc)
    doc.update(updatedAt=now, updatedBy=SYSTEM_ACTOR, updatedClient=SYSTEM_ACTOR, etag=etags.new_etag(now))
    epoch, attempt = row.lease_epoch + 1, row.attempt + 1  # before the write refreshes the row
    won = repos.runs(session, tenant).replace(
        row.id,
        doc,
        expected_etag=row.etag,
        lease_owner=owner,
        lease_expires_at=now + lease_ms,
        lease_epoch=epoch,
        attempt=attempt,
    )
    if not won:
        return None
    _sync_last_run(session, tenant, row.flow_id)
    run_hooks.on_change(session, tenant, before, doc, now)
    window = (
        (row.window_start, row.window_end)
        if row.window_start is not None and row.window_end is not None
        else None
    )
    return Claim(row.id, tenant, row.flow_id, epoch, owner, attempt, row.created_at, window)


def renew_lease(services: Services, claim: Claim, *, lease_ms: int) -> bool:
    """Extend the lease if it is still ours; False means another worker has the run now."""
    with services.db.transaction() as session:
        return run_repo.renew_lease(session, claim.run_id, claim.epoch, services.clock.now_ms() + lease_ms)


def start_run(services: Services, tenant: Tenant, run_id: str) -> dict[str, Any]:
    def start(state: RunState, now: int) -> None:
        _move(state, "inProgress")
        state.started_at = state.started_at or now

    return _change(services, tenant, run_id, start)


def record_activity(
    services: Services, tenant: Tenant, run_id: str, activity: Activity, *, fence: Claim | None = None
) -> dict[str, Any]:
    """Add an activity, or replace the one with the same id (progress reports of a running activity)."""

    def record(state: RunState, now: int) -> None:
        if state.status in model.TERMINAL:
            raise InvalidRequest("1407", f"The run {run_id} is {state.status}; its activities are final.")
        activity.updated_at = now
        others = [a for a in state.activities if a.id != activity.id]
        position = next((i for i, a in enumerate(state.activities) if a.id == activity.id), len(others))
        others.insert(position, activity)
        state.activities = others

    return _change(services, tenant, run_id, record, fence)


def finish_run(
    services: Services,
    tenant: Tenant,
    run_id: str,
    status: str,
    errors: Iterable[RunError] = (),
    *,
    fence: Claim | None = None,
    retrying: bool = False,
) -> dict[str, Any]:
    """End the run: `success`, `failed` or `cancelled`, with its run-level errors. `retrying`: an
    automatic retry was made (failure alerts may wait for it)."""
    if status not in model.TERMINAL:
        raise ValueError(f"{status!r} is not a final status")

    def finish(state: RunState, now: int) -> None:
        _move(state, status)
        state.completed_at = now
        state.errors = list(errors)

    return _change(services, tenant, run_id, finish, fence, retrying=retrying)


def get_run(services: Services, tenant: Tenant, run_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        row = repos.runs(session, tenant).get(run_id)
        if row is None:
            raise NotFound("runs", run_id)
        return dict(row.doc)


def import_runs(
    services: Services, tenant: Tenant, docs: list[dict[str, Any]], *, sync_flows: bool = True
) -> None:
    """Bulk path (benchmarks, restores): insert run documents; `sync_flows=False` defers the
    flows' lastRunDetails to one `sync_last_runs` call after the last batch."""
    with services.db.transaction() as session:
        run_repo.insert_many(session, tenant, docs)
        rollups.record_finished_runs(session, tenant, docs, default_time=services.clock.now_ms())
        if sync_flows:
            for flow_id in sorted({d["flowId"] for d in docs}):
                _sync_last_run(session, tenant, flow_id)


def sync_last_runs(services: Services, tenant: Tenant, flow_ids: Iterable[str]) -> None:
    with services.db.transaction() as session:
        for flow_id in flow_ids:
            _sync_last_run(session, tenant, flow_id)


def _move(state: RunState, following: str) -> None:
    if not model.can_move(state.status, following):
        raise InvalidRequest("1407", f"A run cannot go from {state.status} to {following}.")
    state.status = following


def _change(
    services: Services,
    tenant: Tenant,
    run_id: str,
    change: Callable[[RunState, int], None],
    fence: Claim | None = None,
    *,
    retrying: bool = False,
) -> dict[str, Any]:
    with services.db.transaction() as session:
        runs = repos.runs(session, tenant)
        row = runs.get(run_id, lock=True)
        if row is None:
            raise NotFound("runs", run_id)
        if fence is not None:
            check_fence(row, fence)
        now = services.clock.now_ms()
        state = RunState.of(row.doc)
        before = state.status
        change(state, now)
        doc = state.apply(row.doc)
        doc.update(
            updatedAt=now, updatedBy=SYSTEM_ACTOR, updatedClient=SYSTEM_ACTOR, etag=etags.new_etag(now)
        )
        if not runs.replace(run_id, doc, expected_etag=row.etag):
            raise RuntimeError(f"run {run_id} changed under us")  # cannot happen: the row is locked
        _sync_last_run(session, tenant, row.flow_id)
        run_hooks.on_change(session, tenant, before, doc, now, retrying=retrying)
    return doc


def check_fence(row: Run, fence: Claim) -> None:
    if row.lease_epoch != fence.epoch or row.status != "inProgress":
        raise LeaseLost(f"run {row.id} is no longer held by {fence.owner} (epoch {fence.epoch})")


def _sync_last_run(session: Session, tenant: Tenant, flow_id: str) -> None:
    """`flows[].lastRunDetails` mirrors the flow's newest run, and is absent once retention has
    purged every run of the flow (it would name a run that is gone). Not a client write: the etag stays."""
    flow = repos.flows(session, tenant).get(flow_id, lock=True)  # one writer of a flow's details at a time
    newest: Run | None = run_repo.newest_of_flow(session, tenant, flow_id)
    if flow is None:
        return
    if newest is None:
        if "lastRunDetails" in flow.doc:
            run_repo.set_last_run_details(session, flow, None)
        return
    metrics = newest.doc.get("metrics") or {}
    duration = metrics.get("durationSummary") or {}
    details: dict[str, Any] = {"id": newest.id, "state": newest.status}
    for key in ("startedAtUTC", "completedAtUTC"):
        if key in duration:
            details[key] = duration[key]
    if flow.doc.get("lastRunDetails") != details:
        run_repo.set_last_run_details(session, flow, details)
