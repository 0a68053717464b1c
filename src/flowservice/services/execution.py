"""Executing a run: claim → Copy Activity → Promotion Activity → fenced commit → finish.

This is the control plane around the engine (engine/ knows files and Arrow; this module knows runs,
tenants and the catalog). Every write about a claimed run is fenced by the claim's lease epoch, so a
worker that lost its lease (paused, partitioned, presumed dead) cannot change the run or commit a
batch; the commit is one transaction that checks the fence, inserts the batch row (unique per run)
and makes the staged batch visible: a rename in a local lake; in an S3 lake, where the batch was
uploaded under its attempt's own prefix first, the row naming that upload. A run is executed at
least once and committed exactly once.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from flowservice import catalog, egress
from flowservice.connectors import registry
from flowservice.connectors.base import ConnectorError, FileSource, SourceObject
from flowservice.domain import ids
from flowservice.domain import runs as model
from flowservice.domain.runs import COPY, PROMOTION, Activity, RunError, Summary
from flowservice.domain.xdm import Schema, parse_schema
from flowservice.engine import promotion
from flowservice.engine.copy import FileTooLarge, StagedFile, copy_files, extract_table
from flowservice.engine.lake import BatchPlace, StagedBatch
from flowservice.errors import InvalidRequest, Terminal, Transient
from flowservice.services import runs, slices
from flowservice.services.context import Services
from flowservice.services.runs import Claim, LeaseLost
from flowservice.store.repos import resources as repos
from flowservice.store.repos import runs as run_repo
from flowservice.store.repos import schedules as schedule_repo

log = logging.getLogger("flowservice.engine")
EXPORT = "/data/foundation/export/batches"
TABLE_SPECS = frozenset({catalog.POSTGRESQL, catalog.MYSQL, catalog.MARIADB})
DEFAULT_RETRIES = 3
SLICES = "slices"  # the slices' outputs, in the run's staging folder


class SliceFailed(Terminal):
    """A slice of the run failed as often as slices are tried."""


class RunSetupError(Terminal):
    """The flow cannot run as configured (deleted parts, a dataset without schema…)."""


@dataclass(frozen=True, slots=True)
class Context:
    """Everything one run needs, read once when it starts."""

    flow: dict[str, Any]
    source_id: str
    source_spec: str
    source_params: dict[str, Any]
    source_data: dict[str, Any]
    auth: dict[str, Any]
    target_id: str
    dataset_id: str
    schema: Schema
    rules: tuple[promotion.Rule, ...] | None
    partial_percent: float | None
    diagnostics: bool
    delta_column: str | None
    max_retries: int

    @property
    def is_table(self) -> bool:
        return self.source_spec in TABLE_SPECS


def run_next(services: Services, owner: str) -> bool:
    """Claim and execute one runnable run; False when there was none."""
    lease_ms = int(services.settings.lease_seconds * 1000)
    claim = runs.claim_next(services, owner, lease_ms=lease_ms)
    if claim is None:
        return False
    execute(services, claim)
    return True


def execute(services: Services, claim: Claim) -> None:
    fenced = False
    with _heartbeat(services, claim):
        try:
            _execute(services, claim)
        except LeaseLost as exc:
            fenced = True
            log.warning("%s", exc)
        except Exception:
            log.exception("run %s failed unexpectedly (attempt %s)", claim.run_id, claim.attempt)
            error = RunError(*model.PROCESSING_FAILED)
            try:
                runs.finish_run(services, claim.tenant, claim.run_id, "failed", [error], fence=claim)
            except LeaseLost:
                fenced = True
        finally:
            # A fenced-out attempt leaves the run's staging alone: it is the new holder's now (a
            # takeover stages into the same folder), and retention removes what a crash leaves.
            if not fenced:
                services.lake.discard(
                    services.lake.run_staging(claim.tenant.org_id, claim.tenant.sandbox_name, claim.run_id)
                )


def _execute(services: Services, claim: Claim) -> None:
    tenant = claim.tenant
    batch_id = ids.batch_id_for_run(claim.run_id, claim.created_at)
    committed = _committed_batch(services, claim)
    if committed is not None:  # an earlier attempt committed, then died before finishing the run
        _finish_from_batch(services, claim, committed)
        return
    try:
        context = _context(services, claim)
    except (RunSetupError, InvalidRequest) as exc:
        message = exc.message if isinstance(exc, InvalidRequest) else str(exc)
        runs.finish_run(
            services,
            tenant,
            claim.run_id,
            "failed",
            [RunError(model.PROCESSING_FAILED[0], f"{model.PROCESSING_FAILED[1]} {message}")],
            fence=claim,
        )
        return

    # --- Copy Activity ---
    copy = Activity(
        id=_activity_id(claim.run_id, COPY),
        name=COPY,
        status="inProgress",
        started_at=services.clock.now_ms(),
        window=claim.window,
        source_info=[
            {
                "id": context.source_id,
                "type": "SourceConnection",
                "reference": {"type": "FlowRun", "ids": [claim.run_id]},
            }
        ],
    )
    runs.record_activity(services, tenant, claim.run_id, copy, fence=claim)
    staging = services.lake.run_staging(tenant.org_id, tenant.sandbox_name, claim.run_id)
    planned = slices.states(services, claim.run_id)
    try:
        if planned:  # an earlier attempt staged the files and sliced the run: its slices go on
            staged = [f for s in planned for f in slices.staged_files(s.files, staging)]
            staged.sort(key=lambda f: f.staged.name)
            table_read = None
        else:
            staged, table_read = _copy(services, claim, context, staging)
    except (ConnectorError, FileTooLarge, OSError) as exc:
        if isinstance(exc, OSError) and not _out_of_space(exc):
            raise
        listed = getattr(exc, "listed", None)
        unknown = model.UNKNOWN
        copy.status = "failed"
        copy.completed_at = services.clock.now_ms()
        copy.summary = Summary(
            input_bytes=unknown,
            output_bytes=unknown,
            input_files=unknown if listed is None else listed,
            output_files=unknown,
        )
        copy.errors = [RunError(*model.COPY_FAILED)]
        reason = _no_space(claim, "staging the source files", exc) if _out_of_space(exc) else str(exc)
        copy.details = [RunError(model.COPY_FAILED[0], reason[:1000])]
        runs.record_activity(services, tenant, claim.run_id, copy, fence=claim)
        retrying = isinstance(exc, Transient) and _schedule_retry(services, claim, context)
        runs.finish_run(
            services,
            tenant,
            claim.run_id,
            "failed",
            [RunError(*model.COPY_FAILED)],
            fence=claim,
            retrying=retrying,
        )
        return
    copied = sum(f.size for f in staged)
    copy.status = "success"
    copy.completed_at = services.clock.now_ms()
    copy.summary = Summary(
        input_bytes=table_read[1] if table_read is not None else copied,
        output_bytes=copied,
        input_files=len(staged),
        output_files=len(staged),
    )
    runs.record_activity(services, tenant, claim.run_id, copy, fence=claim)
    _checkpoint(services, "copy.done")

    # --- Promotion Activity ---
    started = services.clock.now_ms()
    activity = Activity(
        id=_activity_id(claim.run_id, PROMOTION), name=PROMOTION, status="inProgress", started_at=started
    )
    runs.record_activity(services, tenant, claim.run_id, activity, fence=claim)
    place = BatchPlace(tenant.org_id, tenant.sandbox_name, context.dataset_id, batch_id)
    batch = services.lake.batch_staging(place, claim.run_id, f"{claim.epoch}")
    plan = _plan(services, context)
    try:
        try:
            if planned or (not context.is_table and slices.wanted(services, staged)):
                result = _promote_in_slices(services, claim, plan, staged, staging, batch.path)
            else:
                result = promotion.promote(staged, plan, batch.path, lambda name: _checkpoint(services, name))
        except OSError as exc:
            if not _out_of_space(exc):
                raise
            activity.status = "failed"
            activity.completed_at = services.clock.now_ms()
            activity.summary = Summary(
                input_bytes=copied, output_bytes=0, input_files=len(staged), output_files=0
            )
            activity.errors = [RunError(*model.PROCESSING_FAILED)]
            activity.details = [
                RunError(model.PROCESSING_FAILED[0], _no_space(claim, "writing the batch", exc))
            ]
            runs.record_activity(services, tenant, claim.run_id, activity, fence=claim)
            error = RunError(*model.PROCESSING_FAILED)
            runs.finish_run(services, tenant, claim.run_id, "failed", [error], fence=claim)
            return
        activity, run_errors, status = _promotion_outcome(
            services, activity, result, staged, batch_id, context
        )
        _checkpoint(services, "promotion.before_commit")
        place = services.lake.publish(batch)  # S3: uploaded under this attempt's own prefix, unreferenced
        _checkpoint(services, "promotion.published")
        _commit(services, claim, place, batch, result, activity, run_errors, status, context)
    finally:
        # an attempt that did not commit leaves no partial batch here (a local commit renamed it away)
        services.lake.discard(batch.path)
    _checkpoint(services, "promotion.committed")
    # the records of the copied data are known once promotion has read them all (tables: at once)
    copy.summary.input_records = copy.summary.output_records = (
        table_read[0] if table_read is not None else result.input_records
    )
    runs.record_activity(services, tenant, claim.run_id, copy, fence=claim)
    runs.record_activity(services, tenant, claim.run_id, activity, fence=claim)
    runs.finish_run(services, tenant, claim.run_id, status, run_errors, fence=claim)


def run_next_slice(services: Services, owner: str) -> bool:
    """Claim and promote one slice of any run in progress; False when there was none."""
    claim = slices.claim_next(services, owner)
    if claim is None:
        return False
    execute_slice(services, claim)
    return True


def execute_slice(services: Services, claim: slices.SliceClaim) -> None:
    """Promote one slice's files into a folder of this claim's own (parts named after the slice),
    then record its result, fenced by the slice's epoch. A failure gives the slice back to be tried
    again alone (up to `slices.ATTEMPTS`); the other slices keep their results."""
    staging = services.lake.run_staging(claim.tenant.org_id, claim.tenant.sandbox_name, claim.run_id)
    folder = f"{claim.index:05d}.{claim.epoch}"
    out = staging / SLICES / folder
    with _slice_heartbeat(services, claim):
        try:
            _checkpoint(services, "slice.started")
            context = _context(services, claim)
            files = slices.staged_files(claim.files, staging)
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            result = promotion.promote(
                files,
                _plan(services, context),
                out,
                lambda name: _checkpoint(services, name),
                decide=False,
                part_prefix=f"s{claim.index:05d}-",
            )
            _checkpoint(services, "slice.promoted")
            slices.finish(services, claim, slices.result_doc(result, folder))
        except LeaseLost as exc:
            log.warning("%s", exc)
            services.lake.discard(out)
        except Exception as exc:
            log.exception("slice %s of run %s failed (attempt %s)", claim.index, claim.run_id, claim.attempts)
            services.lake.discard(out)
            with suppress(Exception):  # a database outage: the slice's lease expires and it is taken again
                slices.fail(
                    services, claim, f"{type(exc).__name__}: {exc}", retry=not isinstance(exc, Terminal)
                )


def _promote_in_slices(
    services: Services,
    claim: Claim,
    plan: promotion.Plan,
    staged: list[StagedFile],
    staging: Path,
    out: Path,
) -> promotion.Result:
    """Slice the run (unless an earlier attempt did), promote slices until none is left to claim,
    wait for those other workers hold, and assemble all of them in `out` as one batch."""
    slices.plan(services, claim, staged, staging)
    owner = f"{claim.owner}/slices"
    wake = threading.Event()

    def listener(run_id: str) -> None:
        if run_id == claim.run_id:
            wake.set()

    services.run_listeners.append(listener)
    try:
        while True:
            taken = slices.claim_next(services, owner, run_id=claim.run_id)
            if taken is not None:
                execute_slice(services, taken)
                continue
            states = slices.states(services, claim.run_id)
            failed = next((s for s in states if s.status == "failed"), None)
            if failed is not None:
                raise SliceFailed(
                    f"slice {failed.index} of run {claim.run_id} failed {failed.attempts} times: {failed.error}"
                )
            if all(s.status == "done" for s in states):
                break
            wake.wait(min(services.settings.poll_seconds, 0.5))
            wake.clear()
    finally:
        services.run_listeners.remove(listener)
    _checkpoint(services, "slices.done")
    return _assemble(states, staging, out, plan)


def _assemble(
    states: list[slices.SliceState], staging: Path, out: Path, plan: promotion.Plan
) -> promotion.Result:
    """The slices' parts (hard links: the slices' folders stay whole for a later attempt of the run)
    and diagnostics in the batch's staging folder, with the exact sums of their counts."""
    results: list[promotion.Result] = []
    folders: list[Path] = []
    for state in states:
        assert state.result is not None
        folders.append(staging / SLICES / str(state.result["folder"]))
        results.append(slices.result_of(state.result, slices.staged_files(state.files, staging)))
    combined = promotion.combine(results, plan)
    if not combined.rejected:
        for folder, result in zip(folders, results, strict=True):
            for name in result.parts:
                _link(folder / name, out / name)
    sample: list[Any] = []
    for state, folder in zip(states, folders, strict=True):
        errors = folder / "row_errors"
        if errors.is_dir():
            (out / "row_errors").mkdir(exist_ok=True)
            for path in sorted(errors.iterdir()):
                _link(path, out / "row_errors" / f"part-s{state.index:05d}-{path.name.removeprefix('part-')}")
        samples = folder / "row_error_samples.json"
        if samples.exists() and len(sample) < promotion.SAMPLE_SIZE:
            sample += json.loads(samples.read_text())[: promotion.SAMPLE_SIZE - len(sample)]
    if sample:
        (out / "row_error_samples.json").write_text(json.dumps(sample, indent=2))
    promotion.write_manifest(out, combined)
    return combined


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def _plan(services: Services, context: Context) -> promotion.Plan:
    data = {"format": "parquet"} if context.is_table else context.source_data  # tables are staged as Parquet
    return promotion.Plan(
        context.schema,
        context.rules,
        data,
        context.partial_percent,
        context.diagnostics,
        max_uncompressed=services.settings.max_decompressed_bytes,
    )


