"""Slices of a large run: the store's side (plan, claim, renew, finish, fail).

After its Copy Activity, a run with more than `slice_files` staged files or `slice_bytes` staged
bytes is planned into slices: groups of files balanced by bytes, one `run_slices` row each, inserted
in a transaction fenced by the run's lease epoch (and, dispatched through PostgreSQL, a job per
slice in the same transaction). Any worker claims a slice as it claims a run: a row lock (SKIP
LOCKED), a lease of the slice's own and an epoch bumped per claim, so a worker that lost a slice
cannot record it. The run's coordinator (the worker holding the run) works on its slices too, and
once all are done it commits them as one batch (services/execution.py).
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowservice.connectors.base import SourceObject
from flowservice.domain.tenancy import Tenant
from flowservice.engine.copy import StagedFile
from flowservice.engine.lake import LocalLake
from flowservice.engine.promotion import FileOutcome, Result
from flowservice.services import runs
from flowservice.services.context import Services
from flowservice.services.runs import Claim, LeaseLost
from flowservice.store.repos import jobs as job_repo
from flowservice.store.repos import resources as repos
from flowservice.store.repos import slices as slice_repo
from flowservice.store.tables import RunSlice

log = logging.getLogger("flowservice.engine")
ATTEMPTS = 3  # a slice failing with an error is tried this often before its run fails
TASK = "flowservice.execute_slice"  # procrastinate task: arguments `run_id`, `index`


@dataclass(frozen=True, slots=True)
class SliceClaim:
    """A worker's hold on one slice: valid while `epoch` is the slice's lease epoch."""

    run_id: str
    index: int
    epoch: int
    attempts: int
    owner: str
    tenant: Tenant
    flow_id: str
    files: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SliceState:
    index: int
    status: str
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    files: list[dict[str, Any]]


def wanted(services: Services, staged: list[StagedFile]) -> bool:
    """Slice when the run is large, and every worker reads the same staging (a local, shared lake;
    an S3 lake stages on the worker's own disk)."""
    if not isinstance(services.lake, LocalLake) or len(staged) < 2:
        return False
    settings = services.settings
    return len(staged) > settings.slice_files or sum(f.size for f in staged) > settings.slice_bytes


def groups(staged: list[StagedFile], *, max_files: int, max_bytes: int) -> list[list[int]]:
    """Indexes of the staged files per slice: as many slices as the limits ask, balanced by bytes
    (largest first onto the lightest slice), each slice's files in staging order."""
    total = sum(f.size for f in staged)
    count = max(-(-len(staged) // max_files), -(-total // max_bytes), 1)
    count = min(count, len(staged))
    heap = [(0, slot) for slot in range(count)]
    members: list[list[int]] = [[] for _ in range(count)]
    for index in sorted(range(len(staged)), key=lambda i: -staged[i].size):
        load, slot = heapq.heappop(heap)
        members[slot].append(index)
        heapq.heappush(heap, (load + staged[index].size, slot))
    return [sorted(m) for m in members if m]


def plan(services: Services, claim: Claim, staged: list[StagedFile], staging: Path) -> None:
    """Record the run's slices (fenced by the run's epoch), with a job per slice when dispatched
    through PostgreSQL; a plan made by an earlier attempt of the run is kept as it is."""
    settings = services.settings
    members = groups(staged, max_files=settings.slice_files, max_bytes=settings.slice_bytes)
    with services.db.transaction() as session:
        row = repos.runs(session, claim.tenant).get(claim.run_id, lock=True)
        if row is None:
            raise LeaseLost(f"run {claim.run_id} disappeared")
        runs.check_fence(row, claim)
        if slice_repo.planned(session, claim.run_id):
            return
        now = services.clock.now_ms()
        for index, member in enumerate(members):
            files = [_file_doc(staged[i], staging) for i in member]
            session.add(
                RunSlice(
                    run_id=claim.run_id,
                    idx=index,
                    files=files,
                    bytes=sum(staged[i].size for i in member),
                    status="todo",
                    lease_epoch=0,
                    attempts=0,
                    updated_at=now,
                )
            )
        if services.settings.queue == "postgres":
            job_repo.defer_slices(
                session, queue="flowservice-runs", task=TASK, run_id=claim.run_id, count=len(members)
            )
    log.info("run %s: %s files in %s slices", claim.run_id, len(staged), len(members))
    services.run_created(claim.run_id)  # wake in-process workers: there is work for them


def states(services: Services, run_id: str) -> list[SliceState]:
    with services.db.reader() as session:
        rows = slice_repo.of_run(session, run_id)
        return [SliceState(r.idx, r.status, r.attempts, r.result, r.error, list(r.files)) for r in rows]


def claim_next(
    services: Services, owner: str, *, run_id: str | None = None, index: int | None = None
) -> SliceClaim | None:
    """Claim a slice to promote: waiting, or taken under a lease that expired, of a run in progress
    (only `run_id`'s, and only slice `index`, when given)."""
    lease_ms = int(services.settings.lease_seconds * 1000)
    with services.db.transaction() as session:
        now = services.clock.now_ms()
        found = slice_repo.claimable(session, now, run_id=run_id, index=index)
        if found is None:
            return None
        row, run = found
        epoch, attempts = row.lease_epoch + 1, row.attempts + 1
        row.status, row.lease_owner, row.lease_expires_at = "doing", owner, now + lease_ms
        row.lease_epoch, row.attempts, row.updated_at = epoch, attempts, now
        tenant = Tenant(run.ims_org_id, run.sandbox_name, str(run.doc.get("sandboxId", "")))
        return SliceClaim(row.run_id, row.idx, epoch, attempts, owner, tenant, run.flow_id, list(row.files))


def renew(services: Services, claim: SliceClaim) -> bool:
    lease_ms = int(services.settings.lease_seconds * 1000)
    return _fenced(services, claim, lease_expires_at=services.clock.now_ms() + lease_ms)


def finish(services: Services, claim: SliceClaim, result: dict[str, Any]) -> None:
    """Record the slice's result, if the slice is still this worker's."""
    if not _fenced(services, claim, status="done", result=result, lease_expires_at=None, error=None):
        raise LeaseLost(f"lost slice {claim.index} of run {claim.run_id}")
    services.run_created(claim.run_id)  # the coordinator may be waiting for this one


def fail(services: Services, claim: SliceClaim, error: str, *, retry: bool) -> None:
    """Give the slice back to be tried again (alone), or fail it for good (its run then fails)."""
    again = retry and claim.attempts < ATTEMPTS
    status = "todo" if again else "failed"
    if _fenced(services, claim, status=status, error=error[:2000], lease_expires_at=None):
        services.run_created(claim.run_id)


def _fenced(services: Services, claim: SliceClaim, **values: Any) -> bool:
    with services.db.transaction() as session:
        values["updated_at"] = services.clock.now_ms()
        return slice_repo.update_held(session, claim.run_id, claim.index, claim.epoch, values)


def _file_doc(staged: StagedFile, staging: Path) -> dict[str, Any]:
    return {
        "staged": staged.staged.relative_to(staging).as_posix(),
        "path": staged.source.path,
        "sourceSize": staged.source.size,
        "modified": staged.source.modified_ms,
        "size": staged.size,
    }


def staged_files(files: list[dict[str, Any]], staging: Path) -> list[StagedFile]:
    return [
        StagedFile(SourceObject(f["path"], f["sourceSize"], f["modified"]), staging / f["staged"], f["size"])
        for f in files
    ]


def result_doc(result: Result, folder: str) -> dict[str, Any]:
    """What a slice's promotion produced, for its row (`folder`: where its parts are, in the run's staging)."""
    return {
        "folder": folder,
        "inputRecords": result.input_records,
        "outputRecords": result.output_records,
        "badRecords": result.bad_records,
        "outputBytes": result.output_bytes,
        "parts": result.parts,
        "errorCounts": result.error_counts,
        "diagnosticsWritten": result.diagnostics_written,
        "files": [
            {"records": f.records, "failed": f.failed, "complete": f.complete, "error": f.error}
            for f in result.files
        ],
    }


def result_of(doc: dict[str, Any], files: list[StagedFile]) -> Result:
    outcomes = [
        FileOutcome(staged, o["records"], o["failed"], o["complete"], o["error"])
        for staged, o in zip(files, doc["files"], strict=True)
    ]
    return Result(
        input_records=doc["inputRecords"],
        output_records=doc["outputRecords"],
        failed_records=doc["badRecords"],
        bad_records=doc["badRecords"],
        output_bytes=doc["outputBytes"],
        parts=list(doc["parts"]),
        files=outcomes,
        error_counts=dict(doc["errorCounts"]),
        diagnostics_written=bool(doc["diagnosticsWritten"]),
    )
