"""Scheduled dataflows that pick up only what is new, over HTTP, from every kind of source.

Each test has a database, workers and a scheduler of its own, and a clock it moves by hand: the
scheduler creates the run of a slot when the test moves the clock past it, the workers execute it,
and the test reads the run and the dataset over HTTP. What a run ingested is checked against the
rows the test put in the source: rows (or files) added between runs appear in the next run, and
only there.
"""

from __future__ import annotations

import csv
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.engine import make_url

from flowservice import catalog
from flowservice.scheduler.loop import Scheduler
from flowservice.services.context import Services
from flowservice.store.tables import Run
from tests import factories
from tests.clock import FakeClock
from tests.e2e.test_ingestion import HEADER, dataset_rows
from tests.factories import BASE, Tenant
from tests.services import PG_ADMIN_URL, unavailable
from tests.worlds import own_app

MIN = 60_000
PERIOD = 15 * MIN
MYSQL_URL = make_url(os.environ.get("FLOWSERVICE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
BACKOFF_S = 60


@dataclass
class World:
    services: Services
    client: TestClient
    clock: FakeClock
    scheduler: Scheduler
    tenant: Tenant
    start: int  # the flows' startTime, epoch seconds: the end of their first window

    def slot(self, n: int) -> int:
        """The end of window n (0 = the first, backfill window), epoch ms."""
        return self.start * 1000 + n * PERIOD

    def run_of_slot(self, flow_id: str, n: int) -> dict[str, Any]:
        """Move the clock to slot n, let the scheduler create its run and the workers finish it."""
        self.clock.set(self.slot(n))
        [created] = [c for c in self.scheduler.tick() if c.flow_id == flow_id]
        return factories.wait_for_run(self.client, self.tenant, created.run_id)


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    with own_app(database_url, tmp_path, retry_backoff_seconds=BACKOFF_S) as own:
        tenant = factories.new_tenant(own.services, own.client)
        start = own.clock.now_ms() // 1000 + 1
        yield World(own.services, own.client, own.clock, Scheduler(own.services), tenant, start)


def ids_ingested(world: World, run: dict[str, Any]) -> list[int]:
    assert run["state"] == "success", run
    promotion = run["activities"][1]
    [batch_id] = promotion["targetInfo"][0]["reference"]["ids"]
    ids: list[int] = dataset_rows(world.client, world.tenant, batch_id).column("id").to_pylist()
    return sorted(ids)


def records(run: dict[str, Any]) -> dict[str, int]:
    summary: dict[str, int] = run["metrics"]["recordSummary"]
    return summary


def window_of(run: dict[str, Any]) -> tuple[int, int]:
    extensions = run["activities"][0]["durationSummary"]["extensions"]
    return extensions["windowStart"], extensions["windowEnd"]


def schedule(world: World) -> dict[str, str]:
    return {"startTime": str(world.start), "frequency": "minute", "interval": "15"}


def customer(i: int) -> tuple[Any, ...]:
    return (i, f"name {i}", f"c{i}@example.com", i + 0.5, datetime(2026, 1, 15).date(), i % 2 == 0)


# ---------------------------------------------------------------- databases


def db_connection(world: World, spec_id: str, connection_string: str) -> str:
    body = {
        "name": "customers database",
        "auth": {
            "specName": "Connection String Based Authentication",
            "params": {"connectionString": connection_string},
        },
        "connectionSpec": {"id": spec_id, "version": "1.0"},
    }
    connection_id: str = factories.create(world.client, world.tenant, "connections", body)["id"]
    return connection_id


def table_dataflow(world: World, spec_id: str, connection_string: str, table: str, **flow: Any) -> str:
    connection_id = db_connection(world, spec_id, connection_string)
    source = {
        "name": "customers table",
        "baseConnectionId": connection_id,
        "data": {"format": "tabular"},
        "params": {"tableName": table},
        "connectionSpec": {"id": spec_id, "version": "1.0"},
    }
    schema_id = factories.schema(world.client, world.tenant)
    mapping_id = factories.mapping_set(world.client, world.tenant, schema_id, factories.IDENTITY_MAPPINGS)
    dataset_id = factories.dataset(world.client, world.tenant, schema_id)
    source_id = factories.create(world.client, world.tenant, "sourceConnections", source)["id"]
    target_id = factories.create(
        world.client, world.tenant, "targetConnections", factories.target(dataset_id)
    )["id"]
    body = factories.flow(
        source_id,
        target_id,
        flowSpec={"id": catalog.CRM_TO_AEP, "version": "1.0"},
        transformations=[
            {"name": "Copy", "params": {"deltaColumn": {"name": "updated_at"}}},
            {"name": "Mapping", "params": {"mappingId": mapping_id, "mappingVersion": 0}},
        ],
        scheduleParams=schedule(world),
        **flow,
    )
    flow_id: str = factories.create(world.client, world.tenant, "flows", body)["id"]
    return flow_id


@dataclass
class Table:
    spec_id: str
    connection_string: str
    name: str
    insert: Callable[[list[int], int], None]  # rows with these ids, updated at this epoch ms
    bad_credentials: str  # a login the server refuses


@pytest.fixture
def postgres_table() -> Iterator[Table]:
    url = make_url(PG_ADMIN_URL)
    try:
        admin = psycopg.connect(
            host=url.host, port=url.port or 5432, dbname=url.database, user=url.username, autocommit=True
        )
    except psycopg.Error as exc:
        unavailable("PostgreSQL", str(exc))
    schema = f"fs_inc_{uuid.uuid4().hex[:10]}"
    user = f"{schema}_reader"
    with admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        table = sql.Identifier(schema, "customers")
        admin.execute(
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, name text, email text, amount numeric(10, 2),"
                " signup date, active boolean, updated_at timestamptz NOT NULL)"
            ).format(table)
        )
        # a login of its own with a password, so a wrong password is refused (trust auth lets any in)
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'right'").format(sql.Identifier(user)))
        admin.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(user))
        )
        admin.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(user)))

        def insert(ids: list[int], at_ms: int) -> None:
            at = datetime.fromtimestamp(at_ms / 1000, UTC)
            with admin.cursor() as cur:
                cur.executemany(
                    sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s)").format(table),
                    [(*customer(i), at) for i in ids],
                )

        host, port, database = url.host or "127.0.0.1", url.port or 5432, url.database or "test"
        try:
            yield Table(
                catalog.POSTGRESQL,
                f"Server={host};Port={port};Database={database};UID={user};PWD=right",
                f"{schema}.customers",
                insert,
                # trust auth admits any password on loopback here, so the refused login is a role
                # that does not exist
                f"Server={host};Port={port};Database={database};UID={user}_nobody;PWD=wrong",
            )
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))