def _context(services: Services, claim: Claim | slices.SliceClaim) -> Context:
    tenant = claim.tenant
    with services.db.reader() as session:
        flow = repos.flows(session, tenant).get(claim.flow_id)
        if flow is None:
            raise RunSetupError(f"The flow {claim.flow_id} no longer exists.")
        source_id = flow.doc["sourceConnectionIds"][0]
        target_id = flow.doc["targetConnectionIds"][0]
        source = repos.source_connections(session, tenant).get(source_id)
        target = repos.target_connections(session, tenant).get(target_id)
        if source is None or target is None:
            raise RunSetupError("A source or target connection of the flow no longer exists.")
        auth: dict[str, Any] = {}
        if source.base_connection_id:
            base = repos.connections(session, tenant).get(source.base_connection_id)
            if base is None:
                raise RunSetupError(f"The base connection {source.base_connection_id} no longer exists.")
            auth = dict((base.doc.get("auth") or {}).get("params") or {})
            if base.secrets:
                auth.update(services.box.open(base.secrets))
        dataset_id = str(target.doc["params"]["dataSetId"])
        dataset = repos.datasets(session, tenant).get(dataset_id)
        if dataset is None:
            raise RunSetupError(f"The dataset {dataset_id} no longer exists.")
        schema_row = repos.schemas(session, tenant).get(dataset.schema_id)
        if schema_row is None:
            raise RunSetupError(f"The schema {dataset.schema_id} of dataset {dataset_id} no longer exists.")
        rules = None
        delta_column = None
        for transformation in flow.doc.get("transformations") or []:
            if transformation.get("name") == "Copy":
                delta_column = str(
                    ((transformation.get("params") or {}).get("deltaColumn") or {}).get("name") or ""
                )
                delta_column = delta_column or None
            if transformation.get("name") == "Mapping":
                mapping_id = str(transformation["params"]["mappingId"])
                mapping = repos.mapping_sets(session, tenant).get(mapping_id)
                if mapping is None:
                    raise RunSetupError(f"The mapping set {mapping_id} no longer exists.")
                rules = tuple(promotion.Rule.of(m) for m in mapping.doc["mappings"])
    options = flow.doc.get("options") or {}
    percent = options.get("partialIngestionPercent")
    return Context(
        flow=flow.doc,
        source_id=source_id,
        source_spec=source.spec_id,
        source_params=dict(source.doc.get("params") or {}),
        source_data=dict(source.doc.get("data") or {}),
        auth=auth,
        target_id=target_id,
        dataset_id=dataset_id,
        schema=parse_schema(schema_row.doc),
        rules=rules,
        partial_percent=float(percent) if percent is not None else None,
        diagnostics=bool(options.get("errorDiagnosticsEnabled", False)),
        delta_column=delta_column,
        max_retries=_max_retries(options),
    )


