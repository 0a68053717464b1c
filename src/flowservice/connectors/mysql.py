"""MySQL and MariaDB as a table source (one class for both connection specs), with PyMySQL.

PyMySQL is pure Python, so it installs everywhere without a C client library, and it speaks to both
servers alike; nothing here differs between MySQL and MariaDB. This module is imported only when such
a source is made (the registry imports it lazily).

Connections. The connection string (connection_string.py) gives host, port, database, user and
password. The password is sent as UTF-8 (PyMySQL would encode a str as latin-1). TLS follows
`ConnectionString.tls()`: "disable" turns it off, "prefer" is PyMySQL's own default (TLS when the server
offers it, unverified), "require" insists on TLS without checking the certificate, "verify-full" checks
it against the system's CA store and the host name. No option file is read, and `Server` is always a
TCP host. Connect timeout 5 s; sessions run with time_zone '+00:00' and read-only transactions.

Tables are the base tables and views of the connection's database that information_schema shows the
user (MySQL shows only those the user has some privilege on), named "db.table" in `path`. A table
argument must be one of them (or the bare table name); it reaches SQL only as a backtick-quoted
identifier with backticks doubled, and with "%" doubled too, because PyMySQL interpolates parameters
with `%` (queries here always take parameters, so "%s" in a name can never become a placeholder).

Types, from information_schema.columns. The kind (sql_tables.py) decides XDM type, SELECT expression
and Arrow type; Arrow types come from the columns, so every batch of a read has the same schema:

| MySQL / MariaDB | XDM | selected as | Arrow |
|---|---|---|---|
| tinyint(1), bool | boolean | itself (0/1, any non-zero is true) | bool |
| tinyint, smallint, mediumint, int, bigint | integer | itself | int64 (bigint unsigned: uint64) |
| decimal | number | itself, converted to float by the driver | float64 |
| float, double | number | itself | float64 |
| date | string/date | itself; zero dates read as NULL | date32 |
| datetime | string/date-time | itself; zero dates read as NULL | timestamp[us] (naive; read as UTC) |
| timestamp | string/date-time | in the session's UTC | timestamp[us, UTC] |
| char, varchar, text, enum, set, json | string | itself | string |
| binary, varbinary, blob | string | `HEX(…)` | string |
| geometry types | string | `ST_AsText(…)` (WKT) | string |
| anything else (time, year, bit, uuid, inet, …) | string | `CAST(… AS CHAR)` (bit as its number) | string |

decimal → float64 keeps 15–17 significant digits (see postgres.py for the trade-off).

Incremental reads: `WHERE delta > %s AND delta <= %s ORDER BY delta`, with the window's bounds as UTC
`DATETIME(6)` values for date, datetime and timestamp columns (timestamp compared in the session's
UTC) and as the numbers themselves for numeric columns: numeric deltas are compared to the window in
epoch milliseconds. A delta column that is not a column of the table is ObjectMissing, one of
another type SourceRefused.

Reads stream with PyMySQL's unbuffered `SSCursor` on a connection of their own, `fetchmany(batch_rows)`
at a time, each batch built column-wise with `pyarrow.array`. A read abandoned half-way closes its
connection instead of draining the rest of the result. PyMySQL's row parsing is the cost of a read, so
the driver is spared what Arrow does faster: decimals become floats directly, and dates and times are
left as the server's text and parsed by Arrow a column at a time (value by value, with zero dates as
NULL, only for a batch where that fails); that took a 1M-row read from ~135k to ~220k rows/s.

Errors by MySQL error number: 2003/2002/2005/2006/2013 (can't connect, gone, lost), 1040 (too many
connections), 1205/1213 (lock timeout, deadlock) and interruptions → SourceUnreachable; 1045 (access
denied), 1044, 1142, 1143, 1130, 1227 and TLS failures → SourceRefused; 1049 (unknown database), 1146,
1054 → ObjectMissing. Messages name host, port, database and table, never the password.
"""

from __future__ import annotations

import builtins
import ssl
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pymysql  # type: ignore[import-untyped, unused-ignore]
import pymysql.converters  # type: ignore[import-untyped, unused-ignore]
import pymysql.cursors  # type: ignore[import-untyped, unused-ignore]
from pymysql.constants import FIELD_TYPE  # type: ignore[import-untyped, unused-ignore]

