"""The MySQL/MariaDB table source against the real server: each test builds its own database and drops it.

The server comes from FLOWSERVICE_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test, the
machine's MariaDB); the same class serves MySQL and MariaDB.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pymysql  # type: ignore[import-untyped, unused-ignore]
import pytest
from sqlalchemy.engine import make_url

from flowservice import catalog
from flowservice.connectors.base import (
    ConnectorError,
    ObjectMissing,
    SourceRefused,
    SourceUnreachable,
)
from flowservice.connectors.mysql import MySQLSource, quote
from flowservice.connectors.registry import file_source, table_source
from tests.connectors.sql_helpers import BASE_MS, SECOND, SECRET, braced, closed_port, ids, rows
from tests.services import unavailable

URL = make_url(os.environ.get("FLOWSERVICE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
HOST = URL.host or "127.0.0.1"
PORT = URL.port or 3306
ADMIN_DATABASE = URL.database or "test"
USER = URL.username or "root"
PASSWORD = URL.password or ""


def numbers(n: int) -> str:
    """A derived table of the numbers 0..n-1 (n a power of ten) in column `n`, for MySQL and MariaDB alike."""
    digits = "(SELECT 0 AS d UNION ALL " + " UNION ALL ".join(f"SELECT {i}" for i in range(1, 10)) + ")"
    places = [f"p{i}" for i in range(len(str(n)) - 1)]
    number = " + ".join(f"{p}.d * {10**i}" for i, p in enumerate(places))
    joins = " CROSS JOIN ".join(f"{digits} AS {p}" for p in places)
    return f"(SELECT {number} AS n FROM {joins}) AS numbers"


def ident(name: str) -> str:
    """A quoted identifier for the tests' own statements, run without parameters."""
    return "`" + name.replace("`", "``") + "`"


def connection_string(database: str, **parts: Any) -> str:
    values = {"Server": HOST, "Port": PORT, "Database": database, "UID": USER, "PWD": PASSWORD, **parts}
    return braced(values)


@pytest.fixture(scope="module")
def admin() -> Iterator[Any]:
    try:
        conn = pymysql.connect(
            host=HOST,
            port=PORT,
            user=USER,
            password=PASSWORD,
            database=ADMIN_DATABASE,
            connect_timeout=5,
            autocommit=True,
            charset="utf8mb4",
        )
    except (pymysql.err.Error, OSError) as exc:
        unavailable("MariaDB", f"{HOST}:{PORT}/{ADMIN_DATABASE}: {exc}")
    yield conn
    conn.close()


@pytest.fixture
def database(admin: Any) -> Iterator[str]:
    name = f"fs_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {ident(name)} CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE {ident(name)}")


@pytest.fixture
def run(admin: Any, database: str) -> Callable[..., None]:
    """Run one statement in the test's database, with %s parameters."""

    def execute(statement: str, params: tuple[Any, ...] | None = None) -> None:
        with admin.cursor() as cur:
            cur.execute(f"USE {ident(database)}")
            cur.execute(statement, params)
            cur.execute(f"USE {ident(ADMIN_DATABASE)}")

    return execute


@pytest.fixture
def source(database: str) -> Iterator[Callable[..., MySQLSource]]:
    made: list[MySQLSource] = []

    def make(**parts: Any) -> MySQLSource:
        made.append(MySQLSource({"connectionString": connection_string(database, **parts)}))
        return made[-1]

    yield make
    for s in made:
        s.close()


