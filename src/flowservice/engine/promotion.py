"""Promotion Activity: staged files → Arrow batches → mapping → validation → Parquet parts + diagnostics.

Everything happens per Arrow batch (a few MiB of a file), so memory stays bounded whatever the file
size. Rows are split vectorized into good and failed; Python objects are made only for failed rows,
to describe them in the diagnostics. The parts and diagnostics are written into a staging folder;
committing that folder is the caller's job (exactly once, under the run's lease).

Partial ingestion (DESIGN.md §4): with no threshold one failed record rejects the batch; with
`partialIngestionPercent` the good rows are kept while failed % ≤ threshold. A rejected batch
commits no data: its output is 0 and every record it read counts as failed, so that input =
output + failed holds for every run, while the per-code errors keep the counts of the records
that were actually bad.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flowservice.domain import expressions
from flowservice.domain.xdm import Schema
from flowservice.engine import arrow_io, mapping, validation
from flowservice.engine.arrow_io import BadRecord, SourceBatch, UnreadableFile
from flowservice.engine.copy import StagedFile

PART_TARGET_BYTES = 512 * 2**20  # roll to a new Parquet file past this size
ROW_GROUP_BYTES = 64 * 2**20  # buffer this much Arrow data per row group
ERROR_FILE_BYTES = 128 * 2**20
SAMPLE_SIZE = 100
HEAD_BYTES = 64 * 1024

Checkpoint = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Rule:
    """One mapping of a mapping set, ready to evaluate."""

    kind: Literal["ATTRIBUTE", "CONSTANT", "EXPRESSION"]
    source: str
    destination: str
    expression: expressions.Expr | None = None

    @classmethod
    def of(cls, mapping_doc: dict[str, Any]) -> Rule:
        kind = str(mapping_doc.get("sourceType", "ATTRIBUTE")).upper()
        source = str(mapping_doc.get("source", ""))
        expression = expressions.parse(source) if kind == "EXPRESSION" else None
        return cls(kind, source, str(mapping_doc["destination"]), expression)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Plan:
    schema: Schema
    rules: tuple[Rule, ...] | None  # None: source fields named like the schema's fields
    data: dict[str, Any]  # the source connection's `data` (format and its properties)
    partial_percent: float | None
    diagnostics: bool
    max_uncompressed: int | None = None


@dataclass(slots=True)
class FileOutcome:
    staged: StagedFile
    records: int = 0
    failed: int = 0
    complete: bool = True  # read to its end
    error: str | None = None  # why it could not be read, when it could not


@dataclass(slots=True)
class Result:
    input_records: int = 0
    output_records: int = 0
    failed_records: int = 0
    bad_records: int = 0  # records that really failed a check (== failed_records unless rejected)
    output_bytes: int = 0
    parts: list[str] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    rejected: bool = False  # the data was not kept (threshold exceeded, or nothing could be read)
    diagnostics_written: bool = False

    @property
    def failed_percent(self) -> float:
        return 100.0 * self.bad_records / self.input_records if self.input_records else 0.0


def promote(files: Sequence[StagedFile], plan: Plan, out: Path, checkpoint: Checkpoint) -> Result:
    """Promote the staged files into `out` (parts, `input_files`, diagnostics); decide acceptance."""
    result = Result()
    counts: Counter[str] = Counter()
    target = validation.arrow_schema(plan.schema)
    with (
        _PartWriter(out, target, checkpoint) as parts,
        _Diagnostics(out, enabled=plan.diagnostics) as diagnostics,
    ):
        for staged in files:
            outcome = FileOutcome(staged)
            result.files.append(outcome)
            try:
                for source_batch in _batches(staged, plan):
                    _promote_batch(source_batch, staged, plan, parts, diagnostics, outcome, counts)
            except UnreadableFile as exc:  # reported as a file error, not as records
                outcome.complete = False
                outcome.error = str(exc)
            result.input_records += outcome.records
            result.bad_records += outcome.failed
            checkpoint("promotion.file_done")
        result.parts = parts.names
        result.output_bytes = parts.bytes_written
        written_good = parts.rows
    result.error_counts = {code: n for code, n in counts.items() if n}
    unreadable = [f for f in result.files if f.error is not None]
    result.rejected = _rejected(result, plan, unreadable)
    if result.rejected:
        for name in result.parts:
            (out / name).unlink(missing_ok=True)
        result.parts, result.output_bytes = [], 0
        result.output_records, result.failed_records = 0, result.input_records
    else:
        result.output_records = written_good
        result.failed_records = result.bad_records
    result.diagnostics_written = diagnostics.written
    _write_manifest(out, result)
    return result


def _rejected(result: Result, plan: Plan, unreadable: list[FileOutcome]) -> bool:
    if unreadable and (plan.partial_percent is None or len(unreadable) == len(result.files)):
        return True
    if result.bad_records == 0:
        return False
    if plan.partial_percent is None:
        return True
    return result.failed_percent > plan.partial_percent


def _batches(staged: StagedFile, plan: Plan) -> Iterator[SourceBatch]:
    with open(staged.staged, "rb") as head_reader:
        head = head_reader.read(HEAD_BYTES)
    spec = arrow_io.spec_from_connection(plan.data, staged.source.path, head)
    with open(staged.staged, "rb") as stream:
        yield from arrow_io.read(stream, spec, max_uncompressed=plan.max_uncompressed)


def _promote_batch(
    source_batch: SourceBatch,
    staged: StagedFile,
    plan: Plan,
    parts: _PartWriter,
    diagnostics: _Diagnostics,
    outcome: FileOutcome,
    counts: Counter[str],
) -> None:
    for bad in source_batch.bad:
        diagnostics.parse_error(staged.source.path, bad)
        counts[bad.code] += 1
    outcome.records += len(source_batch.bad)
    outcome.failed += len(source_batch.bad)
    if any(b.remainder for b in source_batch.bad):
        outcome.complete = False
    batch = source_batch.batch
    rows = batch.num_rows
    if rows == 0:
        return
    outcome.records += rows
    leaves, failures = _map(batch, plan)
    converted: dict[str, pa.Array] = {}
    for leaf in plan.schema.fields:
        values, leaf_failures = validation.convert(leaf, leaves.get(leaf.name, pa.nulls(rows)))
        converted[leaf.name] = values
        failures += leaf_failures
    failing, per_code = validation.summarize(failures, rows)
    counts.update(per_code)
    failed_rows = pc.sum(failing.cast(pa.int64())).as_py() or 0
    outcome.failed += failed_rows
    assembled = validation.assemble(plan.schema, converted, rows)
    parts.write(assembled.filter(pc.invert(failing)) if failed_rows else assembled)
    if failed_rows:
        diagnostics.row_errors(staged.source.path, source_batch, batch, failing, failures)


def _map(batch: pa.RecordBatch, plan: Plan) -> tuple[dict[str, pa.Array], list[validation.Failure]]:
    """Source columns → one array per destination leaf, with the rows where a mapping failed."""
    failures: list[validation.Failure] = []
    if plan.rules is None:
        return {leaf.name: mapping.column(batch, leaf.name) for leaf in plan.schema.fields}, failures
    leaves: dict[str, pa.Array] = {}
    for rule in plan.rules:
        if rule.kind == "ATTRIBUTE":
            leaves[rule.destination] = mapping.column(batch, rule.source)
        elif rule.kind == "CONSTANT":
            leaves[rule.destination] = mapping.constant(_constant(rule.source), batch.num_rows)
        else:
            assert rule.expression is not None
            evaluated = mapping.evaluate(rule.expression, batch)
            leaves[rule.destination] = evaluated.values
            if evaluated.failed is not None:
                reason = evaluated.reason or "the mapping expression failed"
                failures.append(
                    validation.Failure(evaluated.failed, validation.CONVERSION, rule.destination, reason)
                )
    return leaves, failures


def _constant(text: str) -> Any:
    """A CONSTANT's source is a JSON value when it parses as one ("42", "true"), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class _PartWriter:
    """Parquet parts of healthy size: batches are buffered into ~64 MiB row groups, files roll at ~512 MiB."""

    def __init__(self, out: Path, schema: pa.Schema, checkpoint: Checkpoint) -> None:
        self.out = out
        self.schema = schema
        self.checkpoint = checkpoint
        self.names: list[str] = []
        self.rows = 0
        self.bytes_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0

    def __enter__(self) -> _PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._flush()
        self._close()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._buffer.append(batch)
        self._buffered += batch.nbytes
        self.rows += batch.num_rows
        if self._buffered >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            name = f"part-{len(self.names):05d}.parquet"
            self.names.append(name)
            self._writer = pq.ParquetWriter(self.out / name, self.schema, compression="snappy")
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._buffer, self._buffered = [], 0
        self.checkpoint("promotion.row_group_written")
        if (self.out / self.names[-1]).stat().st_size >= PART_TARGET_BYTES:
            self._close()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            path = self.out / self.names[-1]
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            self.bytes_written += path.stat().st_size