def _copy(
    services: Services, claim: Claim, context: Context, staging: Path
) -> tuple[list[StagedFile], tuple[int, int] | None]:
    """Stage the run's input: the files in scope, or the table's rows in the window as Parquet
    (then also the rows and bytes read, which a table source knows at once)."""
    tenant = claim.tenant
    if context.is_table:
        table_source = registry.table_source(context.source_spec, context.auth)
        try:
            table = str(context.source_params.get("tableName", ""))
            extract = extract_table(
                table_source, table, staging, delta_column=context.delta_column, window_ms=claim.window
            )
        finally:
            table_source.close()
        _checkpoint(services, "copy.listed")
        return extract.staged, (extract.records, extract.bytes_read)
    zone = services.settings.landing_zone / tenant.org_id / tenant.sandbox_name
    source = registry.file_source(
        context.source_spec, context.auth, landing_zone_root=zone, egress=egress.policy_of(services.settings)
    )
    try:
        objects = _in_scope(source, context, claim, services)
        _checkpoint(services, "copy.listed")
        try:
            staged = copy_files(
                source,
                objects,
                staging,
                max_file_bytes=services.settings.max_file_bytes,
                progress=lambda _files, _bytes: _checkpoint(services, "copy.file_done"),
            )
            return staged, None
        except ConnectorError as exc:
            exc.listed = len(objects)  # type: ignore[attr-defined]
            raise
    finally:
        source.close()