CREATE_ORDERS = """
CREATE TABLE orders (
    id INT PRIMARY KEY,
    paid TINYINT(1),
    flag BOOL,
    tiny TINYINT,
    small SMALLINT,
    medium MEDIUMINT UNSIGNED,
    big BIGINT,
    ubig BIGINT UNSIGNED,
    amount DECIMAL(12, 2),
    ratio FLOAT,
    score DOUBLE,
    day DATE,
    local_at DATETIME(6),
    stamped TIMESTAMP(3) NULL,
    note TEXT,
    code VARCHAR(8),
    fixed CHAR(3),
    kind ENUM('a', 'b'),
    doc JSON,
    raw VARBINARY(4),
    blobby BLOB,
    bits BIT(4),
    clock TIME,
    yr YEAR
)
"""
INSERT_ORDERS = """
INSERT INTO orders VALUES
 (1, 1, 0, -5, 7, 16777215, 9007199254740993, 18446744073709551615, 1234.56, 0.5, 2.25, '2024-02-29',
  '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.500', 'first', 'A-1', 'ab', 'b', '{"k": [1, 2]}',
  x'0102', x'ff00', b'1010', '12:34:56', 2024),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL)
"""


@pytest.fixture
def orders(run: Callable[..., None]) -> None:
    run(CREATE_ORDERS)
    run(INSERT_ORDERS)


@pytest.mark.usefixtures("orders")
def test_tables_lists_base_tables_and_views_sorted(
    source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE zeta (id INT)")
    run("CREATE VIEW recent AS SELECT id, note FROM orders WHERE paid")
    tables = source().tables()
    assert [(t.type, t.name, t.path) for t in tables] == [
        ("table", name, f"{database}.{name}") for name in ("orders", "recent", "zeta")
    ]
    assert tables[0].wire() == {
        "type": "table",
        "name": "orders",
        "path": f"{database}.orders",
        "canPreview": True,
        "canFetchSchema": True,
    }


def test_a_user_sees_the_tables_granted_and_a_wrong_password_is_refused(
    admin: Any, source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    user = f"fs_reader_{uuid.uuid4().hex[:8]}"
    run("CREATE TABLE visible (id INT)")
    run("CREATE TABLE hidden (id INT)")
    with admin.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, SECRET))
        try:
            cur.execute(f"GRANT SELECT ON {quote(database)}.visible TO %s@'%%'", (user,))
            reader = source(UID=user, PWD=SECRET)
            assert [t.path for t in reader.tables()] == [f"{database}.visible"]
            with pytest.raises(ObjectMissing, match="no such table"):
                reader.columns("hidden")
            reader.close()
            with pytest.raises(SourceRefused, match="Access denied") as caught:
                source(UID=user, PWD=SECRET + "-wrong").test()
            assert SECRET not in str(caught.value)
        finally:
            cur.execute("DROP USER %s@'%%'", (user,))


def test_a_wrong_root_password_is_refused(source: Callable[..., MySQLSource]) -> None:
    # root@127.0.0.1 has an empty password here; any other password is refused (error 1045).
    with pytest.raises(SourceRefused, match=f"MySQL/MariaDB at {HOST}:{PORT}.*Access denied") as caught:
        source(PWD=SECRET).test()
    assert SECRET not in str(caught.value)


@pytest.mark.usefixtures("orders")
def test_columns_with_their_xdm_types(source: Callable[..., MySQLSource], database: str) -> None:
    columns = source().columns(f"{database}.orders")
    got = [(c.name, c.source_type.replace("(4)", "").lower(), c.xdm_type, c.xdm_format) for c in columns]
    # MySQL 8 drops most display widths (int(11) → int); compare the part both servers agree on.
    assert [(n, t.split("(")[0], x, f) for n, t, x, f in got] == [
        ("id", "int", "integer", None),
        ("paid", "tinyint", "boolean", None),
        ("flag", "tinyint", "boolean", None),
        ("tiny", "tinyint", "integer", None),
        ("small", "smallint", "integer", None),
        ("medium", "mediumint", "integer", None),
        ("big", "bigint", "integer", None),
        ("ubig", "bigint", "integer", None),
        ("amount", "decimal", "number", None),
        ("ratio", "float", "number", None),
        ("score", "double", "number", None),
        ("day", "date", "string", "date"),
        ("local_at", "datetime", "string", "date-time"),
        ("stamped", "timestamp", "string", "date-time"),
        ("note", "text", "string", None),
        ("code", "varchar", "string", None),
        ("fixed", "char", "string", None),
        ("kind", "enum", "string", None),
        ("doc", "json" if got[18][1] == "json" else "longtext", "string", None),
        ("raw", "varbinary", "string", None),
        ("blobby", "blob", "string", None),
        ("bits", "bit", "string", None),
        ("clock", "time", "string", None),
        ("yr", "year", "string", None),
    ]
    assert columns[1].source_type == "tinyint(1)"
    assert columns[13].wire() == {
        "name": "stamped",
        "type": "string",
        "meta:xdmType": "date-time",
        "xdm": {"type": "string", "format": "date-time"},
    }
    assert [c.name for c in source().columns("orders")] == [c.name for c in columns]