class _Diagnostics:
    """Failed records with their reasons (`row_errors/`) and a sample (`row_error_samples.json`).

    Written only when the flow enables error diagnostics, as on Adobe; the per-code counts are
    reported either way.
    """

    def __init__(self, out: Path, *, enabled: bool) -> None:
        self.enabled = enabled
        self.folder = out / "row_errors"
        self.sample_path = out / "row_error_samples.json"
        self.sample: list[dict[str, Any]] = []
        self.written = False
        self._handle: Any = None
        self._file_index = 0
        self._bytes = 0

    def __enter__(self) -> _Diagnostics:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
        if self.enabled and self.written:
            self.sample_path.write_text(json.dumps(self.sample, indent=2, default=_json_default))

    def parse_error(self, path: str, bad: BadRecord) -> None:
        entry: dict[str, Any] = {"file": path, "record": bad.record}
        if bad.line is not None:
            entry["line"] = bad.line
        entry["errors"] = [{"code": bad.code, "field": None, "message": bad.message}]
        if bad.raw is not None:
            entry["raw"] = bad.raw
        self._emit(entry)

    def row_errors(
        self,
        path: str,
        source_batch: SourceBatch,
        batch: pa.RecordBatch,
        failing: pa.Array,
        failures: list[validation.Failure],
    ) -> None:
        if not self.enabled:
            return
        indices = pc.indices_nonzero(failing)
        failing_rows = batch.take(indices).to_pylist()
        per_failure = [pc.take(pc.fill_null(f.rows, False), indices).to_pylist() for f in failures]
        records = source_batch.records
        for position, (index, data) in enumerate(zip(indices.to_pylist(), failing_rows, strict=True)):
            record = records[index] if records is not None else source_batch.first_record + index
            errors = [
                {"code": f.code, "field": f.field, "message": f.message}
                for f, flags in zip(failures, per_failure, strict=True)
                if flags[position]
            ]
            self._emit({"file": path, "record": record, "errors": errors, "data": data})

    def _emit(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = json.dumps(entry, default=_json_default) + "\n"
        if self._handle is None or self._bytes >= ERROR_FILE_BYTES:
            if self._handle is not None:
                self._handle.close()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = open(  # noqa: SIM115 - kept open across calls, closed in __exit__ or on roll-over
                self.folder / f"part-{self._file_index:05d}.json", "w", encoding="utf-8"
            )
            self._file_index += 1
            self._bytes = 0
        self._handle.write(line)
        self._bytes += len(line)
        self.written = True
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(entry)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _write_manifest(out: Path, result: Result) -> None:
    """`input_files`: every source file of the run, its size, records, and whether it was read whole."""
    files = [
        {
            "path": f.staged.source.path,
            "size": f.staged.size,
            "lastModified": f.staged.source.modified_ms,
            "records": f.records,
            "failedRecords": f.failed,
            "status": "processed" if f.complete and f.error is None else "failed",
            **({"error": f.error} if f.error else {}),
        }
        for f in result.files
    ]
    (out / "input_files").write_text(json.dumps({"files": files}, indent=2))