from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    SourceRefused,
    SourceUnreachable,
    TableColumn,
)
from flowservice.connectors.sql_tables import (
    TEMPORAL,
    Column,
    Kind,
    SqlSource,
    jsonable,
    record_batch,
    window_bounds,
)

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 600  # a sorted incremental read may take a while before its first row
WRITE_TIMEOUT_S = 60
DEFAULT_PORT = 3306

_INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
_SPATIAL = {
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
}
_DATES: dict[str, Kind] = {"date": "date", "datetime": "datetime", "timestamp": "instant"}

_UNREACHABLE = {1040, 1053, 1205, 1213, 1317, 1927, 1969, 2002, 2003, 2005, 2006, 2013, 2055, 3024, 4031}
_REFUSED = {1044, 1045, 1130, 1142, 1143, 1227, 1251, 1698, 1820, 1862, 2026, 3118, 3159}
_MISSING = {1049, 1054, 1146}


def _valid(convert: Callable[[Any], Any], wanted: type) -> Callable[[Any], Any]:
    """PyMySQL's converter, with what it cannot parse (zero dates are returned as text) as NULL."""

    def converted(value: Any) -> Any:
        result = None if value is None else convert(value)
        return result if isinstance(result, wanted) else None

    return converted


# PyMySQL's converters, except: decimals as floats (no Decimal per value), and dates and times left as
# the server's text, which Arrow parses a whole column at a time (temporal_array).
_CONVERSIONS: dict[Any, Any] = dict(pymysql.converters.conversions)
_CONVERSIONS.update({FIELD_TYPE.DECIMAL: float, FIELD_TYPE.NEWDECIMAL: float})
for _type in (FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE, FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP):
    _CONVERSIONS.pop(_type, None)
_SLOW_DATE = _valid(pymysql.converters.convert_date, date)
_SLOW_DATETIME = _valid(pymysql.converters.convert_datetime, datetime)


def temporal_array(values: Sequence[str | None], type_: pa.DataType) -> pa.Array:
    """Dates and times from the server's text: one vectorised cast; value by value (zero dates and other
    values Arrow cannot parse become NULL) only for a column where the cast fails."""
    text = pa.array(values, type=pa.string())
    is_date = pa.types.is_date(type_)
    try:
        return text.cast(type_ if is_date else pa.timestamp("us")).cast(type_)
    except pa.ArrowInvalid:
        convert = _SLOW_DATE if is_date else _SLOW_DATETIME
        return pa.array([convert(v) for v in values], type=type_)


def quote(name: str) -> str:
    """A backtick-quoted identifier for a query run with parameters (so "%" is doubled as well)."""
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def kind_of(data_type: str, column_type: str) -> Kind:
    """The kind of a column from information_schema's DATA_TYPE and COLUMN_TYPE."""
    data_type, column_type = data_type.lower(), column_type.lower()
    if data_type in ("tinyint", "bool", "boolean") and column_type.startswith(("tinyint(1)", "bool")):
        return "boolean"
    if data_type in _INTEGERS:
        return "unsigned" if data_type == "bigint" and "unsigned" in column_type else "integer"
    if data_type in ("decimal", "numeric"):
        return "numeric"
    if data_type in ("float", "double", "real", "double precision"):
        return "float"
    if data_type in _DATES:
        return _DATES[data_type]
    if data_type in _TEXT:
        return "text"
    if data_type in _BINARY:
        return "binary"
    if data_type in _SPATIAL:
        return "spatial"
    if data_type == "bit":
        return "bit"
    return "other"


def select_expr(column: Column) -> str:
    """The expression that reads a column as its Arrow type expects it, named like the column."""
    ident = quote(column.name)
    if column.kind == "binary":
        return f"HEX({ident}) AS {ident}"
    if column.kind == "spatial":
        return f"ST_AsText({ident}) AS {ident}"
    if column.kind == "bit":
        return f"CAST({ident} + 0 AS CHAR) AS {ident}"
    if column.kind == "other":
        return f"CAST({ident} AS CHAR) AS {ident}"
    return ident