@pytest.mark.usefixtures("orders")
def test_preview_is_json_ready(source: Callable[..., MySQLSource], database: str) -> None:
    preview = source().preview(f"{database}.orders", rows=5)
    assert json.loads(json.dumps(preview, allow_nan=False)) == preview
    first, second = sorted(preview, key=lambda r: r["id"])
    assert first == {
        "id": 1,
        "paid": True,
        "flag": False,
        "tiny": -5,
        "small": 7,
        "medium": 16777215,
        "big": 9007199254740993,
        "ubig": 18446744073709551615,
        "amount": 1234.56,
        "ratio": 0.5,
        "score": 2.25,
        "day": "2024-02-29",
        "local_at": "2024-01-02T03:04:05.123456",
        "stamped": "2024-01-02T03:04:05.500000+00:00",
        "note": "first",
        "code": "A-1",
        "fixed": "ab",
        "kind": "b",
        "doc": first["doc"],
        "raw": "0102",
        "blobby": "FF00",
        "bits": "10",
        "clock": "12:34:56",
        "yr": "2024",
    }
    assert json.loads(first["doc"]) == {"k": [1, 2]}
    assert [k for k, v in second.items() if v is not None] == ["id"]
    assert len(source().preview("orders", rows=1)) == 1


EXPECTED_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("paid", pa.bool_()),
        ("flag", pa.bool_()),
        ("tiny", pa.int64()),
        ("small", pa.int64()),
        ("medium", pa.int64()),
        ("big", pa.int64()),
        ("ubig", pa.uint64()),
        ("amount", pa.float64()),
        ("ratio", pa.float64()),
        ("score", pa.float64()),
        ("day", pa.date32()),
        ("local_at", pa.timestamp("us")),
        ("stamped", pa.timestamp("us", tz="UTC")),
        ("note", pa.string()),
        ("code", pa.string()),
        ("fixed", pa.string()),
        ("kind", pa.string()),
        ("doc", pa.string()),
        ("raw", pa.string()),
        ("blobby", pa.string()),
        ("bits", pa.string()),
        ("clock", pa.string()),
        ("yr", pa.string()),
    ]
)