@pytest.fixture
def mariadb_table() -> Iterator[Table]:
    import pymysql

    host, port = MYSQL_URL.host or "127.0.0.1", MYSQL_URL.port or 3306
    user, password = MYSQL_URL.username or "root", MYSQL_URL.password or ""
    try:
        admin = pymysql.connect(host=host, port=port, user=user, password=password, autocommit=True)
    except pymysql.MySQLError as exc:
        unavailable("MariaDB", str(exc))
    database = f"fs_inc_{uuid.uuid4().hex[:10]}"
    reader = database[-12:]
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{database}`")
            cur.execute(
                f"CREATE TABLE `{database}`.customers (id INT PRIMARY KEY, name TEXT, email TEXT,"
                " amount DECIMAL(10, 2), signup DATE, active BOOL, updated_at DATETIME(3) NOT NULL)"
            )
            cur.execute(f"CREATE USER '{reader}'@'%' IDENTIFIED BY 'right'")
            cur.execute(f"GRANT SELECT ON `{database}`.* TO '{reader}'@'%'")

        def insert(ids: list[int], at_ms: int) -> None:
            at = datetime.fromtimestamp(at_ms / 1000, UTC).replace(tzinfo=None)  # DATETIME holds UTC here
            with admin.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO `{database}`.customers VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(*customer(i), at) for i in ids],
                )

        yield Table(
            catalog.MARIADB,
            f"Server={host};Port={port};Database={database};UID={reader};PWD=right",
            "customers",
            insert,
            f"Server={host};Port={port};Database={database};UID={reader};PWD=wrong",
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"DROP USER IF EXISTS '{reader}'@'%'")
        admin.close()


@pytest.fixture(params=["postgresql", "mariadb"])
def table(request: pytest.FixtureRequest) -> Table:
    fixture: Table = request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_table")
    return fixture


def test_tables_are_read_window_by_window(world: World, table: Table) -> None:
    first_end = world.slot(0)
    table.insert([1, 2, 3], first_end - 3_600_000)  # an hour before the first slot
    table.insert([4], first_end)  # exactly at the end of the first window: it belongs to it
    flow_id = table_dataflow(world, table.spec_id, table.connection_string, table.name)

    first = world.run_of_slot(flow_id, 0)
    assert window_of(first) == (0, first_end)
    assert ids_ingested(world, first) == [1, 2, 3, 4]
    assert records(first) == {"inputRecordCount": 4, "outputRecordCount": 4, "failedRecordCount": 0}

    table.insert([5, 6], first_end + 1)  # the first millisecond of the second window
    table.insert([7], world.slot(1))  # its last
    table.insert([8, 9, 10], world.slot(1) + 1)  # already the third window's
    second = world.run_of_slot(flow_id, 1)
    assert window_of(second) == (first_end, world.slot(1))
    assert ids_ingested(world, second) == [5, 6, 7]
    assert records(second)["inputRecordCount"] == 3

    third = world.run_of_slot(flow_id, 2)
    assert ids_ingested(world, third) == [8, 9, 10]
    assert records(third)["inputRecordCount"] == 3


def test_a_transient_failure_is_retried_over_the_same_window_until_the_limit(
    world: World, postgres_table: Table
) -> None:
    table = postgres_table
    table.insert([1, 2], world.slot(0) - 1000)
    unreachable = table.connection_string.replace(f"Port={make_url(PG_ADMIN_URL).port or 5432}", "Port=9")
    flow_id = table_dataflow(world, table.spec_id, unreachable, table.name, options={"maxRetries": 2})

    # the source is down: the run and its two retries fail, each after a longer pause, then no more
    chain = [world.run_of_slot(flow_id, 0)]
    for attempt in (1, 2):
        failed = chain[-1]
        assert failed["state"] == "failed"
        assert failed["metrics"]["statusSummary"]["errors"][0]["code"] == "CONNECTOR-1001-500"
        retry = retry_of(world, flow_id, failed["id"])
        assert retry["state"] == "scheduled"
        pause = BACKOFF_S * 1000 * 2 ** (attempt - 1)
        assert ready_at(world, retry["id"]) == failed["metrics"]["durationSummary"]["completedAtUTC"] + pause
        world.clock.advance(pause)
        world.services.run_created(retry["id"])  # wake the workers now that the pause is over
        chain.append(factories.wait_for_run(world.client, world.tenant, retry["id"]))
    assert chain[-1]["state"] == "failed"
    assert [window_of(run) for run in chain] == [(0, world.slot(0))] * 3
    assert len(runs_of(world, flow_id)) == 3  # maxRetries=2: the third failure is final

    # down again at the next slot; fixed before the retry, which reads exactly its own window
    table.insert([3, 4], world.slot(0) + 1)
    failed = world.run_of_slot(flow_id, 1)
    assert failed["state"] == "failed"
    retry = retry_of(world, flow_id, failed["id"])
    patch_connection_string(world, flow_connection(world, flow_id), table.connection_string)
    table.insert([5], world.slot(1) + 1)  # after the window: the next run's
    world.clock.advance(BACKOFF_S * 1000)
    world.services.run_created(retry["id"])
    recovered = factories.wait_for_run(world.client, world.tenant, retry["id"])
    assert window_of(recovered) == (world.slot(0), world.slot(1))
    assert ids_ingested(world, recovered) == [3, 4]
    assert not [r for r in runs_of(world, flow_id) if r.get("parentFlowRunId") == recovered["id"]]
    assert ids_ingested(world, world.run_of_slot(flow_id, 2)) == [5]


def test_terminal_failures_are_not_retried(world: World, table: Table) -> None:
    flow_id = table_dataflow(world, table.spec_id, table.bad_credentials, table.name)
    run = world.run_of_slot(flow_id, 0)
    assert run["state"] == "failed"
    message = run["activities"][0]["statusSummary"]["extensions"]["errors"][0]["message"]
    assert "wrong" not in message  # the password is not echoed
    assert [r["id"] for r in runs_of(world, flow_id)] == [run["id"]]


def test_explore_and_test_a_database(world: World, table: Table) -> None:
    table.insert([1, 2, 3], world.slot(0))
    connection_id = db_connection(world, table.spec_id, table.connection_string)
    headers = world.tenant.headers()
    url = f"{BASE}/connections/{connection_id}"
    assert world.client.get(f"{url}/test", headers=headers).json() == {"result": True}

    root = world.client.get(f"{url}/explore?objectType=root", headers=headers)
    assert root.status_code == 200, root.text
    [listed] = [item for item in root.json() if item["name"] == "customers"]
    assert listed["type"] == "table" and listed["canPreview"] is True
    path = listed["path"]  # what a user passes on, as the table to explore or to read

    columns = world.client.get(f"{url}/explore?objectType=table&object={path}", headers=headers)
    assert columns.status_code == 200, columns.text
    by_name = {c["name"]: c for c in columns.json()["schema"]["columns"]}
    assert list(by_name) == [*HEADER, "updated_at"]
    assert by_name["id"]["xdm"] == {"type": "integer"}
    assert by_name["amount"]["xdm"] == {"type": "number"}
    assert by_name["active"]["xdm"] == {"type": "boolean"}
    assert by_name["signup"]["xdm"] == {"type": "string", "format": "date"}
    assert by_name["updated_at"] == {
        "name": "updated_at",
        "type": "string",
        "meta:xdmType": "date-time",
        "xdm": {"type": "string", "format": "date-time"},
    }
    assert "data" not in columns.json()

    preview = world.client.get(
        f"{url}/explore?objectType=table&object={path}&preview=true", headers=headers
    ).json()
    assert sorted(row["id"] for row in preview["data"]) == [1, 2, 3]

    missing = world.client.get(f"{url}/explore?objectType=table&object=no_such_table", headers=headers)
    assert missing.status_code == 404 and missing.json()["type"].endswith("FLOW-1300-404")
    folder = world.client.get(f"{url}/explore?objectType=folder&object=x", headers=headers)
    assert folder.status_code == 400 and folder.json()["type"].endswith("FLOW-1358-400")

    refused = db_connection(world, table.spec_id, table.bad_credentials)
    answer = world.client.get(f"{BASE}/connections/{refused}/test", headers=headers).json()
    assert answer["result"] is False and "wrong" not in answer["message"]


# ---------------------------------------------------------------- files


def csv_bytes(ids: list[int]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for i in ids:
        c = customer(i)
        writer.writerow([c[0], c[1], c[2], c[3], c[4].isoformat(), str(c[5]).lower()])
    return out.getvalue().encode()


def file_dataflow(world: World, connection: dict[str, Any], source_params: dict[str, Any]) -> str:
    connection_id = factories.create(world.client, world.tenant, "connections", connection)["id"]
    spec = connection["connectionSpec"]
    source = {
        "name": "customer files",
        "baseConnectionId": connection_id,
        "data": {"format": "delimited"},
        "params": source_params,
        "connectionSpec": spec,
    }
    return factories.dataflow(
        world.client,
        world.tenant,
        source=source,
        mappings=factories.IDENTITY_MAPPINGS,
        scheduleParams=schedule(world),
    ).flow_id


def test_sftp_files_are_taken_by_modification_time(world: World, tmp_path: Path) -> None:
    from tests.sftp_server import start_sftp_server

    root = tmp_path / "sftp"
    folder = root / "exports" / "customers"
    folder.mkdir(parents=True)
    host, port, stop = start_sftp_server(root, "loader", "s3cret", "")
    try:

        def put(name: str, ids: list[int], at_ms: int) -> None:
            path = folder / name
            path.write_bytes(csv_bytes(ids))
            os.utime(path, (at_ms / 1000, at_ms / 1000))  # SFTP reports whole seconds

        put("a.csv", [1, 2], world.slot(0) - 60_000)
        put("b.csv", [3], world.slot(0))  # at the end of the first window: in it
        flow_id = file_dataflow(
            world,
            {
                "name": "sftp",
                "auth": {
                    "specName": "Basic Authentication for sftp",
                    "params": {
                        "host": host,
                        "port": port,
                        "userName": "loader",
                        "password": "s3cret",
                        "folderPath": "/exports",
                        "maxConcurrentConnections": 2,
                    },
                },
                "connectionSpec": {"id": catalog.SFTP, "version": "1.0"},
            },
            {"path": "/customers", "type": "folder"},
        )
        first = world.run_of_slot(flow_id, 0)
        assert ids_ingested(world, first) == [1, 2, 3]
        assert first["metrics"]["fileSummary"]["inputFileCount"] == 2

        put("c.csv", [4, 5], world.slot(0) + 1000)
        put("d.csv", [6], world.slot(1) + 1000)  # the third window's
        second = world.run_of_slot(flow_id, 1)
        assert ids_ingested(world, second) == [4, 5]
        assert second["metrics"]["fileSummary"]["inputFileCount"] == 1
        third = world.run_of_slot(flow_id, 2)
        assert ids_ingested(world, third) == [6]
    finally:
        stop()


def test_s3_objects_are_taken_by_modification_time(world: World, s3_server: str, bucket: Any) -> None:
    s3, bucket = bucket
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=csv_bytes([1, 2, 3]))
    # The server stamps objects with its own clock, so this test's windows follow real time: the
    # first slot is the next whole second after the upload, and the second upload waits until the
    # wall clock has passed it (a condition on time itself, at most two seconds).
    stamped = s3.head_object(Bucket=bucket, Key="in/a.csv")["LastModified"].timestamp()
    world.start = int(stamped) + 1
    flow_id = file_dataflow(
        world,
        {
            "name": "s3",
            "auth": {
                "specName": "Access Key",
                "params": {
                    "s3AccessKey": "k",
                    "s3SecretKey": "s",
                    "serviceUrl": s3_server,
                    "bucketName": bucket,
                },
            },
            "connectionSpec": {"id": catalog.AMAZON_S3, "version": "1.0"},
        },
        {"path": "/in", "type": "folder"},
    )
    first = world.run_of_slot(flow_id, 0)
    assert ids_ingested(world, first) == [1, 2, 3]

    while time.time() < world.start + 1:
        time.sleep(0.05)
    s3.put_object(Bucket=bucket, Key="in/b.csv", Body=csv_bytes([4, 5]))
    assert s3.head_object(Bucket=bucket, Key="in/b.csv")["LastModified"].timestamp() > world.start
    second = world.run_of_slot(flow_id, 1)
    assert ids_ingested(world, second) == [4, 5]
    assert second["metrics"]["fileSummary"]["inputFileCount"] == 1
    third = world.run_of_slot(flow_id, 2)
    assert records(third)["inputRecordCount"] == 0 and third["metrics"]["fileSummary"]["inputFileCount"] == 0


# ---------------------------------------------------------------- helpers over the store and API


def runs_of(world: World, flow_id: str) -> list[dict[str, Any]]:
    response = world.client.get(
        f"{BASE}/runs?property=flowId=={flow_id}&limit=100", headers=world.tenant.headers()
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def retry_of(world: World, flow_id: str, run_id: str) -> dict[str, Any]:
    [retry] = [r for r in runs_of(world, flow_id) if r.get("parentFlowRunId") == run_id]
    return retry


def ready_at(world: World, run_id: str) -> int:
    """When a scheduled run may start (not part of Adobe's run shape, so read from the store)."""
    with world.services.db.reader() as session:
        value = session.scalar(select(Run.ready_at).where(Run.id == run_id))
    assert value is not None
    return int(value)


def flow_connection(world: World, flow_id: str) -> str:
    flow = factories.get(world.client, world.tenant, "flows", flow_id)
    source = factories.get(world.client, world.tenant, "sourceConnections", flow["sourceConnectionIds"][0])
    connection_id: str = source["baseConnectionId"]
    return connection_id


def patch_connection_string(world: World, connection_id: str, value: str) -> None:
    etag = factories.get(world.client, world.tenant, "connections", connection_id)["etag"]
    response = world.client.patch(
        f"{BASE}/connections/{connection_id}",
        json=[{"op": "replace", "path": "/auth/params/connectionString", "value": value}],
        headers=world.tenant.headers(**{"If-Match": etag}),
    )
    assert response.status_code == 200, response.text
