"""The PostgreSQL table source against the real server: each test builds its own schema and drops it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from flowservice import catalog
from flowservice.connectors.base import (
    ConnectorError,
    ObjectMissing,
    SourceRefused,
    SourceUnreachable,
    TableColumn,
)
from flowservice.connectors.postgres import PostgresSource
from flowservice.connectors.registry import file_source, table_source
from tests.connectors.sql_helpers import BASE_MS, SECOND, SECRET, braced, closed_port, ids, rows
from tests.services import PG_ADMIN_URL, unavailable

URL = make_url(PG_ADMIN_URL)
HOST = URL.host or "127.0.0.1"
PORT = URL.port or 5432
DATABASE = URL.database or "test"
USER = URL.username or "postgres"
PASSWORD = URL.password or ""


def connection_string(**parts: Any) -> str:
    values = {"Server": HOST, "Port": PORT, "Database": DATABASE, "UID": USER, "Password": PASSWORD, **parts}
    return braced(values)


@pytest.fixture(scope="module")
def admin() -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(
            host=HOST,
            port=PORT,
            dbname=DATABASE,
            user=USER,
            password=PASSWORD,
            connect_timeout=5,
            autocommit=True,
        )
    except psycopg.Error as exc:
        unavailable("PostgreSQL", f"{HOST}:{PORT}/{DATABASE}: {exc}")
    with conn:
        yield conn


@pytest.fixture
def schema(admin: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"fs_test_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def run(admin: psycopg.Connection[Any], schema: str) -> Callable[..., None]:
    """Run SQL in the test's schema (search_path set), with %s parameters."""

    def execute(statement: str, params: tuple[Any, ...] | None = None) -> None:
        admin.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        admin.execute(statement, params)
        admin.execute("RESET search_path")

    return execute


@pytest.fixture
def source() -> Iterator[Callable[..., PostgresSource]]:
    made: list[PostgresSource] = []

    def make(**parts: Any) -> PostgresSource:
        made.append(PostgresSource({"connectionString": connection_string(**parts)}))
        return made[-1]

    yield make
    for s in made:
        s.close()


ALL_TYPES = """
CREATE TABLE orders (
    id integer PRIMARY KEY,
    small smallint,
    big bigint,
    amount numeric(12, 2),
    ratio real,
    score double precision,
    paid boolean,
    day date,
    local_at timestamp,
    updated_at timestamptz,
    note text,
    code varchar(8),
    fixed char(3),
    ref uuid,
    doc json,
    docb jsonb,
    tags text[],
    nums integer[],
    span interval,
    raw bytea
);
INSERT INTO orders VALUES
 (1, 7, 9007199254740993, 1234.56, 0.5, 2.25, true, '2024-02-29', '2024-01-02 03:04:05.123456',
  '2024-01-02 03:04:05+02', 'first', 'A-1', 'ab', '6f1c1f38-5cd0-4c39-9b8a-9d2a4f3c1e01',
  '{"k": [1, 2]}', '{"k": true}', '{"a","b c"}', '{1,NULL,3}', '1 day 02:00:00', '\\x0102'),
 (2, NULL, NULL, NULL, NULL, 'NaN', NULL, 'infinity', '-infinity', NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL);
CREATE VIEW recent AS SELECT id, note FROM orders WHERE paid;
"""


