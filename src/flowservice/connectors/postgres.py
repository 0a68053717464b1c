"""PostgreSQL as a table source: explore tables and columns, preview rows, stream a table into Arrow.

psycopg 3 is the driver (the store already uses it). This module is imported only when a PostgreSQL
source is made (the registry imports it lazily).

Connections. The connection string (connection_string.py) gives host, port, database, user and
password; `EncryptionMethod`/`ValidateServerCertificate` become libpq's sslmode (verify-full uses the
system's CA store). The connect timeout is 5 s and TCP keepalives detect a peer that disappears
mid-read. Nothing of the server's own environment is lent to a tenant's connection: the password is
always passed (empty when the string has none, so PGPASSWORD is not used) and ~/.pgpass is never read;
a `Server` that is a Unix-socket path is refused, so a connection cannot reach the server's local
databases through peer authentication. Sessions run with TimeZone UTC and read-only transactions.

Tables are the tables, views, materialized views, foreign and partitioned tables (not their
partitions) of non-system schemas on which the user has SELECT, named "schema.table" in `path`. A
table argument is resolved against that catalog (exact path first, then a bare table name that is
unique), so only names the database itself reports ever reach SQL, and then only as
`psycopg.sql.Identifier`s (schema and table quoted separately): never formatted into a query.

Types. Each column gets one "kind" (sql_tables.py) from `information_schema.columns.data_type`; the
kind decides the XDM type explore shows, the SELECT expression, the Arrow type of the batches and how a
delta column is compared. Arrow types come from the columns, never from the values, so every batch of a
read has the same schema, an all-NULL batch included:

| PostgreSQL | XDM | selected as | Arrow |
|---|---|---|---|
| smallint, integer, bigint | integer | itself | int64 |
| numeric | number | `::float8` | float64 |
| real, double precision | number | itself | float64 |
| boolean | boolean | itself | bool |
| date | string/date | NULL for ±infinity | date32 |
| timestamp | string/date-time | NULL for ±infinity | timestamp[us] (naive; read as UTC) |
| timestamptz | string/date-time | NULL for ±infinity | timestamp[us, UTC] |
| arrays | array | `to_json(…)::text` (JSON text) | string |
| text, varchar, char | string | itself | string |
| anything else (uuid, json, jsonb, time, interval, bytea, enums, …) | string | `::text` | string |

numeric → float64 is a deliberate trade-off: a double keeps 15–17 significant digits, so money-like
values (numeric(12,2)) round-trip exactly but wider numerics lose digits, and a numeric beyond ±1e308
fails the read. Arrow's decimal128 would keep them, but the datasets' XDM "number" is a double anyway,
and casting on the server spares creating a Python Decimal per value.

Incremental reads. With a delta column and a window (start, end] in epoch milliseconds the query is
`WHERE delta > %s AND delta <= %s ORDER BY delta`. For a temporal delta column the bounds are UTC
timestamps (timestamptz compared as instants; timestamp and date columns are taken to hold UTC). For a
numeric delta column the bounds are the window's numbers themselves: numeric deltas are compared to
the window in epoch milliseconds. Other delta types are refused (SourceRefused); a delta column that is
not a column of the table is ObjectMissing.

Reads stream through a server-side (named) cursor on a connection of their own: `fetchmany(batch_rows)`
rows at a time, each batch built column-wise with `pyarrow.array`, so memory holds one batch.

Errors. SQLSTATEs decide where the server gives one (class 08 and resource/shutdown states →
SourceUnreachable; 28xxx and 42501 → SourceRefused; 3D000, 42P01, 42703 → ObjectMissing). libpq reports
failures while connecting without a SQLSTATE, so those are told apart by the server's (English)
message: a missing database is ObjectMissing, failed authentication, an unknown role or a missing
pg_hba entry SourceRefused, everything else (refused, timed out, DNS, too many clients) SourceUnreachable.
Messages name host, port, database and table; the password is scrubbed from anything echoed.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

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
DEFAULT_PORT = 5432
# A path that cannot exist (a file below /dev/null), so libpq never reads the server's ~/.pgpass.
NO_PASSFILE = os.path.join(os.devnull, "flowservice-no-passfile")

_KINDS: dict[str, Kind] = {
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "numeric": "numeric",
    "real": "float",
    "double precision": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp without time zone": "datetime",
    "timestamp with time zone": "instant",
    "ARRAY": "array",
    "text": "text",
    "character varying": "text",
    "character": "text",
}

# Relations a user can read rows from; partitions are left out (their parent reads them all).
# "%%" is a literal "%": the queries are always run with parameters.
_RELATIONS = sql.SQL(
    """
    SELECT n.nspname, c.relname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
      AND NOT c.relispartition
      AND n.nspname <> 'information_schema'
      AND n.nspname NOT LIKE 'pg\\_%%'
      AND has_schema_privilege(n.oid, 'USAGE')
      AND has_table_privilege(c.oid, 'SELECT')
    """
)
_COLUMNS = sql.SQL(
    """
    SELECT column_name, data_type, udt_name
    FROM information_schema.columns
    WHERE table_schema = %s AND table_name = %s
    ORDER BY ordinal_position
    """
)

# SQLSTATE → error class (exact states first, then two-character classes).
_STATE_MISSING = {"3D000", "3F000", "42P01", "42703", "42704"}
_STATE_REFUSED = {"42501"}
_CLASS_REFUSED = {"28"}
_CLASS_UNREACHABLE = {"08", "53", "57", "40", "55"}  # connection, resources, shutdown/cancel, rollback, lock
# libpq's messages for failures while connecting, which carry no SQLSTATE (lc_messages=C wording).
_MISSING_DATABASE = re.compile(r'FATAL:\s+database ".*" does not exist')
_REFUSED = re.compile(
    r"password authentication failed|authentication failed for user|role \".*\" does not exist"
    r"|no pg_hba\.conf entry|no password supplied|permission denied|server does not support SSL"
    r"|SSL connection is required|certificate"
)


def select_expr(column: Column) -> sql.Composable:
    """The expression that reads a column as its Arrow type expects it, named like the column."""
    ident = sql.Identifier(column.name)
    if column.kind == "numeric":
        expr: sql.Composable = sql.SQL("{}::float8").format(ident)
    elif column.kind in TEMPORAL:
        # psycopg cannot make a Python date of ±infinity; such sentinels read as NULL.
        expr = sql.SQL("CASE WHEN isfinite({0}) THEN {0} END").format(ident)
    elif column.kind == "array":
        expr = sql.SQL("to_json({})::text").format(ident)
    elif column.kind == "other":
        expr = sql.SQL("{}::text").format(ident)
    else:
        return ident
    return sql.SQL("{} AS {}").format(expr, ident)


def kind_of(data_type: str) -> Kind:
    """The kind of a column from information_schema's data_type (anything unknown reads as text)."""
    return _KINDS.get(data_type, "other")


