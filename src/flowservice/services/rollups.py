"""Ingestion rollups (per dataset and hour/day) and per-flow totals, added to as runs finish.

The Observability Insights API and `/metrics` read only these: a run is counted once, in the
transaction that makes it final (services/run_hooks.py), or by the bulk import that inserts it
final. A run counts in the hour and day its Promotion (or, failing before it, the run) completed;
a run without a dataset (its flow or target is gone) counts in the flow's totals only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from flowservice.domain import runs as model
from flowservice.domain.tenancy import Tenant
from flowservice.store.repos import rollups as repo

# upper bounds (seconds) of the run duration histogram's buckets; one more bucket holds the rest
DURATION_BOUNDS_S: tuple[float, ...] = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600)


def record_finished_run(session: Session, tenant: Tenant, doc: dict[str, Any], now: int) -> None:
    """Add a finished run to its dataset's hourly and daily rollups and to its flow's totals."""
    record_finished_runs(session, tenant, [doc], default_time=now)


def record_finished_runs(
    session: Session, tenant: Tenant, docs: Iterable[dict[str, Any]], *, default_time: int
) -> None:
    """Add many finished runs (runs not final are skipped) with two statements: one per table."""
    finished = [d for d in docs if str(d.get("state", "")) in model.TERMINAL]
    if not finished:
        return
    datasets = repo.datasets_of_flows(session, tenant, [str(d["flowId"]) for d in finished])
    rollups: dict[tuple[str, str, int], dict[str, Any]] = {}
    totals: dict[str, dict[str, Any]] = {}
    for doc in finished:
        facts = _facts(doc, default_time)
        flow_id = str(doc["flowId"])
        if flow_id not in datasets:
            continue  # the flow is gone: nothing left to total it under
        _add_totals(totals, tenant, flow_id, facts)
        dataset_id = datasets[flow_id]
        if dataset_id is None:
            continue
        for granularity, length in (("hour", repo.HOUR_MS), ("day", repo.DAY_MS)):
            bucket = facts["at"] - facts["at"] % length
            key = (granularity, dataset_id, bucket)
            row = rollups.setdefault(
                key,
                {
                    "ims_org_id": tenant.org_id,
                    "sandbox_name": tenant.sandbox_name,
                    "granularity": granularity,
                    "dataset_id": dataset_id,
                    "bucket_start": bucket,
                    **dict.fromkeys(repo.ROLLUP_COUNTERS, 0),
                },
            )
            row["runs"] += 1
            row["record_success"] += facts["records_out"]
            row["record_failed"] += facts["records_failed"]
            row["batch_success"] += facts["batch_success"]
            row["batch_failed"] += facts["batch_failed"]
            row["size_bytes"] += facts["bytes_out"]
    repo.add_rollups(session, list(rollups.values()))
    repo.add_totals(session, list(totals.values()))


def _facts(doc: dict[str, Any], default_time: int) -> dict[str, Any]:
    metrics = doc.get("metrics") or {}
    duration = metrics.get("durationSummary") or {}
    records = metrics.get("recordSummary") or {}
    sizes = metrics.get("sizeSummary") or {}
    status = str(doc.get("state", ""))
    started, completed = duration.get("startedAtUTC"), duration.get("completedAtUTC")
    batched = any(
        (info.get("reference") or {}).get("type") == "Batch"
        for activity in doc.get("activities") or []
        for info in activity.get("targetInfo") or []
    )
    return {
        "status": status,
        "at": int(completed if completed is not None else default_time),
        "duration_ms": max(0, int(completed) - int(started))
        if started is not None and completed is not None
        else 0,
        "records_in": _known(records.get("inputRecordCount")),
        "records_out": _known(records.get("outputRecordCount")),
        "records_failed": _known(records.get("failedRecordCount")),
        "bytes_in": _known(sizes.get("inputBytes")),
        "bytes_out": _known(sizes.get("outputBytes")),
        "batch_success": int(batched and status == "success"),
        "batch_failed": int(batched and status != "success"),
    }


def _known(value: Any) -> int:
    """A count as it adds up: -1 (Adobe's "unknown", e.g. a source that could not be read) and
    absent values count as 0, so counters never fall."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _add_totals(
    totals: dict[str, dict[str, Any]], tenant: Tenant, flow_id: str, facts: dict[str, Any]
) -> None:
    row = totals.setdefault(
        flow_id,
        {
            "flow_id": flow_id,
            "ims_org_id": tenant.org_id,
            "sandbox_name": tenant.sandbox_name,
            **dict.fromkeys(repo.TOTALS_COUNTERS, 0),
            "duration_buckets": [0] * (len(DURATION_BOUNDS_S) + 1),
        },
    )
    status = facts["status"]
    row["runs_success"] += status == "success"
    row["runs_failed"] += status == "failed"
    row["runs_cancelled"] += status == "cancelled"
    for name in ("records_in", "records_out", "records_failed", "bytes_in", "bytes_out"):
        row[name] += facts[name]
    row["duration_ms_sum"] += facts["duration_ms"]
    seconds = facts["duration_ms"] / 1000
    index = next((i for i, bound in enumerate(DURATION_BOUNDS_S) if seconds <= bound), len(DURATION_BOUNDS_S))
    row["duration_buckets"][index] += 1