def _schedule_retry(services: Services, claim: Claim, context: Context) -> bool:
    """A Transient failure gets a new run over the same window, after a growing pause, up to the
    flow's limit (`options.maxRetries`, default 3); it links back with `parentFlowRunId`."""
    with services.db.transaction() as session:
        run = repos.runs(session, claim.tenant).get(claim.run_id, lock=True)
        flow = repos.flows(session, claim.tenant).get(claim.flow_id, lock=True)
        if run is None or flow is None or run.retry_number >= context.max_retries:
            return False
        runs.check_fence(run, claim)
        now = services.clock.now_ms()
        delay = int(services.settings.retry_backoff_seconds * 1000) * 2**run.retry_number
        insert = partial(
            runs.insert_run,
            session,
            claim.tenant,
            flow,
            services=services,
            now=now,
            params=run.doc.get("params"),
            window=claim.window,
            retry_of=run.id,
            retry_number=run.retry_number + 1,
            ready_at=now + delay,
            run_key=f"retry:{run.id}",
        )
        created = schedule_repo.unless_exists(session, insert)
    if created is not None:
        log.info("run %s failed transiently: retry %s in %s ms", claim.run_id, created["id"], delay)
    return True  # made now, or by an earlier attempt of this run (the key refused a second one)


def _max_retries(options: dict[str, Any]) -> int:
    value = options.get("maxRetries", DEFAULT_RETRIES)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else DEFAULT_RETRIES