@pytest.mark.usefixtures("orders")
def test_full_read_has_the_column_types_in_every_batch(
    source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("INSERT INTO orders (id) VALUES (3)")
    batches = list(source().read(f"{database}.orders", delta_column=None, window_ms=None, batch_rows=1))
    assert [b.num_rows for b in batches] == [1, 1, 1]
    assert all(b.schema == EXPECTED_SCHEMA for b in batches)
    table = pa.Table.from_batches(batches).sort_by("id")
    assert table.column("ubig").to_pylist() == [18446744073709551615, None, None]
    assert table.column("stamped")[0].as_py().isoformat() == "2024-01-02T03:04:05.500000+00:00"
    assert table.column("paid").to_pylist() == [True, None, None]
    for row in table.slice(1).to_pylist():  # batches of nothing but NULLs, typed all the same
        assert [k for k, v in row.items() if v is not None] == ["id"]


def test_zero_dates_read_as_null(
    admin: Any, source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE z (id INT, day DATE, at DATETIME)")
    with admin.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        try:
            cur.execute(f"USE {ident(database)}")
            cur.execute(
                "INSERT INTO z VALUES (1, '2024-01-02', '2024-01-02 03:04:05'),"
                " (2, '0000-00-00', '0000-00-00 00:00:00'), (3, '2024-00-15', '2024-02-00 00:00:00')"
            )
        finally:
            cur.execute("SET SESSION sql_mode = DEFAULT")
            cur.execute(f"USE {ident(ADMIN_DATABASE)}")
    got = rows(source().read("z", delta_column=None, window_ms=None))
    assert [(r["id"], str(r["day"]), str(r["at"])) for r in got] == [
        (1, "2024-01-02", "2024-01-02 03:04:05"),
        (2, "None", "None"),
        (3, "None", "None"),
    ]


def test_incremental_reads_over_a_datetime_delta(
    source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE events (id INT, updated_at DATETIME(3))")
    run(
        "INSERT INTO events VALUES (1, '2024-01-01 00:00:01'), (2, '2024-01-01 00:00:02'), (3, '2024-01-01 00:00:03')"
    )
    src = source()
    table = f"{database}.events"
    assert ids(src, table, "updated_at", BASE_MS, BASE_MS + 3 * SECOND) == [1, 2, 3]
    # Rows written after that read (and a row updated since) appear in the next window only.
    run("INSERT INTO events VALUES (4, '2024-01-01 00:00:04'), (5, '2024-01-01 00:00:05')")
    run("UPDATE events SET updated_at = '2024-01-01 00:00:04.500' WHERE id = 2")
    assert ids(src, table, "updated_at", BASE_MS + 3 * SECOND, BASE_MS + 5 * SECOND) == [4, 2, 5]
    assert ids(src, table, "updated_at", BASE_MS + 5 * SECOND, BASE_MS + 9 * SECOND) == []
    # The window is (start, end]: a row exactly at the start is left out, one exactly at the end kept.
    assert ids(src, table, "updated_at", BASE_MS + 1 * SECOND, BASE_MS + 3 * SECOND) == [3]
    assert ids(src, table, "updated_at", BASE_MS, BASE_MS + 1 * SECOND) == [1]


def test_incremental_reads_over_timestamp_date_and_numeric_deltas(
    admin: Any, source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run(
        "CREATE TABLE mixed (id INT, stamped TIMESTAMP(3) NULL, day DATE, version BIGINT,"
        " ver_dec DECIMAL(20, 0), ver_float DOUBLE)"
    )
    with admin.cursor() as cur:
        # TIMESTAMP values are written in a session time zone far from UTC: the read must not care.
        cur.execute("SET SESSION time_zone = '+05:00'")
        cur.execute(f"USE {ident(database)}")
        for i, on in ((1, "2024-01-01"), (2, "2024-01-02"), (3, "2024-01-03")):
            ms = BASE_MS + i * SECOND
            cur.execute(
                "INSERT INTO mixed VALUES (%s, CONVERT_TZ(%s, '+00:00', '+05:00'), %s, %s, %s, %s)",
                (i, f"2024-01-01 00:00:0{i}", on, ms, ms, ms),
            )
        cur.execute("SET SESSION time_zone = DEFAULT")
        cur.execute(f"USE {ident(ADMIN_DATABASE)}")
    src = source()
    table = f"{database}.mixed"
    assert ids(src, table, "stamped", BASE_MS + 1 * SECOND, BASE_MS + 3 * SECOND) == [2, 3]
    day = 86_400 * SECOND
    assert ids(src, table, "day", BASE_MS, BASE_MS + day) == [2]  # dates compare as midnight UTC
    for column in ("version", "ver_dec", "ver_float"):
        assert ids(src, table, column, BASE_MS + 1 * SECOND, BASE_MS + 2 * SECOND) == [2], column
        assert ids(src, table, column, BASE_MS, BASE_MS + 3 * SECOND) == [1, 2, 3], column
    run("INSERT INTO mixed (id, version) VALUES (4, %s)", (BASE_MS + 4 * SECOND,))
    assert ids(src, table, "version", BASE_MS + 3 * SECOND, BASE_MS + 4 * SECOND) == [4]
    # Without a window, everything in delta order (MySQL sorts NULLs first).
    assert [r["id"] for r in rows(src.read(table, delta_column="day", window_ms=None))] == [4, 1, 2, 3]


def test_delta_columns_that_cannot_be_used(
    source: Callable[..., MySQLSource], run: Callable[..., None]
) -> None:
    run("CREATE TABLE t (id INT, note VARCHAR(10), flag TINYINT(1))")
    src = source()
    with pytest.raises(ObjectMissing, match="delta column 'missing' is not a column"):
        src.read("t", delta_column="missing", window_ms=(0, 1))
    for column in ("note", "flag"):
        with pytest.raises(SourceRefused, match="must be a date, a datetime, a timestamp or a number"):
            src.read("t", delta_column=column, window_ms=(0, 1))
    # MySQL column names are case-insensitive; so is the delta column's.
    assert rows(src.read("t", delta_column="ID", window_ms=(0, 1))) == []


def test_unicode_names_and_values(
    source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE `Ünïcode 表` (`名前` TEXT, `Größe` INT, `sýmbol ✓` VARCHAR(20))")
    # Identifiers are limited to the Basic Multilingual Plane; values take any character (utf8mb4).
    values = [("日本語テキスト", 1, "🎉🚀 ok"), ("Zoë e\u0301", 2, "\u202eRTL"), ("", 3, None)]
    for value in values:
        run("INSERT INTO `Ünïcode 表` VALUES (%s, %s, %s)", value)
    src = source()
    path = f"{database}.Ünïcode 表"
    assert [t.path for t in src.tables()] == [path]
    assert [c.name for c in src.columns(path)] == ["名前", "Größe", "sýmbol ✓"]
    got = rows(src.read(path, delta_column="Größe", window_ms=(0, 10)))
    assert [(r["名前"], r["Größe"], r["sýmbol ✓"]) for r in got] == values
    assert src.preview(path)[0]["名前"] == "日本語テキスト"


def test_many_rows_stream_in_bounded_batches(
    source: Callable[..., MySQLSource], run: Callable[..., None]
) -> None:
    run("CREATE TABLE big (id INT PRIMARY KEY, version BIGINT, payload CHAR(32))")
    # 2 × 100,000 rows, generated server-side: ids 1..200000.
    for offset in (1, 100_001):
        run(
            f"INSERT INTO big SELECT n + {offset}, %s + n + {offset}, MD5(n) FROM {numbers(100_000)}",
            (BASE_MS,),
        )
    src = source()
    sizes = [b.num_rows for b in src.read("big", delta_column=None, window_ms=None, batch_rows=50_000)]
    assert sizes == [50_000] * 4
    total, count, batches = 0, 0, 0
    for batch in src.read("big", delta_column="version", window_ms=(BASE_MS, BASE_MS + 150_000)):
        assert batch.num_rows <= 65_536
        total += pc.sum(batch.column("id")).as_py()
        count += batch.num_rows
        batches += 1
    assert (count, batches, total) == (150_000, 3, 150_000 * 150_001 // 2)


def test_an_abandoned_read_releases_its_connection(
    admin: Any, source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE big (id INT PRIMARY KEY)")
    run(f"INSERT INTO big SELECT n + 1 FROM {numbers(100_000)}")

    def connections() -> set[int]:
        with admin.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", (database,))
            return {row[0] for row in cur.fetchall()}

    src = source()
    src.test()
    before = connections()
    reader = src.read("big", delta_column=None, window_ms=None, batch_rows=10)
    assert next(reader).num_rows == 10
    reading = connections() - before
    assert len(reading) == 1
    reader.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while connections() & reading and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not connections() & reading
    other = src.read("big", delta_column=None, window_ms=None, batch_rows=10)
    next(other)
    src.close()
    with pytest.raises(ConnectorError, match="closed before it finished"):
        next(other)


def test_a_missing_table_is_object_missing(
    source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE t (id INT)")
    src = source()
    for name in (f"{database}.nope", "nope", f"{database}.T", "mysql.user", "information_schema.TABLES"):
        with pytest.raises(ObjectMissing, match="no such table"):
            src.columns(name)
        with pytest.raises(ObjectMissing):
            src.read(name, delta_column=None, window_ms=None)
        with pytest.raises(ObjectMissing):
            src.preview(name)


def test_sql_injection_in_names_is_refused_or_harmless(
    source: Callable[..., MySQLSource], run: Callable[..., None], database: str
) -> None:
    run("CREATE TABLE victim (id INT)")
    run("INSERT INTO victim VALUES (1)")
    weird = "we`ird%s; DROP TABLE victim; --"
    odd_column = "x`%s'); DROP TABLE victim; --"
    run(f"CREATE TABLE {ident(weird)} (id INT, {ident(odd_column)} INT)")
    run(f"INSERT INTO {ident(weird)} VALUES (1, 5)")
    src = source()
    attempts = [
        "victim; DROP TABLE victim",
        "victim` ; DROP TABLE victim; --",
        "victim' OR '1'='1",
        f"{database}`.`victim",
        "%s",
    ]
    for table in attempts:
        with pytest.raises(ObjectMissing, match="no such table"):
            src.read(table, delta_column=None, window_ms=None)
    for delta in ("id; DROP TABLE victim", "id` > 0; DROP TABLE victim; --", "id) OR (1=1", "%s"):
        with pytest.raises(ObjectMissing, match="is not a column"):
            src.read("victim", delta_column=delta, window_ms=(0, 10))
    # Names that look like SQL are just names: the table and its odd column read like any other.
    assert [t.name for t in src.tables()] == sorted(["victim", weird])
    got = rows(src.read(f"{database}.{weird}", delta_column=odd_column, window_ms=(0, 10)))
    assert got == [{"id": 1, odd_column: 5}]
    assert src.preview(weird) == [{"id": 1, odd_column: 5}]
    assert rows(src.read("victim", delta_column=None, window_ms=None)) == [{"id": 1}]


def test_quote_doubles_backticks_and_percent_signs() -> None:
    assert quote("plain") == "`plain`"
    assert quote("a`b%c") == "`a``b%%c`"


def test_a_missing_database_is_object_missing() -> None:
    name = f"fs_no_such_db_{uuid.uuid4().hex[:8]}"
    src = MySQLSource({"connectionString": connection_string(name)})
    with pytest.raises(ObjectMissing, match="Unknown database") as caught:
        src.test()
    assert name in str(caught.value) and f"{HOST}:{PORT}" in str(caught.value)


def test_an_unreachable_port_fails_fast() -> None:
    port = closed_port()
    src = MySQLSource({"connectionString": connection_string("test", Port=port, PWD=SECRET)})
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match=f"MySQL/MariaDB at {HOST}:{port}") as caught:
        src.tables()
    assert time.monotonic() - started < 5
    assert SECRET not in str(caught.value)
    with pytest.raises(SourceUnreachable):
        src.read("t", delta_column=None, window_ms=None)


def test_tls_as_the_string_asks(admin: Any, source: Callable[..., MySQLSource]) -> None:
    source(EncryptionMethod=6).test()  # RequestSSL: TLS if the server offers it, plain otherwise
    source(EncryptionMethod=0).test()
    with admin.cursor() as cur:
        cur.execute("SHOW VARIABLES LIKE 'have_ssl'")
        have_ssl = cur.fetchone()
    if have_ssl and have_ssl[1] == "YES":
        pytest.skip("this server offers TLS: nothing to refuse")
    with pytest.raises(SourceRefused, match="SSL"):
        source(EncryptionMethod=1).test()


def test_registry_makes_one_class_for_mysql_and_mariadb(database: str, tmp_path: Path) -> None:
    params = {"connectionString": connection_string(database)}
    for spec_id, name in ((catalog.MYSQL, "MySQL"), (catalog.MARIADB, "MariaDB")):
        src = table_source(spec_id, params)
        assert isinstance(src, MySQLSource)
        src.close()
        with pytest.raises(ConnectorError, match=f"^{name} sources .* are table sources, not file sources"):
            file_source(spec_id, params, landing_zone_root=tmp_path)
