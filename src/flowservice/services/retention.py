"""Retention: what the service keeps about the past, and for how long.

Finished runs (and the alert deliveries that are settled) go after `retention_run_days`, batches'
failed-record diagnostics after `retention_diagnostics_days`, and run staging a crash left behind
after a day, as do uploads of an S3 lake that no batch row names (an attempt that crashed or was
fenced out between its upload and its commit). What a run produced stays: committed batches (their rows, parts and input manifest) and
the ingestion rollups and flow totals that metrics are answered from. The scheduler process calls
`purge` every `retention_interval_seconds` (see `due`).

Rows go one tenant and one bounded batch per transaction along the tenant's created-at index, so a
purge never locks a table; rows another purge holds are skipped, and deleting what is gone already
is a no-op, so purges may run in several processes at once and again after a crash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flowservice.domain.tenancy import Tenant
from flowservice.engine.lake import BatchPlace, LakePathError, PendingUpload
from flowservice.services import runs
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store.repos import retention as repo

log = logging.getLogger("flowservice.retention")
DAY_MS = 86_400_000
STAGING_AGE_MS = DAY_MS  # a normal run discards its staging as it ends: a day-old leftover is a crash's
UPLOAD_AGE_MS = DAY_MS  # likewise an attempt settles its upload within seconds of making it


@dataclass(frozen=True, slots=True)
class PurgeReport:
    runs_deleted: int = 0
    alert_deliveries_deleted: int = 0
    diagnostics_removed: int = 0  # batches whose diagnostics were removed
    staging_removed: int = 0  # runs whose leftover staging was removed
    uploads_removed: int = 0  # batch uploads to an S3 lake that no batch row names
    bytes_freed: int = 0


def due(last_run_ms: int | None, now_ms: int, settings: Settings) -> bool:
    """Whether a purge is due, `last_run_ms` being when the previous one started (None: never)."""
    return last_run_ms is None or now_ms - last_run_ms >= settings.retention_interval_seconds * 1000


def purge(services: Services, now_ms: int | None = None, *, batch: int = 1000) -> PurgeReport:
    """Purge everything older than its limit at `now_ms` (default: the clock), `batch` rows per
    transaction."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    now = services.clock.now_ms() if now_ms is None else now_ms
    settings = services.settings
    runs_before = now - settings.retention_run_days * DAY_MS
    with services.db.reader() as session:
        tenants = repo.tenants(session)
    runs_deleted = deliveries_deleted = 0
    for tenant in tenants:
        runs_deleted += _purge_runs(services, tenant, runs_before, batch)
        deliveries_deleted += _purge_deliveries(services, tenant, runs_before, batch)
    diagnostics, diagnostics_bytes = _purge_diagnostics(
        services, tenants, now - settings.retention_diagnostics_days * DAY_MS, batch
    )
    staging, staging_bytes = _purge_staging(services, tenants, now - STAGING_AGE_MS)
    uploads, uploads_bytes = _purge_uploads(services, tenants, now - UPLOAD_AGE_MS)
    report = PurgeReport(
        runs_deleted=runs_deleted,
        alert_deliveries_deleted=deliveries_deleted,
        diagnostics_removed=diagnostics,
        staging_removed=staging,
        uploads_removed=uploads,
        bytes_freed=diagnostics_bytes + staging_bytes + uploads_bytes,
    )
    if report != PurgeReport():
        log.info("retention purge: %s", report)
    return report


def _purge_runs(services: Services, tenant: Tenant, before: int, batch: int) -> int:
    deleted = 0
    after: repo.Position | None = None
    while True:
        with services.db.transaction() as session:
            old = repo.lock_finished_runs(session, tenant, before, after, batch)
            deleted += repo.delete_runs(session, tenant, [r.id for r in old])
            # flows in one order, so purges running side by side cannot deadlock on them
            for flow_id in sorted({r.flow_id for r in old}):
                runs._sync_last_run(session, tenant, flow_id)  # the flow's newest run, or none
        if len(old) < batch:
            return deleted
        after = old[-1].position