def _in_scope(source: FileSource, context: Context, claim: Claim, services: Services) -> list[SourceObject]:
    """The files of the source connection's path, within the run's window (by last-modified time)."""
    params = context.source_params
    path = str(params.get("path", ""))
    recursive = bool(params.get("recursive", False))
    objects = list(source.list(path, recursive=recursive))
    if claim.window is not None:
        start, end = claim.window
        objects = [o for o in objects if start < o.modified_ms <= end]
    if len(objects) > services.settings.max_files_per_run:
        raise FileTooLarge(
            f"{len(objects)} files are in scope; a run takes at most {services.settings.max_files_per_run}"
        )
    return objects


def _promotion_outcome(
    services: Services,
    activity: Activity,
    result: promotion.Result,
    staged: list[StagedFile],
    batch_id: str,
    context: Context,
) -> tuple[Activity, list[RunError], str]:
    base = f"{services.settings.public_url}{EXPORT}/{batch_id}/meta?path="
    processed = sum(1 for f in result.files if f.complete and f.error is None)
    activity.completed_at = services.clock.now_ms()
    activity.summary = Summary(
        input_bytes=sum(f.size for f in staged),
        output_bytes=result.output_bytes,
        input_records=result.input_records,
        output_records=result.output_records,
        failed_records=result.failed_records,
        input_files=processed if not result.rejected else len(staged),
        output_files=len(result.parts),
    )
    activity.manifest = {
        "fileInfo": base + "input_files",
        "pathPrefix": _path_prefix([f.source.path for f in staged]),
    }
    activity.target_info = [
        {
            "id": context.target_id,
            "type": "TargetConnection",
            "reference": {"type": "Batch", "ids": [batch_id]},
        }
    ]
    details: list[RunError] = []
    if result.bad_records:
        if result.diagnostics_written:
            summary = (
                f"Encountered {result.bad_records} errors in the data. Successfully ingested "
                f"{result.output_records} rows. Review the associated diagnostic files for additional details."
            )
            details.append(RunError("INGEST-1212-400", summary))
            activity.diagnostics = {
                "failedRecords": base + "row_errors",
                "sampleErrors": base + "row_error_samples.json",
            }
        else:
            summary = (
                f"Encountered {result.bad_records} errors in the data. Successfully ingested "
                f"{result.output_records} rows. Enable error diagnostics to download the failed records."
            )
            details.append(RunError("INGEST-1211-400", summary))
        messages = {
            "INGEST-1401-400": "Corrupt record: it could not be parsed.",
            "INGEST-1555-400": "Required field missing.",
            "MAPPER-3700-400": "Mapper Transform Error",
            "INGEST-1556-400": "The value does not satisfy the schema.",
        }
        details += [
            RunError(code, messages.get(code, code), n) for code, n in sorted(result.error_counts.items())
        ]
    for unreadable in (f for f in result.files if f.error is not None):
        details.append(
            RunError("INGEST-1401-400", f"{unreadable.staged.source.path}: {unreadable.error}"[:1000])
        )
    errors = [RunError(*model.PROCESSING_FAILED)] if details else []
    activity.errors, activity.details = errors, details
    status = "failed" if result.rejected else "success"
    activity.status = "failed" if result.rejected else "success"
    return activity, errors, status


