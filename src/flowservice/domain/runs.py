"""Runs: their states, the transitions between them, and what every number in `metrics` means.

The wire shape is the tutorial's ("Monitor dataflows using the Flow Service API"). A run's metrics are
derived from its activities by one function (`run_metrics`), so the run-level numbers can never
disagree with the activities they summarise. Meanings (DESIGN.md §4):

- inputBytes: bytes read from the source, as stored there (Copy Activity input)
- outputBytes: bytes of Parquet committed to the dataset (Promotion Activity output)
- inputRecordCount / outputRecordCount / failedRecordCount: records read / committed / rejected
- inputFileCount: source files in the run's scope; outputFileCount: source files fully processed
- -1 marks a number that could not be known (the source was unreachable)

Invariant of every finished run: input records = output + failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["scheduled", "inProgress", "success", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("scheduled", "inProgress", "success", "failed", "cancelled")
TERMINAL: frozenset[str] = frozenset({"success", "failed", "cancelled"})
UNKNOWN = -1

# current -> allowed next. inProgress -> scheduled re-queues a run whose worker lost its lease.
TRANSITIONS: dict[str, frozenset[str]] = {
    "scheduled": frozenset({"inProgress", "failed", "cancelled"}),
    "inProgress": frozenset({"success", "failed", "cancelled", "scheduled"}),
    "success": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}

COPY = "Copy Activity"
PROMOTION = "Promotion Activity"

# Run-level error codes (digest 3.4)
COPY_FAILED = ("CONNECTOR-1001-500", "Error in copying the data from Source.")
PROCESSING_FAILED = (
    "CONNECTOR-2001-500",
    "Error in processing (parsing, validation or transformation) the copied data.",
)


def canonical_status(text: str) -> Status | None:
    """`Failed`, `FAILED` and `failed` are one status; anything else is none."""
    return next((s for s in STATUSES if s.lower() == text.lower()), None)


def can_move(current: str, following: str) -> bool:
    return following in TRANSITIONS.get(current, frozenset())


@dataclass(slots=True)
class Summary:
    """The counts of one activity; None means "not reported by this activity"."""

    input_bytes: int | None = None
    output_bytes: int | None = None
    input_records: int | None = None
    output_records: int | None = None
    failed_records: int | None = None
    input_files: int | None = None
    output_files: int | None = None


@dataclass(frozen=True, slots=True)
class RunError:
    code: str
    message: str
    record_count: int | None = None

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.record_count is not None:
            body["recordCount"] = self.record_count
        return body

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> RunError:
        return cls(str(body["code"]), str(body.get("message", "")), body.get("recordCount"))


@dataclass(slots=True)
class Activity:
    id: str
    name: str
    status: Status
    started_at: int | None = None
    completed_at: int | None = None
    updated_at: int = 0
    summary: Summary = field(default_factory=Summary)
    errors: list[RunError] = field(default_factory=list)  # statusSummary.errors
    details: list[RunError] = field(default_factory=list)  # statusSummary.extensions.errors, with recordCount
    window: tuple[int, int] | None = None  # copy: durationSummary.extensions.windowStart/windowEnd (ms)
    manifest: dict[str, Any] | None = None  # promotion: fileSummary.extensions.manifest
    diagnostics: dict[str, Any] | None = None  # promotion: statusSummary.extensions.manifest
    source_info: list[dict[str, Any]] | None = None
    target_info: list[dict[str, Any]] | None = None

    def wire(self) -> dict[str, Any]:
        duration: dict[str, Any] = {}
        if self.started_at is not None:
            duration["startedAtUTC"] = self.started_at
        if self.completed_at is not None:
            duration["completedAtUTC"] = self.completed_at
        if self.window is not None:
            duration["extensions"] = {"windowStart": self.window[0], "windowEnd": self.window[1]}
        s = self.summary
        size = _present({"inputBytes": s.input_bytes, "outputBytes": s.output_bytes})
        records = _present(
            {
                "inputRecordCount": s.input_records,
                "outputRecordCount": s.output_records,
                "failedRecordCount": s.failed_records,
            }
        )
        files = _present({"inputFileCount": s.input_files, "outputFileCount": s.output_files})
        if self.manifest is not None:
            files["extensions"] = {"manifest": self.manifest}
        status: dict[str, Any] = {"status": self.status}
        if self.errors:
            status["errors"] = [e.wire() for e in self.errors]
        extensions: dict[str, Any] = {}
        if self.diagnostics is not None:
            extensions["manifest"] = self.diagnostics
        if self.details:
            extensions["errors"] = [e.wire() for e in self.details]
        if extensions:
            status["extensions"] = extensions
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "updatedAtUTC": self.updated_at,
            "durationSummary": duration,
            "sizeSummary": size,
            "recordSummary": records,
            "fileSummary": files,
            "statusSummary": status,
        }
        if self.source_info is not None:
            body["sourceInfo"] = self.source_info
        if self.target_info is not None:
            body["targetInfo"] = self.target_info
        return body

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> Activity:
        duration = body.get("durationSummary") or {}
        window_ext = duration.get("extensions") or {}
        size, records = body.get("sizeSummary") or {}, body.get("recordSummary") or {}
        files, status = body.get("fileSummary") or {}, body.get("statusSummary") or {}
        extensions = status.get("extensions") or {}
        window = None
        if "windowStart" in window_ext and "windowEnd" in window_ext:
            window = (int(window_ext["windowStart"]), int(window_ext["windowEnd"]))
        return cls(
            id=body["id"],
            name=body["name"],
            status=status.get("status", "inProgress"),
            started_at=duration.get("startedAtUTC"),
            completed_at=duration.get("completedAtUTC"),
            updated_at=body.get("updatedAtUTC", 0),
            summary=Summary(
                size.get("inputBytes"),
                size.get("outputBytes"),
                records.get("inputRecordCount"),
                records.get("outputRecordCount"),
                records.get("failedRecordCount"),
                files.get("inputFileCount"),
                files.get("outputFileCount"),
            ),
            errors=[RunError.from_wire(e) for e in status.get("errors") or []],
            details=[RunError.from_wire(e) for e in extensions.get("errors") or []],
            window=window,
            manifest=(files.get("extensions") or {}).get("manifest"),
            diagnostics=extensions.get("manifest"),
            source_info=body.get("sourceInfo"),
            target_info=body.get("targetInfo"),
        )


def run_metrics(
    activities: list[Activity],
    status: str,
    *,
    started_at: int | None,
    completed_at: int | None,
    errors: list[RunError],
) -> dict[str, Any]:
    """The run-level `metrics` object, derived from the activities (see the module docstring)."""
    copy = next((a for a in activities if a.name == COPY), None)
    promotion = next((a for a in activities if a.name == PROMOTION), None)
    first_start = min((a.started_at for a in activities if a.started_at is not None), default=started_at)
    duration: dict[str, Any] = {}
    if first_start is not None:
        duration["startedAtUTC"] = first_start
    if status in TERMINAL and completed_at is not None:
        duration["completedAtUTC"] = completed_at
    c = copy.summary if copy else Summary()
    p = promotion.summary if promotion else Summary()
    if promotion is None:
        output_files = None if copy is None else (0 if c.input_files != UNKNOWN else UNKNOWN)
    elif promotion.status == "success":
        output_files = p.input_files
    else:
        output_files = 0 if p.input_files != UNKNOWN else UNKNOWN
    records_known = promotion is not None or (copy is not None and c.input_records is not None)
    metrics: dict[str, Any] = {
        "durationSummary": duration,
        "sizeSummary": _present({"inputBytes": c.input_bytes, "outputBytes": p.output_bytes}),
        "recordSummary": _present(
            {
                "inputRecordCount": p.input_records if promotion else c.input_records,
                "outputRecordCount": p.output_records if promotion else (0 if records_known else None),
                "failedRecordCount": p.failed_records if promotion else (0 if records_known else None),
            }
        ),
        "fileSummary": _present({"inputFileCount": c.input_files, "outputFileCount": output_files}),
        "statusSummary": {"status": status},
    }
    if promotion is not None:
        metrics["fileSummary"]["activityRefs"] = [promotion.id]
        if promotion.manifest is not None:
            metrics["fileSummary"]["extensions"] = {"manifest": promotion.manifest}
    if errors:
        metrics["statusSummary"]["errors"] = [e.wire() for e in errors]
    return metrics


def invariant_violations(metrics: dict[str, Any], activities: list[Activity]) -> list[str]:
    """What breaks `input = output + failed` in a finished run, at run and activity level (empty = fine)."""
    problems = []
    records = metrics.get("recordSummary") or {}
    if not _balanced(
        records.get("inputRecordCount"), records.get("outputRecordCount"), records.get("failedRecordCount")
    ):
        problems.append(f"run: {records}")
    for activity in activities:
        s = activity.summary
        if activity.name == PROMOTION and not _balanced(s.input_records, s.output_records, s.failed_records):
            problems.append(f"{activity.name}: {s}")
    return problems


def _balanced(total: int | None, good: int | None, bad: int | None) -> bool:
    if total is None or total == UNKNOWN:
        return True
    return total == (good or 0) + (bad or 0)


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class RunBrief:
    """A run as lists and charts show it: its typed columns, without the document."""

    id: str
    flow_id: str
    status: str
    created_at: int
    started_at: int | None
    completed_at: int | None
    input_records: int | None
    output_records: int | None
    failed_records: int | None
    input_files: int | None
    input_bytes: int | None
    output_bytes: int | None
    retry_of: str | None
    window_start: int | None
    window_end: int | None