class PostgresSource(SqlSource):
    """The tables of one PostgreSQL database, reached with a connection string (see the module docstring)."""

    label = "PostgreSQL"
    default_port = DEFAULT_PORT
    delta_types = "a date, a timestamp or a number"

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        if any(part.strip().startswith(("/", "@")) or "/" in part for part in self.host.split(",")):
            raise SourceRefused(
                "connection string: Server must be a host name or IP address, not a socket path"
            )
        self.sslmode = self.cs.tls()
        self._conn: psycopg.Connection[Any] | None = None
        self._reading: set[psycopg.Connection[Any]] = set()

    # -- connections ---------------------------------------------------------------------------------

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        # "system" (the OS's CA store) needs libpq 16 or newer; psycopg-binary bundles one.
        extra: dict[str, Any] = {"sslrootcert": "system"} if self.sslmode == "verify-full" else {}
        try:
            conn = psycopg.connect(
                host=self.host,
                port=self.port,
                dbname=self.database,
                user=self.cs.user,
                password=self.cs.password,
                passfile=NO_PASSFILE,
                sslmode=self.sslmode,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="flowservice",
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
                autocommit=autocommit,
                **extra,
            )
        except psycopg.Error as exc:
            raise self._error(exc) from None
        try:
            # Session settings, so they hold for autocommit statements as well as transactions.
            conn.execute("SET default_transaction_read_only = on")
            conn.execute("SET TIME ZONE 'UTC'")
            if not autocommit:
                conn.commit()
        except psycopg.Error as exc:
            conn.close()
            raise self._error(exc) from None
        return conn

    def _catalog(self) -> psycopg.Connection[Any]:
        """The connection for catalog queries and previews, opened on first use and kept."""
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(autocommit=True)
        return self._conn

    def _query(
        self, query: sql.SQL | sql.Composed, params: Sequence[Any], table: str | None = None
    ) -> list[Any]:
        try:
            with self._catalog().cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            self._drop_if_broken()
            raise self._error(exc, table) from None

    def _drop_if_broken(self) -> None:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._conn.close()
            self._conn = None

    # -- errors --------------------------------------------------------------------------------------

    def _error(self, exc: psycopg.Error, table: str | None = None) -> ConnectorError:
        """The connector error for a psycopg failure (SQLSTATE where there is one, else the message)."""
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = self._scrub(lines[0] if lines else type(exc).__name__)
        target = self._where(table)
        state = exc.sqlstate or ""
        if state:
            if state in _STATE_MISSING:
                return ObjectMissing(f"{target}: not found: {detail}")
            if state in _STATE_REFUSED or state[:2] in _CLASS_REFUSED:
                return SourceRefused(f"{target}: refused: {detail}")
            if state[:2] in _CLASS_UNREACHABLE:
                return SourceUnreachable(f"{target}: unavailable: {detail}")
            return ConnectorError(f"{target}: {detail}")
        if isinstance(exc, psycopg.OperationalError):
            text = str(exc)
            if _MISSING_DATABASE.search(text):
                return ObjectMissing(f"{target}: the database does not exist")
            if _REFUSED.search(text):
                return SourceRefused(f"{target}: refused: {detail}")
            return SourceUnreachable(f"{target}: unreachable: {detail}")
        if isinstance(exc, psycopg.InterfaceError):
            return SourceUnreachable(f"{target}: connection lost: {detail}")
        return ConnectorError(f"{target}: {detail}")

    # -- catalog -------------------------------------------------------------------------------------

    def _resolve(self, table: str) -> tuple[str, str]:
        """(schema, table) of a table as `tables()` names it, or a bare table name unique in the database."""
        if "\x00" in table:  # no name holds one, and PostgreSQL refuses it in a parameter
            raise ObjectMissing(f"{self._where(table)}: no such table or view that this user can read")
        query = sql.Composed(
            [_RELATIONS, sql.SQL(" AND (n.nspname || '.' || c.relname = %s OR c.relname = %s)")]
        )
        rows = self._query(query, (table, table), table)
        exact = [(s, t) for s, t in rows if f"{s}.{t}" == table]
        bare = [(s, t) for s, t in rows if t == table]
        for found in (exact, bare):
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = ", ".join(sorted(f"{s}.{t}" for s, t in found))
                raise ObjectMissing(
                    f"{self._where(table)}: the name is ambiguous ({names}); name it as tables() does"
                )
        raise ObjectMissing(f"{self._where(table)}: no such table or view that this user can read")

    def _columns(self, schema: str, name: str, table: str) -> list[Column]:
        rows = self._query(_COLUMNS, (schema, name), table)
        columns = []
        for column_name, data_type, udt_name in rows:
            shown = f"{udt_name.removeprefix('_')}[]" if data_type == "ARRAY" else data_type
            columns.append(Column(column_name, shown, kind_of(data_type)))
        if not columns:
            raise SourceRefused(f"{self._where(table)}: the table has no columns this user can read")
        return columns

    # -- TableSource ---------------------------------------------------------------------------------

    def test(self) -> None:
        self._query(sql.SQL("SELECT 1"), ())

    def tables(self) -> builtins.list[ExploreItem]:
        rows = self._query(_RELATIONS, ())
        items = [ExploreItem("table", t, f"{s}.{t}") for s, t in rows]
        return sorted(items, key=lambda item: item.path)

    def columns(self, table: str) -> builtins.list[TableColumn]:
        schema, name = self._resolve(table)
        return [c.table_column() for c in self._columns(schema, name, table)]

    def preview(self, table: str, rows: int = 10) -> builtins.list[dict[str, Any]]:
        schema, name = self._resolve(table)
        columns = self._columns(schema, name, table)
        query = sql.SQL("SELECT {} FROM {}.{} LIMIT %s").format(
            sql.SQL(", ").join(select_expr(c) for c in columns), sql.Identifier(schema), sql.Identifier(name)
        )
        found = self._query(query, (max(0, rows),), table)
        names = [c.name for c in columns]
        return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in found]

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
        schema, name = self._resolve(table)
        columns = self._columns(schema, name, table)
        query = sql.SQL("SELECT {} FROM {}.{}").format(
            sql.SQL(", ").join(select_expr(c) for c in columns), sql.Identifier(schema), sql.Identifier(name)
        )
        params: tuple[Any, ...] = ()
        if delta_column is not None:
            delta = self._delta(columns, delta_column, table)
            ident = sql.Identifier(delta.name)
            if window_ms is not None:
                query = sql.SQL("{} WHERE {} > %s AND {} <= %s").format(query, ident, ident)
                params = window_bounds(delta.kind, window_ms)
            query = sql.SQL("{} ORDER BY {}").format(query, ident)
        arrow_schema = pa.schema([c.arrow_field() for c in columns])
        return self._stream(query, params, arrow_schema, batch_rows, table)

    def _stream(
        self,
        query: sql.SQL | sql.Composed,
        params: tuple[Any, ...],
        schema: pa.Schema,
        batch_rows: int,
        table: str,
    ) -> Iterator[pa.RecordBatch]:
        conn = self._connect(autocommit=False)
        self._reading.add(conn)
        try:
            cur = conn.cursor(name="flowservice_read", binary=True)
            cur.execute(query, params)
            while True:
                rows = cur.fetchmany(batch_rows)
                if rows:
                    yield record_batch(rows, schema)
                if len(rows) < batch_rows:
                    break
        except psycopg.Error as exc:
            if conn not in self._reading:  # close() came first: the rows seen so far are not all
                raise self._closed_early(table) from None
            raise self._error(exc, table) from None
        finally:
            self._reading.discard(conn)
            conn.close()  # ends the transaction and its cursor; an abandoned read leaves nothing open

    def close(self) -> None:
        for conn in list(self._reading):
            conn.close()
        self._reading.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