def _array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """A column of a batch: booleans arrive as 0/1 and dates and times as the server's text (so that
    Arrow, not the driver, parses them), which `pa.array` alone would not take."""
    if type_ == pa.bool_():  # 0/1 from tinyint(1)
        return pa.array(values, type=pa.int64()).cast(pa.bool_())
    if pa.types.is_temporal(type_):
        return temporal_array(values, type_)
    return pa.array(values, type=type_)


def _text(value: Any) -> str:
    """information_schema values: MySQL 8 returns some as bytes."""
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value)


class MySQLSource(SqlSource):
    """The tables of one MySQL or MariaDB database, reached with a connection string (module docstring)."""

    label = "MySQL/MariaDB"
    default_port = DEFAULT_PORT
    delta_types = "a date, a datetime, a timestamp or a number"

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.tls = self.cs.tls()
        self._conn: Any = None
        self._reading: dict[Any, Any] = {}  # connection → cursor of each read under way

    # -- connections ---------------------------------------------------------------------------------

    def _tls_args(self) -> dict[str, Any]:
        if self.tls == "disable":
            return {"ssl_disabled": True}
        if self.tls == "require":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return {"ssl": context}
        if self.tls == "verify-full":
            return {"ssl": ssl.create_default_context()}
        return {}  # "prefer": PyMySQL's default

    def _connect(self) -> Any:
        try:
            conn = pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.cs.user,
                password=self.cs.password.encode("utf-8"),
                database=self.database,
                charset="utf8mb4",
                conv=_CONVERSIONS,
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                write_timeout=WRITE_TIMEOUT_S,
                autocommit=True,
                local_infile=False,
                program_name="flowservice",
                **self._tls_args(),
            )
        except (pymysql.err.Error, OSError) as exc:
            raise self._error(exc) from None
        try:
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        except (pymysql.err.Error, OSError) as exc:
            _close(conn)
            raise self._error(exc) from None
        return conn

    def _catalog(self) -> Any:
        """The connection for catalog queries and previews, opened on first use and kept."""
        if self._conn is None or not self._conn.open:
            self._conn = self._connect()
        return self._conn

    def _query(self, query: str, params: Sequence[Any], table: str | None = None) -> list[Any]:
        try:
            with self._catalog().cursor() as cur:
                cur.execute(query, tuple(params))
                return list(cur.fetchall())
        except (pymysql.err.Error, OSError) as exc:
            error = self._error(exc, table)
            if isinstance(error, SourceUnreachable) and self._conn is not None:
                _close(self._conn)
                self._conn = None
            raise error from None

    # -- errors --------------------------------------------------------------------------------------

    def _error(self, exc: BaseException, table: str | None = None) -> ConnectorError:
        """The connector error for a PyMySQL or network failure, decided by MySQL's error number."""
        target = self._where(table)
        args: tuple[Any, ...] = tuple(exc.args)
        code = args[0] if args and isinstance(args[0], int) else None
        detail = self._scrub(str(args[1]) if len(args) > 1 else str(exc) or type(exc).__name__)
        if code in _MISSING:
            return ObjectMissing(f"{target}: not found: {detail}")
        if code in _REFUSED:
            return SourceRefused(f"{target}: refused: {detail}")
        if code in _UNREACHABLE or isinstance(exc, OSError | pymysql.err.InterfaceError):
            return SourceUnreachable(f"{target}: unreachable: {detail}")
        if isinstance(exc, pymysql.err.OperationalError) and code is not None and code >= 2000:
            return SourceUnreachable(f"{target}: client error {code}: {detail}")  # 2xxx: the client's side
        return ConnectorError(f"{target}: error {code}: {detail}" if code else f"{target}: {detail}")

    # -- catalog -------------------------------------------------------------------------------------

    def _tables(self, name: str | None = None) -> builtins.list[str]:
        query = (
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
            " AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')"
        )
        params: list[Any] = [self.database]
        if name is not None:
            query += " AND TABLE_NAME = %s"
            params.append(name)
        return [_text(row[0]) for row in self._query(query, params, name)]

    def _resolve(self, table: str) -> str:
        """The table name of `table` as `tables()` names it ("db.table") or as a bare name."""
        prefix = f"{self.database}."
        candidates = [table[len(prefix) :]] if table.startswith(prefix) else []
        candidates.append(table)
        for name in candidates:
            if self._tables(name) == [name]:
                return name
        raise ObjectMissing(f"{self._where(table)}: no such table or view that this user can read")

    def _columns(self, name: str, table: str) -> list[Column]:
        rows = self._query(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (self.database, name),
            table,
        )
        columns = [Column(_text(n), _text(ct), kind_of(_text(dt), _text(ct))) for n, dt, ct in rows]
        if not columns:
            raise SourceRefused(f"{self._where(table)}: the table has no columns this user can read")
        return columns

    def _select(self, name: str, columns: list[Column]) -> str:
        return (
            f"SELECT {', '.join(select_expr(c) for c in columns)} FROM {quote(self.database)}.{quote(name)}"
        )

    # -- TableSource ---------------------------------------------------------------------------------

    def test(self) -> None:
        self._query("SELECT 1", ())

    def tables(self) -> builtins.list[ExploreItem]:
        items = [ExploreItem("table", name, f"{self.database}.{name}") for name in self._tables()]
        return sorted(items, key=lambda item: item.path)

    def columns(self, table: str) -> builtins.list[TableColumn]:
        name = self._resolve(table)
        return [c.table_column() for c in self._columns(name, table)]

    def preview(self, table: str, rows: int = 10) -> builtins.list[dict[str, Any]]:
        name = self._resolve(table)
        columns = self._columns(name, table)
        found = self._query(self._select(name, columns) + " LIMIT %s", (max(0, rows),), table)
        # Through the read's conversion, so a preview shows the values a run would ingest.
        batch = record_batch(found, pa.schema([c.arrow_field() for c in columns]), _array)
        return [{k: jsonable(v) for k, v in row.items()} for row in batch.to_pylist()]

    def read(
        self,
        table: str,
        *,
        delta_column: str | None,
        window_ms: tuple[int, int] | None,
        batch_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        name = self._resolve(table)
        columns = self._columns(name, table)
        query = self._select(name, columns)
        params: tuple[Any, ...] = ()
        if delta_column is not None:
            delta = self._delta(columns, delta_column, table)
            ident = quote(delta.name)
            if window_ms is not None:
                # Bounds of an instant carry UTC, which PyMySQL leaves out: they compare in the UTC session.
                if delta.kind in TEMPORAL:
                    query += (
                        f" WHERE {ident} > CAST(%s AS DATETIME(6)) AND {ident} <= CAST(%s AS DATETIME(6))"
                    )
                else:
                    query += f" WHERE {ident} > %s AND {ident} <= %s"
                params = window_bounds(delta.kind, window_ms)
            query += f" ORDER BY {ident}"
        schema = pa.schema([c.arrow_field() for c in columns])
        return self._stream(query, params, schema, batch_rows, table)

    def _stream(
        self, query: str, params: tuple[Any, ...], schema: pa.Schema, batch_rows: int, table: str
    ) -> Iterator[pa.RecordBatch]:
        conn = self._connect()
        cur = conn.cursor(pymysql.cursors.SSCursor)
        self._reading[conn] = cur
        try:
            cur.execute(query, params)
            while True:
                rows = cur.fetchmany(batch_rows)
                if conn not in self._reading:  # close() came first: the rows seen so far are not all
                    raise self._closed_early(table)
                if rows:
                    yield record_batch(rows, schema, _array)
                if len(rows) < batch_rows:
                    break
        except (pymysql.err.Error, OSError) as exc:
            if conn not in self._reading:
                raise self._closed_early(table) from None
            raise self._error(exc, table) from None
        finally:
            self._reading.pop(conn, None)
            _abandon(conn, cur)

    def close(self) -> None:
        for conn, cur in list(self._reading.items()):
            _abandon(conn, cur)
        self._reading.clear()
        if self._conn is not None:
            _close(self._conn)
            self._conn = None


def _abandon(conn: Any, cur: Any) -> None:
    """Close a read's connection, in the middle of its unbuffered result or not, without reading the rest.

    PyMySQL can end such a result only by reading it to its end, and its cursor and result objects try
    to when they are garbage-collected, on a socket closed by then; marking the result finished and
    detaching the cursor stops both (so nothing is drained and nothing fails in a finaliser).
    """
    result = getattr(cur, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    cur.connection = None
    _close(conn)


def _close(conn: Any) -> None:
    if conn.open:
        conn.close()