def _commit(
    services: Services,
    claim: Claim,
    place: BatchPlace,
    batch: StagedBatch,
    result: promotion.Result,
    activity: Activity,
    run_errors: list[RunError],
    status: str,
    context: Context,
) -> None:
    """Insert the batch row and make the published batch visible, in one fenced transaction.

    The row records the lake's place of the batch (`lakeAttempt`: which upload is the batch, in an
    S3 lake), so readers resolve its files through the row and see the whole batch or none. Once
    the outcome is known the lake settles the attempt: when the row was not written (fenced out,
    or committed already by another attempt) its upload is deleted; when the transaction failed
    in a way that leaves the outcome unknown, nothing is settled and retention decides later
    from the batch row.
    """
    now = services.clock.now_ms()
    doc = {
        "id": place.batch_id,
        "imsOrg": claim.tenant.org_id,
        "status": "success" if status == "success" else "failed",
        "created": now,
        "updated": now,
        "completed": now,
        "createdUser": runs.SYSTEM_ACTOR,
        "relatedObjects": [{"type": "dataSet", "id": place.dataset_id}],
        "version": "1.0.0",
        "inputFormat": {"format": str(context.source_data.get("format", "delimited"))},
        "metrics": {
            "inputByteSize": activity.summary.input_bytes,
            "inputFileCount": len(result.files),
            "inputRecordCount": result.input_records,
            "outputByteSize": result.output_bytes,
            "outputFileCount": len(result.parts),
            "outputRecordCount": result.output_records,
            "failedRecordCount": result.failed_records,
        },
        "errors": [
            {
                "code": e.code,
                "description": e.message,
                **({"recordCount": e.record_count} if e.record_count is not None else {}),
            }
            for e in activity.details
        ],
        "flowservice": {
            "runId": claim.run_id,
            "promotion": activity.wire(),
            "runErrors": [e.wire() for e in run_errors],
            "lakeAttempt": place.attempt,
        },
        "createdAt": now,
        "updatedAt": now,
        "etag": f'"{place.batch_id}"',
    }
    committed: bool | None = None  # None: unknown, as when the database fails while committing
    try:
        with services.db.transaction() as session:
            try:
                row = repos.runs(session, claim.tenant).get(claim.run_id, lock=True)
                if row is None:
                    raise LeaseLost(f"run {claim.run_id} disappeared")
                runs.check_fence(row, claim)
                if run_repo.batch_of_run(session, claim.run_id) is not None:
                    # by an attempt that raced us past the fence: cannot happen, but never twice
                    committed = False
                    return
                repos.batches(session, claim.tenant).insert(doc, run_id=claim.run_id)
                services.lake.commit(batch, place)
            except BaseException:
                committed = False  # the transaction rolls back: no row names this upload
                raise
        committed = True
    finally:
        if committed is not None:
            services.lake.settle(batch, place, committed=committed)


