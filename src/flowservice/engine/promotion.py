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
import queue
import threading
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
# Arrow data buffered per row group: ~240k rows of ten columns (Polars writes 262,144 rows). Twice as
# much took ~10% longer on the ingestion benchmark: more memory to fault in, for no faster writing.
ROW_GROUP_BYTES = 32 * 2**20
ERROR_FILE_BYTES = 128 * 2**20
LANES = max(1, min(4, os.cpu_count() or 1))
BLOCK_SIZE = 8 << 20  # bytes of source text per batch
SAMPLE_SIZE = 100
HEAD_BYTES = 64 * 1024

Checkpoint = Callable[[str], None]
_OUTCOMES = threading.Lock()  # lanes update the counts of the file they share


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


def promote(
    files: Sequence[StagedFile],
    plan: Plan,
    out: Path,
    checkpoint: Checkpoint,
    *,
    decide: bool = True,
    part_prefix: str = "",
) -> Result:
    """Promote the staged files into `out` (parts, `input_files`, diagnostics); decide acceptance.

    A slice of a run (`decide=False`) keeps its parts whatever it found: acceptance is decided for
    the whole run once every slice is done (`combine`). `part_prefix` keeps slices' part names apart.

    This thread parses (Arrow releases the GIL while it does); each batch then goes to one of
    `LANES` lanes, threads that map, validate and write Parquet parts of their own. The work of a
    batch is independent of every other batch, so all cores stay busy without a fixed pipeline.
    """
    result = Result()
    target = validation.arrow_schema(plan.schema)
    # Dictionary-encode only what the schema says has few values: trying it on unique text (ids,
    # e-mails) costs a hash table per page, then falls back anyway.
    dictionary = [".".join(f.path) for f in plan.schema.fields if f.enum is not None or f.type == "boolean"]
    with _Diagnostics(out, enabled=plan.diagnostics) as diagnostics:
        names = _PartNames(part_prefix)
        lanes = [
            _Lane(_PartWriter(out, target, checkpoint, dictionary, names), plan, diagnostics)
            for _ in range(LANES)
        ]
        try:
            for staged in files:
                outcome = FileOutcome(staged)
                result.files.append(outcome)
                try:
                    for index, source_batch in enumerate(_batches(staged, plan)):
                        lanes[index % len(lanes)].submit(source_batch, staged, outcome)
                except UnreadableFile as exc:  # reported as a file error, not as records
                    outcome.complete = False
                    outcome.error = str(exc)
                for lane in lanes:
                    lane.wait()
                result.input_records += outcome.records
                result.bad_records += outcome.failed
                checkpoint("promotion.file_done")
        finally:
            for lane in lanes:  # every lane writes its last row group at once, on its own thread
                lane.finish()
            failures = [lane.close() for lane in lanes]
        first_failure = next((f for f in failures if f is not None), None)
        if first_failure is not None:
            raise first_failure
    counts: Counter[str] = Counter()
    for lane in lanes:
        counts.update(lane.counts)
    result.parts = sorted(name for lane in lanes for name in lane.parts.names)
    result.output_bytes = sum(lane.parts.bytes_written for lane in lanes)
    written_good = sum(lane.parts.rows for lane in lanes)
    result.error_counts = {code: n for code, n in counts.items() if n}
    unreadable = [f for f in result.files if f.error is not None]
    result.rejected = decide and _rejected(result, plan, unreadable)
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


def combine(results: Sequence[Result], plan: Plan) -> Result:
    """The result of a run promoted in slices (each with `decide=False`): exact sums of the slices'
    counts, its files in slice order, and acceptance decided over the whole, as `promote` would."""
    total = Result()
    counts: Counter[str] = Counter()
    for part in results:
        total.input_records += part.input_records
        total.bad_records += part.bad_records
        total.output_records += part.output_records
        total.output_bytes += part.output_bytes
        total.parts += part.parts
        total.files += part.files
        counts.update(part.error_counts)
        total.diagnostics_written = total.diagnostics_written or part.diagnostics_written
    total.error_counts = {code: n for code, n in counts.items() if n}
    total.rejected = _rejected(total, plan, [f for f in total.files if f.error is not None])
    if total.rejected:
        total.parts, total.output_bytes = [], 0
        total.output_records, total.failed_records = 0, total.input_records
    else:
        total.failed_records = total.bad_records
    return total


def write_manifest(out: Path, result: Result) -> None:
    _write_manifest(out, result)


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
        yield from arrow_io.read(stream, spec, block_size=BLOCK_SIZE, max_uncompressed=plan.max_uncompressed)