def _purge_deliveries(services: Services, tenant: Tenant, before: int, batch: int) -> int:
    deleted = 0
    after: repo.Position | None = None
    while True:
        with services.db.transaction() as session:
            count, after = repo.delete_settled_deliveries(session, tenant, before, after, batch)
        deleted += count
        if after is None:
            return deleted


def _purge_diagnostics(services: Services, tenants: list[Tenant], before: int, batch: int) -> tuple[int, int]:
    """Diagnostics of the batches created in `[mark, before)`: the lake's mark says where the
    previous purge stopped, so each batch is looked at about once, not once per purge forever."""
    since = services.lake.diagnostics_purged_before()
    if before <= since:
        return 0, 0
    removed = freed = 0
    complete = True
    for tenant in tenants:
        after: repo.Position | None = None
        while True:
            with services.db.reader() as session:
                found = repo.batches_created_between(session, tenant, since, before, after, batch)
            for old in found:
                place = BatchPlace(
                    tenant.org_id, tenant.sandbox_name, old.dataset_id, old.id, old.lake_attempt
                )
                try:
                    size = services.lake.remove_diagnostics(place)
                except (LakePathError, OSError):
                    log.exception("diagnostics of batch %s could not be removed", old.id)
                    complete = False  # keep the mark here, so the next purge tries again
                    continue
                if size is not None:
                    removed, freed = removed + 1, freed + size
            if len(found) < batch:
                break
            after = found[-1].position
    if complete and services.lake.diagnostics_purged_before() < before:
        services.lake.set_diagnostics_purged_before(before)
    return removed, freed


def _purge_staging(services: Services, tenants: list[Tenant], before: int) -> tuple[int, int]:
    """Run folders not changed since `before` whose run is over (or gone); runs in flight keep theirs,
    however long they take."""
    removed = freed = 0
    for tenant in tenants:
        stale = services.lake.stale_runs(tenant.org_id, tenant.sandbox_name, before)
        if not stale:
            continue
        with services.db.reader() as session:
            running = repo.in_flight(session, tenant, stale)
        for run_id in stale:
            if run_id in running:
                continue
            try:
                size = services.lake.remove_run_staging(tenant.org_id, tenant.sandbox_name, run_id)
            except (LakePathError, OSError):
                log.exception("staging of run %s could not be removed", run_id)
                continue
            if size is not None:
                removed, freed = removed + 1, freed + size
    return removed, freed


def _purge_uploads(services: Services, tenants: list[Tenant], before: int) -> tuple[int, int]:
    """Unsettled uploads begun before `before` whose run is over (or gone): the batch row says
    whether one is the batch (then only its marker goes) or garbage (then its files go too). A run
    that is over can commit no more, so the answer cannot change after it is read."""
    removed = freed = 0
    for tenant in tenants:
        pending = services.lake.pending_uploads(tenant.org_id, tenant.sandbox_name, before)
        if not pending:
            continue
        with services.db.reader() as session:
            running = repo.in_flight(session, tenant, {p.run_id for p in pending})
            recorded = repo.lake_attempts(session, tenant, {p.place.batch_id for p in pending})
        for upload in pending:
            if upload.run_id in running:
                continue
            committed = recorded.get(upload.place.batch_id) == upload.place.attempt
            size = _remove_upload(services, upload, committed=committed)
            if size is not None and not committed:
                removed, freed = removed + 1, freed + size
    return removed, freed


def _remove_upload(services: Services, upload: PendingUpload, *, committed: bool) -> int | None:
    try:
        return services.lake.remove_upload(upload, committed=committed)
    except (LakePathError, OSError):
        log.exception(
            "upload %s of batch %s could not be removed", upload.place.attempt, upload.place.batch_id
        )
        return None