def test_tables_lists_tables_and_views_of_user_schemas_sorted(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(ALL_TYPES)
    run("CREATE TABLE zeta (id int); CREATE MATERIALIZED VIEW alpha AS SELECT 1 AS id")
    run("CREATE TABLE parted (id int, d date) PARTITION BY RANGE (d)")
    run("CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
    tables = source().tables()
    mine = [t for t in tables if t.path.startswith(schema + ".")]
    assert [(t.type, t.name, t.path) for t in mine] == [
        ("table", name, f"{schema}.{name}") for name in ("alpha", "orders", "parted", "recent", "zeta")
    ]
    assert [t.path for t in tables] == sorted(t.path for t in tables)
    assert not any(t.path.startswith(("pg_catalog.", "information_schema.")) for t in tables)
    assert mine[1].wire() == {
        "type": "table",
        "name": "orders",
        "path": f"{schema}.orders",
        "canPreview": True,
        "canFetchSchema": True,
    }


def test_tables_shows_only_what_the_user_can_select(
    admin: psycopg.Connection[Any],
    source: Callable[..., PostgresSource],
    run: Callable[..., None],
    schema: str,
) -> None:
    role = f"fs_reader_{uuid.uuid4().hex[:8]}"
    run("CREATE TABLE visible (id int); CREATE TABLE hidden (id int)")
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(role))
        )
        admin.execute(
            sql.SQL("GRANT SELECT ON {}.visible TO {}").format(sql.Identifier(schema), sql.Identifier(role))
        )
        reader = source(UID=role)
        assert [t.path for t in reader.tables() if t.path.startswith(schema + ".")] == [f"{schema}.visible"]
        with pytest.raises(ObjectMissing, match="hidden"):
            reader.columns(f"{schema}.hidden")
        reader.close()
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_columns_with_their_xdm_types(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(ALL_TYPES)
    columns = source().columns(f"{schema}.orders")
    assert [(c.name, c.source_type, c.xdm_type, c.xdm_format) for c in columns] == [
        ("id", "integer", "integer", None),
        ("small", "smallint", "integer", None),
        ("big", "bigint", "integer", None),
        ("amount", "numeric", "number", None),
        ("ratio", "real", "number", None),
        ("score", "double precision", "number", None),
        ("paid", "boolean", "boolean", None),
        ("day", "date", "string", "date"),
        ("local_at", "timestamp without time zone", "string", "date-time"),
        ("updated_at", "timestamp with time zone", "string", "date-time"),
        ("note", "text", "string", None),
        ("code", "character varying", "string", None),
        ("fixed", "character", "string", None),
        ("ref", "uuid", "string", None),
        ("doc", "json", "string", None),
        ("docb", "jsonb", "string", None),
        ("tags", "text[]", "array", None),
        ("nums", "int4[]", "array", None),
        ("span", "interval", "string", None),
        ("raw", "bytea", "string", None),
    ]
    assert columns[9] == TableColumn("updated_at", "timestamp with time zone", "string", "date-time")
    assert columns[9].wire() == {
        "name": "updated_at",
        "type": "string",
        "meta:xdmType": "date-time",
        "xdm": {"type": "string", "format": "date-time"},
    }
    # A bare table name that is unique in the database is resolved too.
    run("CREATE TABLE only_here_" + schema[-10:] + " (x int)")
    assert [c.name for c in source().columns("only_here_" + schema[-10:])] == ["x"]


def test_preview_is_json_ready(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(ALL_TYPES)
    preview = source().preview(f"{schema}.orders", rows=5)
    assert json.loads(json.dumps(preview, allow_nan=False)) == preview
    first, second = preview
    assert first == {
        "id": 1,
        "small": 7,
        "big": 9007199254740993,
        "amount": 1234.56,
        "ratio": 0.5,
        "score": 2.25,
        "paid": True,
        "day": "2024-02-29",
        "local_at": "2024-01-02T03:04:05.123456",
        "updated_at": "2024-01-02T01:04:05+00:00",
        "note": "first",
        "code": "A-1",
        "fixed": "ab ",
        "ref": "6f1c1f38-5cd0-4c39-9b8a-9d2a4f3c1e01",
        "doc": '{"k": [1, 2]}',
        "docb": '{"k": true}',
        "tags": '["a","b c"]',
        "nums": "[1,null,3]",
        "span": "1 day 02:00:00",
        "raw": "\\x0102",
    }
    # NaN is no JSON number; ±infinity dates and times read as NULL.
    assert second["score"] is None and second["day"] is None and second["local_at"] is None
    assert len(source().preview(f"{schema}.orders", rows=1)) == 1


EXPECTED_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("small", pa.int64()),
        ("big", pa.int64()),
        ("amount", pa.float64()),
        ("ratio", pa.float64()),
        ("score", pa.float64()),
        ("paid", pa.bool_()),
        ("day", pa.date32()),
        ("local_at", pa.timestamp("us")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
        ("note", pa.string()),
        ("code", pa.string()),
        ("fixed", pa.string()),
        ("ref", pa.string()),
        ("doc", pa.string()),
        ("docb", pa.string()),
        ("tags", pa.string()),
        ("nums", pa.string()),
        ("span", pa.string()),
        ("raw", pa.string()),
    ]
)


def test_full_read_has_the_column_types_in_every_batch(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(ALL_TYPES)
    # Row 3 is NULL everywhere but its id, so with batches of one row a batch holds nothing but NULLs.
    run("INSERT INTO orders (id) VALUES (3)")
    batches = list(source().read(f"{schema}.orders", delta_column=None, window_ms=None, batch_rows=1))
    assert [b.num_rows for b in batches] == [1, 1, 1]
    assert all(b.schema == EXPECTED_SCHEMA for b in batches)
    table = pa.Table.from_batches(batches).sort_by("id")
    assert table.column("big").to_pylist() == [9007199254740993, None, None]
    assert table.column("updated_at")[0].as_py().isoformat() == "2024-01-02T01:04:05+00:00"
    assert table.column("local_at")[0].as_py().isoformat() == "2024-01-02T03:04:05.123456"
    null_row = table.slice(2).to_pylist()[0]
    assert [k for k, v in null_row.items() if v is not None] == ["id"]


def test_a_read_of_only_nulls_keeps_the_types(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(ALL_TYPES)
    run("DELETE FROM orders; INSERT INTO orders (id) VALUES (10), (11)")
    (batch,) = source().read(f"{schema}.orders", delta_column=None, window_ms=None)
    assert batch.schema == EXPECTED_SCHEMA
    assert batch.num_rows == 2
    assert all(batch.column(i).null_count == 2 for i in range(1, batch.num_columns))


def test_incremental_reads_over_a_timestamptz_delta(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run("CREATE TABLE events (id int, updated_at timestamptz)")
    for i in (1, 2, 3):
        run("INSERT INTO events VALUES (%s, to_timestamp(%s / 1000.0))", (i, BASE_MS + i * SECOND))
    src = source()
    table = f"{schema}.events"
    assert ids(src, table, "updated_at", BASE_MS, BASE_MS + 3 * SECOND) == [1, 2, 3]
    # Rows written after that read (and a row updated since) appear in the next window only.
    run("INSERT INTO events VALUES (4, to_timestamp(%s / 1000.0))", (BASE_MS + 4 * SECOND,))
    run("INSERT INTO events VALUES (5, to_timestamp(%s / 1000.0))", (BASE_MS + 5 * SECOND,))
    run("UPDATE events SET updated_at = to_timestamp(%s / 1000.0) WHERE id = 2", (BASE_MS + 4500,))
    assert ids(src, table, "updated_at", BASE_MS + 3 * SECOND, BASE_MS + 5 * SECOND) == [4, 2, 5]
    assert ids(src, table, "updated_at", BASE_MS + 5 * SECOND, BASE_MS + 9 * SECOND) == []
    # The window is (start, end]: a row exactly at the start is left out, one exactly at the end kept.
    assert ids(src, table, "updated_at", BASE_MS + 1 * SECOND, BASE_MS + 3 * SECOND) == [3]
    assert ids(src, table, "updated_at", BASE_MS, BASE_MS + 1 * SECOND) == [1]


def test_incremental_reads_over_timestamp_date_and_numeric_deltas(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(
        "CREATE TABLE mixed (id int, local_at timestamp, day date, version bigint, ver_num numeric(20, 0),"
        " ver_float double precision)"
    )
    run(
        "INSERT INTO mixed VALUES"
        " (1, '2024-01-01 00:00:01', '2024-01-01', %s, %s, %s),"
        " (2, '2024-01-01 00:00:02', '2024-01-02', %s, %s, %s),"
        " (3, '2024-01-01 00:00:03', '2024-01-03', %s, %s, %s)",
        tuple(BASE_MS + i * SECOND for i in (1, 1, 1, 2, 2, 2, 3, 3, 3)),
    )
    src = source()
    table = f"{schema}.mixed"
    # timestamp without time zone is read as UTC.
    assert ids(src, table, "local_at", BASE_MS + 1 * SECOND, BASE_MS + 3 * SECOND) == [2, 3]
    # dates compare as midnight UTC: 2024-01-01 is not after the start, 2024-01-02 is the end itself.
    day = 86_400 * SECOND
    assert ids(src, table, "day", BASE_MS, BASE_MS + day) == [2]
    # numeric deltas are compared with the window's epoch milliseconds themselves.
    for column in ("version", "ver_num", "ver_float"):
        assert ids(src, table, column, BASE_MS + 1 * SECOND, BASE_MS + 2 * SECOND) == [2], column
        assert ids(src, table, column, BASE_MS, BASE_MS + 3 * SECOND) == [1, 2, 3], column
    run("INSERT INTO mixed (id, version) VALUES (4, %s)", (BASE_MS + 4 * SECOND,))
    assert ids(src, table, "version", BASE_MS + 3 * SECOND, BASE_MS + 4 * SECOND) == [4]
    # A delta column without a window reads everything, in delta order (NULLs last).
    full = rows(src.read(table, delta_column="day", window_ms=None))
    assert [r["id"] for r in full] == [1, 2, 3, 4]


def test_delta_columns_that_cannot_be_used(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run("CREATE TABLE t (id int, note text, flag boolean)")
    src = source()
    with pytest.raises(ObjectMissing, match="delta column 'missing' is not a column"):
        src.read(f"{schema}.t", delta_column="missing", window_ms=(0, 1))
    for column in ("note", "flag"):
        with pytest.raises(SourceRefused, match="must be a date, a timestamp or a number"):
            src.read(f"{schema}.t", delta_column=column, window_ms=(0, 1))


def test_unicode_names_and_values(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run('CREATE TABLE "Ünïcode 表" ("名前" text, "Größe" int, "émoji 🎉" text)')
    values = [("日本語テキスト", 1, "🎉🚀 ok"), ("Zoë e\u0301", 2, "\u202eRTL"), ("", 3, None)]
    for value in values:
        run('INSERT INTO "Ünïcode 表" VALUES (%s, %s, %s)', value)
    src = source()
    path = f"{schema}.Ünïcode 表"
    assert path in [t.path for t in src.tables()]
    assert [c.name for c in src.columns(path)] == ["名前", "Größe", "émoji 🎉"]
    got = rows(src.read(path, delta_column="Größe", window_ms=(0, 10)))
    assert [(r["名前"], r["Größe"], r["émoji 🎉"]) for r in got] == values
    assert src.preview(path)[0]["名前"] == "日本語テキスト"


def test_many_rows_stream_in_bounded_batches(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run(
        "CREATE TABLE big AS SELECT g AS id, %s::bigint + g AS version, md5(g::text) AS payload"
        " FROM generate_series(1, 200000) AS g",
        (BASE_MS,),
    )
    src = source()
    sizes = [
        b.num_rows for b in src.read(f"{schema}.big", delta_column=None, window_ms=None, batch_rows=50_000)
    ]
    assert sizes == [50_000] * 4
    total, count, batches = 0, 0, 0
    for batch in src.read(f"{schema}.big", delta_column="version", window_ms=(BASE_MS, BASE_MS + 150_000)):
        assert batch.num_rows <= 65_536
        total += pc.sum(batch.column("id")).as_py()
        count += batch.num_rows
        batches += 1
    assert (count, batches, total) == (150_000, 3, 150_000 * 150_001 // 2)


def test_an_abandoned_read_releases_its_connection(
    admin: psycopg.Connection[Any],
    source: Callable[..., PostgresSource],
    run: Callable[..., None],
    schema: str,
) -> None:
    run("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) AS g")

    def backends() -> set[int]:
        query = "SELECT pid FROM pg_stat_activity WHERE application_name = 'flowservice' AND state <> 'idle'"
        return {pid for (pid,) in admin.execute(query).fetchall()}

    src = source()
    src.test()
    before = backends()
    reader = src.read(f"{schema}.t", delta_column=None, window_ms=None, batch_rows=10)
    assert next(reader).num_rows == 10
    reading = backends() - before
    assert len(reading) == 1  # the read's own connection, in its transaction
    reader.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while backends() & reading and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backends() & reading
    # close() ends reads that were never finished.
    other = src.read(f"{schema}.t", delta_column=None, window_ms=None, batch_rows=10)
    next(other)
    src.close()
    with pytest.raises(ConnectorError, match="closed before it finished"):
        next(other)


def test_a_missing_table_is_object_missing(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run("CREATE TABLE t (id int)")
    src = source()
    for name in (f"{schema}.nope", "nope_at_all_" + schema, f"{schema}.T", "pg_catalog.pg_class", "t\x00"):
        with pytest.raises(ObjectMissing, match="no such table"):
            src.columns(name)
        with pytest.raises(ObjectMissing):
            src.read(name, delta_column=None, window_ms=None)
        with pytest.raises(ObjectMissing):
            src.preview(name)


def test_the_same_name_in_two_schemas_must_be_qualified(
    admin: psycopg.Connection[Any],
    source: Callable[..., PostgresSource],
    run: Callable[..., None],
    schema: str,
) -> None:
    other = schema + "_b"
    name = "twin_" + schema[-10:]
    run(f"CREATE TABLE {name} (id int)")
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(other)))
    try:
        admin.execute(
            sql.SQL("CREATE TABLE {}.{} (other int)").format(sql.Identifier(other), sql.Identifier(name))
        )
        src = source()
        with pytest.raises(ObjectMissing, match="ambiguous"):
            src.columns(name)
        assert [c.name for c in src.columns(f"{other}.{name}")] == ["other"]
    finally:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(other)))


def test_sql_injection_in_names_is_refused_or_harmless(
    source: Callable[..., PostgresSource], run: Callable[..., None], schema: str
) -> None:
    run("CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)")
    weird = 'we"ird; DROP TABLE victim; --'
    run(f'CREATE TABLE "{weird.replace(chr(34), chr(34) * 2)}" ("id" int, "x\'); DROP TABLE victim; --" int)')
    run(f'INSERT INTO "{weird.replace(chr(34), chr(34) * 2)}" VALUES (1, 5)')
    src = source()
    attempts = [
        f"{schema}.victim; DROP TABLE {schema}.victim",
        f'{schema}.victim" ; DROP TABLE {schema}.victim; --',
        f"{schema}.victim' OR '1'='1",
        f"{schema}.victim\x00",
    ]
    for table in attempts:
        with pytest.raises(ObjectMissing, match="no such table"):
            src.read(table, delta_column=None, window_ms=None)
    for delta in ("id; DROP TABLE victim", 'id" > 0; DROP TABLE victim; --', "id) OR (1=1"):
        with pytest.raises(ObjectMissing, match="is not a column"):
            src.read(f"{schema}.victim", delta_column=delta, window_ms=(0, 10))
    # Names that look like SQL are just names: the table and its odd column read like any other.
    got = rows(src.read(f"{schema}.{weird}", delta_column="x'); DROP TABLE victim; --", window_ms=(0, 10)))
    assert got == [{"id": 1, "x'); DROP TABLE victim; --": 5}]
    assert rows(src.read(f"{schema}.victim", delta_column=None, window_ms=None)) == [{"id": 1}]


def test_a_missing_database_is_object_missing(source: Callable[..., PostgresSource]) -> None:
    name = f"fs_no_such_db_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ObjectMissing, match="the database does not exist") as caught:
        source(Database=name, Password=SECRET).test()
    assert name in str(caught.value) and f"{HOST}:{PORT}" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_unknown_role_is_refused(source: Callable[..., PostgresSource]) -> None:
    # This server trusts local connections, so a wrong password is accepted; an unknown role is not.
    role = f"fs_nobody_{uuid.uuid4().hex[:8]}"
    with pytest.raises(SourceRefused, match=f'role "{role}" does not exist') as caught:
        source(UID=role, Password=SECRET).tables()
    assert SECRET not in str(caught.value)


def test_an_unreachable_port_fails_fast() -> None:
    port = closed_port()
    src = PostgresSource({"connectionString": connection_string(Port=port, Password=SECRET)})
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match=f"PostgreSQL at {HOST}:{port}") as caught:
        src.test()
    assert time.monotonic() - started < 5
    assert SECRET not in str(caught.value)
    with pytest.raises(SourceUnreachable):
        src.read("public.t", delta_column=None, window_ms=None)


def test_tls_as_the_string_asks(
    admin: psycopg.Connection[Any], source: Callable[..., PostgresSource]
) -> None:
    assert source(EncryptionMethod=6).sslmode == "prefer"
    source(EncryptionMethod=6).test()  # RequestSSL: TLS if the server offers it, plain otherwise
    assert source(EncryptionMethod=1, ValidateServerCertificate=1).sslmode == "verify-full"
    if admin.execute("SHOW ssl").fetchone() != ("off",):
        pytest.skip("this PostgreSQL server offers TLS: nothing to refuse")
    with pytest.raises(SourceRefused, match="SSL"):
        source(EncryptionMethod=1).test()


def test_socket_paths_and_bad_strings_are_refused() -> None:
    for server in ("/var/run/postgresql", "@abstract", "db.example.com,/tmp"):
        with pytest.raises(SourceRefused, match="Server must be a host name"):
            PostgresSource({"connectionString": connection_string(Server=server)})
    with pytest.raises(SourceRefused, match="UID is missing"):
        PostgresSource({"connectionString": f"Server={HOST};Database={DATABASE};Password={SECRET}"})
    with pytest.raises(SourceRefused, match="connectionString"):
        PostgresSource({})


def test_registry_makes_postgres_table_sources(tmp_path: Path) -> None:
    src = table_source(catalog.POSTGRESQL, {"connectionString": connection_string()})
    assert isinstance(src, PostgresSource)
    src.close()
    with pytest.raises(ConnectorError, match="^PostgreSQL sources .* are table sources, not file sources"):
        file_source(catalog.POSTGRESQL, {"connectionString": connection_string()}, landing_zone_root=tmp_path)
    for spec_id in (catalog.AMAZON_S3, catalog.DATA_LANDING_ZONE, "no-such-spec"):
        with pytest.raises(ConnectorError, match="not a table source"):
            table_source(spec_id, {})