def _committed_batch(services: Services, claim: Claim) -> dict[str, Any] | None:
    with services.db.reader() as session:
        row = run_repo.batch_of_run(session, claim.run_id)
        return dict(row.doc) if row is not None else None


def _finish_from_batch(services: Services, claim: Claim, batch: dict[str, Any]) -> None:
    saved = batch["flowservice"]
    activity = Activity.from_wire(saved["promotion"])
    errors = [RunError.from_wire(e) for e in saved["runErrors"]]
    runs.record_activity(services, claim.tenant, claim.run_id, activity, fence=claim)
    runs.finish_run(
        services,
        claim.tenant,
        claim.run_id,
        "success" if batch["status"] == "success" else "failed",
        errors,
        fence=claim,
    )


def _out_of_space(exc: BaseException) -> bool:
    """The lake's disk (or the quota on it) is full: the operator's matter, not a bug of the run."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _no_space(claim: Claim, step: str, exc: BaseException) -> str:
    """What a run that met a full lake says (the lake's paths stay in the server's log)."""
    log.warning("run %s: the lake is full while %s: %s", claim.run_id, step, exc)
    return (
        f"No space left on device in the lake while {step}; nothing of this attempt was kept. "
        "Free space in the lake, then run the flow again."
    )


def _activity_id(run_id: str, name: str) -> str:
    """The same ids on every attempt of a run, so a new attempt replaces the activities of a dead one."""
    return str(uuid.uuid5(uuid.UUID(run_id), name))


def _path_prefix(paths: list[str]) -> str:
    if not paths:
        return ""
    prefix = os.path.commonprefix(paths)
    return prefix[: prefix.rfind("/") + 1] if "/" in prefix else ""


def _checkpoint(services: Services, name: str) -> None:
    """Fault injection for tests: with FLOWSERVICE_HANG_AT=name the worker stops here, says so in a
    marker file (`hang-{name}-{pid}` in the home), and waits to be killed, or until the test writes
    `release-{name}-{pid}` beside it (a fault injected meanwhile, such as a source or database
    outage, then meets the run at this point); once released, the checkpoint no longer stops."""
    if services.settings.hang_at != name:
        return
    release = services.settings.home / f"release-{name}-{os.getpid()}"
    if release.exists():
        return
    marker = services.settings.home / f"hang-{name}-{os.getpid()}"
    marker.write_text(str(os.getpid()))
    while not release.exists():
        threading.Event().wait(0.05)


@contextmanager
def _slice_heartbeat(services: Services, claim: slices.SliceClaim) -> Iterator[None]:
    """Renew a slice's lease every third of its length while it is promoted."""
    with _beating(
        services,
        lambda: slices.renew(services, claim),
        f"slice {claim.index} of run {claim.run_id}",
        f"slice-{claim.run_id[:8]}-{claim.index}",
    ):
        yield


@contextmanager
def _heartbeat(services: Services, claim: Claim) -> Iterator[None]:
    """Renew the lease every third of its length while the run executes."""
    lease_ms = int(services.settings.lease_seconds * 1000)
    with _beating(
        services,
        lambda: runs.renew_lease(services, claim, lease_ms=lease_ms),
        f"the lease on run {claim.run_id}",
        f"lease-{claim.run_id[:8]}",
    ):
        yield


@contextmanager
def _beating(services: Services, renew: Callable[[], bool], what: str, thread_name: str) -> Iterator[None]:
    """Call `renew` every third of a lease on a thread of its own until the block ends; stop when it
    says the lease is lost. A failing call (a database hiccup) is logged and tried again next beat."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(services.settings.lease_seconds / 3):
            try:
                if not renew():
                    log.warning("lost %s", what)
                    return
            except Exception:
                log.exception("could not renew %s", what)

    thread = threading.Thread(target=beat, name=thread_name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
