"""A generated file source with failure knobs, so engine tests need no real storage.

Modelled on dlt's dummy destination: everything it returns is computed from its parameters, so a
test knows in advance how many files, bytes, rows and bad rows a run must report, and it can make
any step fail on purpose, as a retryable or a terminal failure.

Files are "dummy/part-0000.csv", "dummy/part-0001.csv", …: UTF-8 CSV, a header line then one line
per row, "\\n" line endings, no quoting needed (no value holds a comma or a quote). The content, and
so the sizes, depend only on the parameters; file i was last modified at `modifiedMs + i * 60_000`.

Parameters (the connection's auth params; an unknown name is an error, so a typo cannot pass
silently):

- `files` (int, default 3): how many files the source holds.
- `rows` (int, default 1000): data rows per file (the header is not counted).
- `badRows` (int, default 0): rows per file whose numeric column holds "not-a-number" instead of a
  number; which rows is decided by `seed`. The numeric column is `amount`, or `id` when there is no
  `amount`; asking for bad rows without either column is an error. A run over the whole source reads
  `files * rows` records of which `files * badRows` are bad.
- `columns` (list of str, default ["id", "name", "amount", "when"]): the header, in order. `id` is
  an integer unique across files (file i, row r → i * rows + r + 1), `name` a short text, `amount`
  a decimal with two places, `when` an ISO-8601 UTC date-time ("2024-01-01T00:01:00Z"); any other
  column holds "{column}-{id}".
- `failOn` ("list" | "open" | "test" | "explore" | null, default null): that method raises instead
  of answering.
- `failKind` ("transient" | "terminal", default "transient"): the injected failure is
  SourceUnreachable (Transient, worth a retry) or SourceRefused (Terminal).
- `failAfterBytes` (int | null, default null): every stream returned by `open()` raises
  SourceUnreachable once that many bytes of the file have been read from it (the reader receives at
  most that many); a file no longer than that reads normally.
- `seed` (int, default 0): varies the generated values and which rows are bad.
- `modifiedMs` (int, default 1704067200000, 2024-01-01T00:00:00Z): last-modified time of file 0.
"""

from __future__ import annotations

import builtins
import csv
import io
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    SourceObject,
    SourceRefused,
    SourceUnreachable,
)

FOLDER = "dummy"
DEFAULT_COLUMNS = ("id", "name", "amount", "when")
BAD_VALUE = "not-a-number"
KNOBS = {"files", "rows", "badRows", "columns", "failOn", "failKind", "failAfterBytes", "seed", "modifiedMs"}
OPERATIONS = ("list", "open", "test", "explore")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")


def _int(params: dict[str, Any], name: str, default: int | None) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConnectorError(f"dummy source: {name} must be a non-negative integer, not {value!r}")
    return value


