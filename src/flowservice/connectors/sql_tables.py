"""What the database table sources (postgres.py, mysql.py) have in common, kept once so they cannot drift.

Both reduce every column to a "kind". Each dialect decides the kind of its own type names and how a
column of that kind is SELECTed (quoting, casts and the driver differ); what follows from the kind
alone is the same for every database and lives here: the XDM type explore shows, the Arrow type of
the batches (fixed by the columns, never by the values, so every batch of a read has one schema), and
how a delta column is compared with a window. Likewise the connection string's target, the messages
that name it, the choice of the delta column and JSON-ready preview values: a flow that moves from one
database to another should see the same rules.

The kinds:

| kind | holds | XDM | Arrow |
|---|---|---|---|
| integer | whole numbers | integer | int64 |
| unsigned | whole numbers beyond int64 (MySQL's bigint unsigned) | integer | uint64 |
| numeric | exact decimals, read as doubles (postgres.py tells the trade-off) | number | float64 |
| float | floating-point numbers | number | float64 |
| boolean | true/false | boolean | bool |
| date | calendar dates | string/date | date32 |
| datetime | a date and time without a zone, taken to be UTC | string/date-time | timestamp[us] |
| instant | a point in time, read in a UTC session | string/date-time | timestamp[us, UTC] |
| array | arrays, read as JSON text | array | string |
| text, binary, spatial, bit, other | anything else, read as text by an expression of the dialect | string | string |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

import pyarrow as pa

from flowservice.connectors.base import ConnectorError, ObjectMissing, SourceRefused, TableColumn
from flowservice.connectors.connection_string import ConnectionString, from_params

Kind = Literal[
    "integer",
    "unsigned",
    "numeric",
    "float",
    "boolean",
    "date",
    "datetime",
    "instant",
    "array",
    "text",
    "binary",
    "spatial",
    "bit",
    "other",
]

_XDM: dict[Kind, tuple[str, str | None]] = {
    "integer": ("integer", None),
    "unsigned": ("integer", None),
    "numeric": ("number", None),
    "float": ("number", None),
    "boolean": ("boolean", None),
    "date": ("string", "date"),
    "datetime": ("string", "date-time"),
    "instant": ("string", "date-time"),
    "array": ("array", None),
}
_ARROW: dict[Kind, pa.DataType] = {
    "integer": pa.int64(),
    "unsigned": pa.uint64(),
    "numeric": pa.float64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "instant": pa.timestamp("us", tz="UTC"),
}
# The kinds a delta column may have: only these order like time, so only these can bound a window.
TEMPORAL: frozenset[Kind] = frozenset({"date", "datetime", "instant"})
NUMERIC: frozenset[Kind] = frozenset({"integer", "unsigned", "numeric", "float"})


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a source table; its kind alone decides its XDM and Arrow types (module docstring)."""

    name: str
    source_type: str
    kind: Kind

    def table_column(self) -> TableColumn:
        xdm_type, xdm_format = _XDM.get(self.kind, ("string", None))
        return TableColumn(self.name, self.source_type, xdm_type, xdm_format)

    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, _ARROW.get(self.kind, pa.string()))


def window_bounds(kind: Kind, window_ms: tuple[int, int]) -> tuple[Any, Any]:
    """The (start, end] bounds of a window for a delta column of `kind`, as query parameters.

    Numeric deltas are compared with the window's epoch milliseconds themselves. An instant column is
    compared as instants, so its bounds carry UTC; date and datetime columns are taken to hold UTC
    wall-clock values, so their bounds are naive, to compare like with like.
    """
    start, end = window_ms
    if kind in NUMERIC:
        return start, end
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    low, high = epoch + timedelta(milliseconds=start), epoch + timedelta(milliseconds=end)
    if kind == "instant":
        return low, high
    return low.replace(tzinfo=None), high.replace(tzinfo=None)


def _array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    return pa.array(values, type=type_)


def record_batch(
    rows: Sequence[Sequence[Any]],
    schema: pa.Schema,
    array: Callable[[Sequence[Any], pa.DataType], pa.Array] = _array,
) -> pa.RecordBatch:
    """Rows as the driver returned them → one Arrow batch with `schema`'s types, even with no rows.

    Built column by column, which Arrow does far faster than row by row; `array` is for a driver whose
    values Arrow cannot take as they are.
    """
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [array(values, field.type) for values, field in zip(columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def jsonable(value: Any) -> Any:
    """A value of a preview row as JSON can carry it: ISO dates and times, and NULL for NaN/Infinity,
    which JSON has no numbers for."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class SqlSource:
    """A database reached with a connection string, as its messages name it (never with its password)."""

    label: ClassVar[str]  # the server in messages, e.g. "PostgreSQL"
    default_port: ClassVar[int]
    # The types a delta column may have, in the dialect's own names, for the message that refuses one.
    delta_types: ClassVar[str]

    def __init__(self, params: dict[str, Any]) -> None:
        self.cs: ConnectionString = from_params(params)
        self.host = self.cs.host
        self.port = self.cs.port or self.default_port
        self.database = self.cs.database

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, port={self.port}, database={self.database!r})"

    def _where(self, table: str | None = None) -> str:
        where = f"{self.label} at {self.host}:{self.port}, database {self.database!r}"
        return where + (f", table {table!r}" if table else "")

    def _scrub(self, text: str) -> str:
        password = self.cs.password
        return text.replace(password, "***") if password else text

    def _closed_early(self, table: str) -> ConnectorError:
        """For a read whose connection close() took away mid-way: the rows it gave are not the whole
        window, and a caller that took them for a finished read would skip the rest."""
        return ConnectorError(f"{self._where(table)}: the read was closed before it finished")

    def _delta(self, columns: Sequence[Column], delta_column: str, table: str) -> Column:
        """The column a window is compared with; its name matched exactly, else without case, since
        MySQL's column names ignore case and a user may not spell it as the catalog does."""
        matches = [c for c in columns if c.name == delta_column] or [
            c for c in columns if c.name.casefold() == delta_column.casefold()
        ]
        if len(matches) != 1:
            raise ObjectMissing(
                f"{self._where(table)}: delta column {delta_column!r} is not a column of the table"
            )
        delta = matches[0]
        if delta.kind not in TEMPORAL | NUMERIC:
            raise SourceRefused(
                f"{self._where(table)}: delta column {delta.name!r} is {delta.source_type}; "
                f"a delta column must be {self.delta_types}"
            )
        return delta