def _promote_batch(
    source_batch: SourceBatch,
    staged: StagedFile,
    plan: Plan,
    parts: _PartWriter,
    diagnostics: _Diagnostics,
    outcome: FileOutcome,
    counts: Counter[str],
) -> None:
    """Map, validate and write one batch; `counts` belongs to the lane, `outcome` is shared (locked)."""
    for bad in source_batch.bad:
        diagnostics.parse_error(staged.source.path, bad)
        counts[bad.code] += 1
    truncated = any(b.remainder for b in source_batch.bad)
    batch = source_batch.batch
    rows = batch.num_rows
    failed_rows = 0
    if rows:
        leaves, failures = _map(batch, plan)
        converted: dict[str, pa.Array] = {}
        for leaf in plan.schema.fields:
            values, leaf_failures = validation.convert(leaf, leaves.get(leaf.name, pa.nulls(rows)))
            converted[leaf.name] = values
            failures += leaf_failures
        failing, per_code = validation.summarize(failures, rows)
        counts.update(per_code)
        failed_rows = pc.sum(failing.cast(pa.int64())).as_py() or 0
        assembled = validation.assemble(plan.schema, converted, rows)
        parts.write(assembled.filter(pc.invert(failing)) if failed_rows else assembled)
        if failed_rows:
            diagnostics.row_errors(staged.source.path, source_batch, batch, failing, failures)
    with _OUTCOMES:
        outcome.records += len(source_batch.bad) + rows
        outcome.failed += len(source_batch.bad) + failed_rows
        if truncated:
            outcome.complete = False


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


class _PartNames:
    """Part file names, unique across lanes."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            name = f"part-{self._prefix}{self._next:05d}.parquet"
            self._next += 1
            return name


class _PartWriter:
    """Parquet parts of healthy size: batches are buffered into ~64 MiB row groups, files roll at ~512 MiB."""

    def __init__(
        self, out: Path, schema: pa.Schema, checkpoint: Checkpoint, dictionary: list[str], names: _PartNames
    ) -> None:
        self.out = out
        self.schema = schema
        self.checkpoint = checkpoint
        self.dictionary = dictionary
        self._names = names
        self.names: list[str] = []
        self.rows = 0
        self.bytes_written = 0
        self._writer: pq.ParquetWriter | None = None
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._buffer.append(batch)
        self._buffered += batch.nbytes
        self.rows += batch.num_rows
        if self._buffered >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        if self._writer is None:
            name = self._names.take()
            self.names.append(name)
            self._writer = pq.ParquetWriter(
                self.out / name, self.schema, compression="snappy", use_dictionary=self.dictionary
            )
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._buffer, self._buffered = [], 0
        self.checkpoint("promotion.row_group_written")
        if (self.out / self.names[-1]).stat().st_size >= PART_TARGET_BYTES:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            path = self.out / self.names[-1]
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())  # committed data must survive a crash after the commit
            self.bytes_written += path.stat().st_size


class _Lane:
    """A thread that maps, validates and writes the batches handed to it, into parts of its own."""

    def __init__(self, parts: _PartWriter, plan: Plan, diagnostics: _Diagnostics) -> None:
        self.parts = parts
        self.plan = plan
        self.diagnostics = diagnostics
        self.counts: Counter[str] = Counter()
        self.failure: BaseException | None = None
        self._work: queue.Queue[tuple[SourceBatch, StagedFile, FileOutcome] | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="promotion-lane", daemon=True)
        self._thread.start()

    def submit(self, source_batch: SourceBatch, staged: StagedFile, outcome: FileOutcome) -> None:
        if self.failure is not None:
            raise self.failure
        self._work.put((source_batch, staged, outcome))

    def wait(self) -> None:
        """Until every batch submitted so far is done."""
        self._work.join()
        if self.failure is not None:
            raise self.failure

    def finish(self) -> None:
        """Ask the lane to write its last row group and stop (`close` waits for it)."""
        self._work.put(None)

    def close(self) -> BaseException | None:
        """Wait for the lane to stop; the failure, if it had one."""
        self._thread.join()
        return self.failure

    def _last_part(self) -> None:
        """Finish the last row group. The part is closed even when that fails (a full disk): an open
        handle on a discarded part would keep its disk space taken for as long as the process lives."""
        if self.failure is None:
            try:
                self.parts.flush()
            except BaseException as exc:
                self.failure = exc
        try:
            self.parts.close()
        except BaseException as exc:
            self.failure = self.failure or exc

    def _run(self) -> None:
        while True:
            item = self._work.get()
            try:
                if item is None:
                    self._last_part()
                    return
                if self.failure is None:
                    _promote_batch(*item[:2], self.plan, self.parts, self.diagnostics, item[2], self.counts)
            except BaseException as exc:  # kept for the reading thread, which raises it
                self.failure = exc
            finally:
                self._work.task_done()


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
        self._lock = threading.Lock()  # lanes report failed rows concurrently

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
        with self._lock:
            self._write(line, entry)

    def _write(self, line: str, entry: dict[str, Any]) -> None:
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