class DummySource:
    """Deterministic CSV files generated from the parameters documented above."""

    def __init__(self, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - KNOBS)
        if unknown:
            raise ConnectorError(f"dummy source: unknown parameters {unknown}; known: {sorted(KNOBS)}")
        self.files = _int(params, "files", 3) or 0
        self.rows = _int(params, "rows", 1000) or 0
        self.bad_rows = _int(params, "badRows", 0) or 0
        self.fail_after_bytes = _int(params, "failAfterBytes", None)
        self.seed = _int(params, "seed", 0) or 0
        self.modified_ms = _int(params, "modifiedMs", int(_EPOCH.timestamp() * 1000)) or 0
        columns = params.get("columns", list(DEFAULT_COLUMNS))
        if (
            not isinstance(columns, builtins.list)
            or not columns
            or not all(isinstance(c, str) and c for c in columns)
            or len(set(columns)) != len(columns)
        ):
            raise ConnectorError(f"dummy source: columns must be a list of distinct names, not {columns!r}")
        self.columns: builtins.list[str] = columns
        self.fail_on: str | None = params.get("failOn")
        if self.fail_on not in (*OPERATIONS, None):
            raise ConnectorError(
                f"dummy source: failOn must be one of {OPERATIONS} or null, not {self.fail_on!r}"
            )
        self.fail_kind: str = params.get("failKind") or "transient"
        if self.fail_kind not in ("transient", "terminal"):
            raise ConnectorError(
                f"dummy source: failKind must be transient or terminal, not {self.fail_kind!r}"
            )
        if self.bad_rows > self.rows:
            raise ConnectorError(f"dummy source: badRows ({self.bad_rows}) exceeds rows ({self.rows})")
        self.numeric_column = next((c for c in ("amount", "id") if c in columns), None)
        if self.bad_rows and self.numeric_column is None:
            raise ConnectorError("dummy source: badRows needs an 'amount' or 'id' column to spoil")
        self.closed = False
        self._sizes: dict[int, int] = {}

    # -- the generated data (public so tests can derive what a run must report) ---------------------

    def path(self, index: int) -> str:
        return f"{FOLDER}/part-{index:04d}.csv"

    def bad_row_numbers(self, index: int) -> builtins.list[int]:
        """0-based data rows of file `index` that carry BAD_VALUE."""
        rng = random.Random(f"{self.seed}:bad:{index}")
        return sorted(rng.sample(range(self.rows), self.bad_rows))

    def content(self, index: int) -> bytes:
        rng = random.Random(f"{self.seed}:values:{index}")
        bad = set(self.bad_row_numbers(index))
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for r in range(self.rows):
            row_id = index * self.rows + r + 1
            values = {
                "id": str(row_id),
                "name": f"{rng.choice(_NAMES)} {row_id}",
                "amount": f"{rng.randrange(0, 10_000_000) / 100:.2f}",
                "when": (_EPOCH + timedelta(minutes=row_id)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if r in bad and self.numeric_column is not None:
                values[self.numeric_column] = BAD_VALUE
            writer.writerow([values.get(c, f"{c}-{row_id}") for c in self.columns])
        return out.getvalue().encode()

    def _object(self, index: int) -> SourceObject:
        if index not in self._sizes:
            self._sizes[index] = len(self.content(index))
        return SourceObject(self.path(index), self._sizes[index], self.modified_ms + index * 60_000)

    def _index(self, path: str) -> int | None:
        """The file index named by `path`, or None when `path` is not one of the files."""
        name = path.strip("/")
        for index in range(self.files):
            if self.path(index) == name:
                return index
        return None

    def _fail(self, operation: str) -> None:
        if self.fail_on == operation:
            error = SourceUnreachable if self.fail_kind == "transient" else SourceRefused
            raise error(f"dummy source: injected {self.fail_kind} failure in {operation}()")

    # -- FileSource ----------------------------------------------------------------------------------

    def test(self) -> None:
        self._fail("test")

    def list(self, path: str, *, recursive: bool = False) -> Iterator[SourceObject]:
        self._fail("list")
        if path.strip("/") in ("", FOLDER):
            return iter([self._object(i) for i in range(self.files)])
        index = self._index(path)
        if index is None:
            raise ObjectMissing(f"dummy source: no file or folder {path!r}")
        return iter([self._object(index)])

    def open(self, path: str) -> BinaryIO:
        self._fail("open")
        index = self._index(path)
        if index is None:
            raise ObjectMissing(f"dummy source: no file {path!r}")
        data = self.content(index)
        if self.fail_after_bytes is None or self.fail_after_bytes >= len(data):
            return io.BytesIO(data)
        return io.BufferedReader(_FailingStream(data, self.fail_after_bytes, path))

    def explore(self, path: str | None = None) -> builtins.list[ExploreItem]:
        self._fail("explore")
        where = (path or "").strip("/")
        if where == "":
            return [ExploreItem("folder", FOLDER, FOLDER)]
        if where == FOLDER:
            return [
                ExploreItem("file", self.path(i).rsplit("/", 1)[1], self.path(i)) for i in range(self.files)
            ]
        if self._index(where) is not None:
            raise ObjectMissing(f"dummy source: {path!r} is a file, not a folder")
        raise ObjectMissing(f"dummy source: no folder {path!r}")

    def close(self) -> None:
        self.closed = True


class _FailingStream(io.RawIOBase):
    """Bytes that break like a dropped connection after `limit` of them have been read."""

    def __init__(self, data: bytes, limit: int, path: str) -> None:
        super().__init__()
        self._data = data
        self._limit = limit
        self._path = path
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._position >= self._limit:
            raise SourceUnreachable(
                f"dummy source: connection dropped after {self._limit} bytes of {self._path!r}"
            )
        end = min(self._position + len(view), self._limit)
        count = end - self._position
        view[:count] = self._data[self._position : end]
        self._position = end
        return count
