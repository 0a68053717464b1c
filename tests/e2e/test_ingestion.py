"""Dataflows that really move data, checked end to end over HTTP against the data itself."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.settings import Settings
from tests import factories
from tests.api.test_runs import TUTORIAL, assert_covers, shape
from tests.factories import BASE, Tenant

EXPORT = "/data/foundation/export"
HEADER = ["id", "name", "email", "amount", "signup", "active"]


def customers(start: int, count: int, bad: dict[int, str]) -> list[list[str]]:
    """Rows of the Customers schema; `bad` breaks chosen ids in a chosen way."""
    rows = []
    for customer in range(start, start + count):
        row = [
            str(customer),
            f"name {customer}",
            f"c{customer}@example.com",
            f"{customer}.50",
            "2026-01-15",
            "true",
        ]
        kind = bad.get(customer)
        if kind == "missing-email":
            row[2] = ""
        elif kind == "bad-amount":
            row[3] = "lots"
        elif kind == "negative":
            row[3] = "-1"
        elif kind == "bad-date":
            row[4] = "2026-02-30"
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[list[str]], ragged: int = 0) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
        for n in range(ragged):
            handle.write(f"{900000 + n},only,three\n")
    return path.stat().st_size


def zone(settings: Settings, tenant: Tenant) -> Path:
    return settings.landing_zone / tenant.org_id / tenant.sandbox


def export_json(client: TestClient, tenant: Tenant, url: str) -> Any:
    response = client.get(url.removeprefix("http://testserver"), headers=tenant.headers())
    assert response.status_code == 200, response.text
    return response.json()


def dataset_rows(client: TestClient, tenant: Tenant, batch_id: str) -> pa.Table:
    listing = export_json(client, tenant, f"{EXPORT}/files/{batch_id}")
    tables = []
    for item in listing["data"]:
        response = client.get(
            item["_links"]["self"]["href"].removeprefix("http://testserver"), headers=tenant.headers()
        )
        assert response.status_code == 200
        tables.append(pq.read_table(io.BytesIO(response.content)))
    return pa.concat_tables(tables) if tables else pa.table({})


def failed_records(client: TestClient, tenant: Tenant, url: str) -> list[dict[str, Any]]:
    listing = export_json(client, tenant, url)
    records = []
    for item in listing["data"]:
        response = client.get(
            item["_links"]["self"]["href"].removeprefix("http://testserver"), headers=tenant.headers()
        )
        records += [json.loads(line) for line in response.text.splitlines()]
    return records


def dlz_flow(
    client: TestClient, tenant: Tenant, path: str, *, data: dict[str, Any] | None = None, **flow: Any
) -> factories.Dataflow:
    source = {
        "name": "landing zone",
        "data": data or {"format": "delimited"},
        "params": {"path": path, "type": "folder", "recursive": True},
        "connectionSpec": {"id": catalog.DATA_LANDING_ZONE, "version": "1.0"},
    }
    flow.setdefault("scheduleParams", {"startTime": "1700000000", "frequency": "once"})
    return factories.dataflow(client, tenant, source=source, **flow)


def test_csv_from_the_landing_zone_with_bad_rows(
    engine_client: TestClient, engine_settings: Settings, engine_tenant: Tenant
) -> None:
    client, tenant = engine_client, engine_tenant
    bad = {3: "missing-email", 7: "bad-amount", 11: "negative", 14: "bad-date"}
    sizes = [
        write_csv(zone(engine_settings, tenant) / "incoming" / "a.csv", customers(1, 10, bad)),
        write_csv(
            zone(engine_settings, tenant) / "incoming" / "sub" / "b.csv", customers(11, 10, bad), ragged=2
        ),
    ]
    dataflow = dlz_flow(
        client,
        tenant,
        "incoming",
        mappings=factories.IDENTITY_MAPPINGS,
        options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
    )
    run = factories.wait_for_run(client, tenant, factories.start_run(client, tenant, dataflow.flow_id))

    assert run["state"] == "success", run
    assert_covers(shape(run), shape(TUTORIAL["items"][0]))
    copy, promotion = run["activities"]
    records = run["metrics"]["recordSummary"]
    assert records == {"inputRecordCount": 22, "outputRecordCount": 16, "failedRecordCount": 6}
    assert records["inputRecordCount"] == records["outputRecordCount"] + records["failedRecordCount"]
    assert promotion["recordSummary"] == {
        "inputRecordCount": 22,
        "outputRecordCount": 16,
        "failedRecordCount": 6,
    }
    assert copy["sizeSummary"] == {"inputBytes": sum(sizes), "outputBytes": sum(sizes)}
    assert run["metrics"]["sizeSummary"]["inputBytes"] == sum(sizes)
    assert copy["fileSummary"] == {"inputFileCount": 2, "outputFileCount": 2}
    assert (
        run["metrics"]["fileSummary"]["inputFileCount"] == 2
        and run["metrics"]["fileSummary"]["outputFileCount"] == 2
    )
    codes = {e["code"]: e.get("recordCount") for e in promotion["statusSummary"]["extensions"]["errors"]}
    assert codes == {
        "INGEST-1212-400": None,
        "INGEST-1401-400": 2,  # the ragged rows
        "INGEST-1555-400": 1,  # id 3: no email
        "MAPPER-3700-400": 2,  # id 7: "lots"; id 14: 2026-02-30
        "INGEST-1556-400": 1,  # id 11: below the minimum
    }
    assert run["metrics"]["statusSummary"]["errors"] == [
        {
            "code": "CONNECTOR-2001-500",
            "message": "Error in processing (parsing, validation or transformation) the copied data.",
        }
    ]

    # the dataset really holds the good rows of this batch, once each
    batch_id = promotion["targetInfo"][0]["reference"]["ids"][0]
    table = dataset_rows(client, tenant, batch_id)
    assert table.num_rows == records["outputRecordCount"] == promotion["recordSummary"]["outputRecordCount"]
    assert sorted(table.column("id").to_pylist()) == [i for i in range(1, 21) if i not in bad]
    assert table.schema.field("signup").type == pa.date32()
    assert run["metrics"]["sizeSummary"]["outputBytes"] == sum(
        int(f["length"]) for f in export_json(client, tenant, f"{EXPORT}/files/{batch_id}")["data"]
    )

    # failed records can be downloaded, with reasons
    manifest = promotion["statusSummary"]["extensions"]["manifest"]
    failed = failed_records(client, tenant, manifest["failedRecords"])
    assert len(failed) == 6
    by_id = {str(f.get("data", {}).get("id")): f for f in failed if "data" in f}
    assert by_id["3"]["errors"] == [
        {"code": "INGEST-1555-400", "field": "email", "message": "required field email is missing"}
    ]
    assert by_id["7"]["errors"][0]["field"] == "amount" and by_id["7"]["record"] == 7
    ragged = [f for f in failed if f["errors"][0]["code"] == "INGEST-1401-400"]
    assert len(ragged) == 2 and all(f["file"] == "incoming/sub/b.csv" for f in ragged)
    samples = export_json(client, tenant, manifest["sampleErrors"])
    assert len(samples) == 6

    # the manifest lists the input files
    files = export_json(client, tenant, promotion["fileSummary"]["extensions"]["manifest"]["fileInfo"])[
        "files"
    ]
    assert sorted((f["path"], f["size"]) for f in files) == [
        ("incoming/a.csv", sizes[0]),
        ("incoming/sub/b.csv", sizes[1]),
    ]
    assert promotion["fileSummary"]["extensions"]["manifest"]["pathPrefix"] == "incoming/"

    batch = export_json(client, tenant, f"/data/foundation/catalog/batches/{batch_id}")[batch_id]
    assert batch["status"] == "success" and batch["metrics"]["outputRecordCount"] == 16
    assert batch["relatedObjects"] == [{"type": "dataSet", "id": dataflow.dataset_id}]
    flow = factories.get(client, tenant, "flows", dataflow.flow_id)
    assert flow["lastRunDetails"]["id"] == run["id"] and flow["lastRunDetails"]["state"] == "success"


def test_without_partial_ingestion_one_bad_record_fails_the_batch(
    engine_client: TestClient, engine_settings: Settings, engine_tenant: Tenant
) -> None:
    client, tenant = engine_client, engine_tenant
    write_csv(zone(engine_settings, tenant) / "strict" / "a.csv", customers(1, 20, {5: "bad-amount"}))
    dataflow = dlz_flow(client, tenant, "strict", options={"errorDiagnosticsEnabled": True})
    run = factories.wait_for_run(client, tenant, factories.start_run(client, tenant, dataflow.flow_id))
    assert run["state"] == "failed"
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 20,
        "outputRecordCount": 0,
        "failedRecordCount": 20,
    }
    promotion = run["activities"][1]
    assert {e["code"]: e.get("recordCount") for e in promotion["statusSummary"]["extensions"]["errors"]}[
        "MAPPER-3700-400"
    ] == 1
    batch_id = promotion["targetInfo"][0]["reference"]["ids"][0]
    assert dataset_rows(client, tenant, batch_id).num_rows == 0  # nothing committed
    failed = failed_records(
        client, tenant, promotion["statusSummary"]["extensions"]["manifest"]["failedRecords"]
    )
    assert [f["data"]["id"] for f in failed] == ["5"]
    assert run["metrics"]["fileSummary"]["outputFileCount"] == 0

    # the failed run can be re-triggered; a successful one with records cannot
    again = client.post(f"{BASE}/runs/{run['id']}/action?op=RE_TRIGGER", headers=tenant.headers())
    assert again.status_code == 200 and again.json()["id"] != run["id"]
    retried = factories.wait_for_run(client, tenant, again.json()["id"])
    assert retried["state"] == "failed"  # same data, same outcome
    assert (
        client.post(f"{BASE}/runs/{run['id']}/action?op=explode", headers=tenant.headers())
        .json()["type"]
        .endswith("FLOW-1333-400")
    )


def test_diagnostics_off_still_counts_and_says_so(
    engine_client: TestClient, engine_settings: Settings, engine_tenant: Tenant
) -> None:
    client, tenant = engine_client, engine_tenant
    write_csv(zone(engine_settings, tenant) / "quiet" / "a.csv", customers(1, 10, {2: "negative"}))
    dataflow = dlz_flow(client, tenant, "quiet", options={"partialIngestionPercent": 20})
    run = factories.wait_for_run(client, tenant, factories.start_run(client, tenant, dataflow.flow_id))
    assert run["state"] == "success"
    promotion = run["activities"][1]
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 10,
        "outputRecordCount": 9,
        "failedRecordCount": 1,
    }
    assert [e["code"] for e in promotion["statusSummary"]["extensions"]["errors"]] == [
        "INGEST-1211-400",
        "INGEST-1556-400",
    ]
    assert "manifest" not in promotion["statusSummary"]["extensions"]
    again = client.post(f"{BASE}/runs/{run['id']}/action?op=re-trigger", headers=tenant.headers())
    assert again.status_code == 400 and again.json()["type"].endswith("FLOW-1387-400")


def s3_dataflow(
    client: TestClient, tenant: Tenant, s3_server: str, bucket: str, path: str, data: dict[str, Any]
) -> factories.Dataflow:
    connection = factories.create(
        client,
        tenant,
        "connections",
        factories.s3_connection(
            auth={
                "specName": "Access Key",
                "params": {
                    "s3AccessKey": "k",
                    "s3SecretKey": "s",
                    "serviceUrl": s3_server,
                    "bucketName": bucket,
                },
            }
        ),
    )
    source = factories.s3_source(connection["id"], data=data, params={"path": path, "type": "folder"})
    return factories.dataflow(
        client,
        tenant,
        source=source,
        scheduleParams={"startTime": "1700000000", "frequency": "once"},
        options={"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
    )


def test_json_lines_gzip_from_s3(
    engine_client: TestClient, engine_tenant: Tenant, s3_server: str, bucket: Any
) -> None:
    s3, name = bucket
    lines = [
        {
            "id": i,
            "name": f"n{i}",
            "email": f"e{i}@x.org",
            "amount": i * 1.5,
            "signup": "2026-03-01",
            "active": i % 2 == 0,
        }
        for i in range(1, 51)
    ]
    lines[9]["email"] = None
    body = "\n".join(json.dumps(line) for line in lines) + "\n{not json}\n"
    s3.put_object(Bucket=name, Key="events/day1.json.gz", Body=gzip.compress(body.encode()))
    dataflow = s3_dataflow(engine_client, engine_tenant, s3_server, name, "/events", {"format": "json"})
    run = factories.wait_for_run(
        engine_client, engine_tenant, factories.start_run(engine_client, engine_tenant, dataflow.flow_id)
    )
    assert run["state"] == "success", run
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 51,
        "outputRecordCount": 49,
        "failedRecordCount": 2,
    }
    batch_id = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
    table = dataset_rows(engine_client, engine_tenant, batch_id)
    assert sorted(table.column("id").to_pylist()) == [i for i in range(1, 51) if i != 10]
    assert table.column("active").to_pylist().count(True) == len(
        [i for i in range(1, 51) if i != 10 and i % 2 == 0]
    )


def test_parquet_from_s3(
    engine_client: TestClient, engine_tenant: Tenant, s3_server: str, bucket: Any
) -> None:
    s3, name = bucket
    table = pa.table(
        {
            "id": pa.array(range(1, 1001), pa.int64()),
            "name": [f"n{i}" for i in range(1, 1001)],
            "email": [f"e{i}@x.org" for i in range(1, 1001)],
            "amount": pa.array([float(i) for i in range(1, 1001)]),
            "active": [True] * 1000,
        }
    )
    for part in range(2):
        sink = io.BytesIO()
        pq.write_table(table.slice(part * 500, 500), sink)
        s3.put_object(Bucket=name, Key=f"tables/part-{part}.parquet", Body=sink.getvalue())
    dataflow = s3_dataflow(engine_client, engine_tenant, s3_server, name, "/tables", {"format": "parquet"})
    run = factories.wait_for_run(
        engine_client, engine_tenant, factories.start_run(engine_client, engine_tenant, dataflow.flow_id)
    )
    assert run["state"] == "success", run
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 1000,
        "outputRecordCount": 1000,
        "failedRecordCount": 0,
    }
    assert run["metrics"]["fileSummary"]["inputFileCount"] == 2
    batch_id = run["activities"][1]["targetInfo"][0]["reference"]["ids"][0]
    assert dataset_rows(engine_client, engine_tenant, batch_id).column("id").to_pylist() == list(
        range(1, 1001)
    )


def test_an_unreachable_source_fails_the_copy_with_unknown_counts(
    engine_client: TestClient, engine_tenant: Tenant
) -> None:
    connection = factories.create(
        engine_client,
        engine_tenant,
        "connections",
        factories.s3_connection(
            auth={
                "specName": "Access Key",
                "params": {
                    "s3AccessKey": "k",
                    "s3SecretKey": "s",
                    "serviceUrl": "http://127.0.0.1:9",
                    "bucketName": "nowhere",
                },
            }
        ),
    )
    dataflow = factories.dataflow(
        engine_client,
        engine_tenant,
        source=factories.s3_source(connection["id"]),
        scheduleParams={"startTime": "1700000000", "frequency": "once"},
    )
    run = factories.wait_for_run(
        engine_client, engine_tenant, factories.start_run(engine_client, engine_tenant, dataflow.flow_id)
    )
    assert run["state"] == "failed"
    assert run["metrics"]["statusSummary"]["errors"] == [
        {"code": "CONNECTOR-1001-500", "message": "Error in copying the data from Source."}
    ]
    assert run["metrics"]["sizeSummary"]["inputBytes"] == -1
    assert run["metrics"]["fileSummary"]["inputFileCount"] == -1
    [copy] = run["activities"]
    assert copy["statusSummary"]["status"] == "failed"
    assert "127.0.0.1:9" in copy["statusSummary"]["extensions"]["errors"][0]["message"]
    assert "completedAtUTC" in run["metrics"]["durationSummary"]


def test_on_demand_rules(engine_client: TestClient, engine_tenant: Tenant) -> None:
    scheduled = factories.dataflow(engine_client, engine_tenant)  # every 30 minutes, not once
    body = {
        "flowId": scheduled.flow_id,
        "params": {"startTime": "1", "windowStartTime": "1", "windowEndTime": "2"},
    }
    answer = engine_client.post(f"{BASE}/runs", json=body, headers=engine_tenant.headers())
    assert answer.status_code == 400 and answer.json()["type"].endswith("FLOW-1386-400")
    once = factories.dataflow(
        engine_client, engine_tenant, scheduleParams={"startTime": "1700000000", "frequency": "once"}
    )
    for params, code in (
        ({"startTime": "1", "windowStartTime": "5", "windowEndTime": "2"}, "FLOW-1381-400"),
        ({"startTime": "1", "windowStartTime": "x", "windowEndTime": "2"}, "FLOW-1000-400"),
        ({"windowStartTime": "1", "windowEndTime": "2"}, "FLOW-1000-400"),
    ):
        answer = engine_client.post(
            f"{BASE}/runs", json={"flowId": once.flow_id, "params": params}, headers=engine_tenant.headers()
        )
        assert answer.status_code == 400 and answer.json()["type"].endswith(code), params
    missing = engine_client.post(f"{BASE}/runs", json={"params": {}}, headers=engine_tenant.headers())
    assert missing.json()["type"].endswith("FLOW-1446-400")
    engine_client.post(f"{BASE}/flows/{once.flow_id}/action?op=disable", headers=engine_tenant.headers())
    body = {
        "flowId": once.flow_id,
        "params": {"startTime": "1", "windowStartTime": "1", "windowEndTime": "2"},
    }
    assert (
        engine_client.post(f"{BASE}/runs", json=body, headers=engine_tenant.headers())
        .json()["type"]
        .endswith("FLOW-1388-400")
    )


def test_the_window_selects_files_by_last_modified_time(
    engine_client: TestClient, engine_settings: Settings, engine_tenant: Tenant
) -> None:
    client, tenant = engine_client, engine_tenant
    old = zone(engine_settings, tenant) / "windowed" / "old.csv"
    new = zone(engine_settings, tenant) / "windowed" / "new.csv"
    write_csv(old, customers(1, 5, {}))
    write_csv(new, customers(6, 7, {}))
    os.utime(old, (1_000_000_000, 1_000_000_000))
    os.utime(new, (2_000_000_000, 2_000_000_000))
    dataflow = dlz_flow(client, tenant, "windowed")
    run = factories.wait_for_run(
        client,
        tenant,
        factories.start_run(client, tenant, dataflow.flow_id, window=(1_500_000_000, 2_100_000_000)),
    )
    assert run["metrics"]["recordSummary"]["inputRecordCount"] == 7
    assert run["activities"][0]["durationSummary"]["extensions"] == {
        "windowStart": 1_500_000_000_000,
        "windowEnd": 2_100_000_000_000,
    }


def test_the_landing_zone_upload_command_and_explore(
    engine_client: TestClient, engine_settings: Settings, engine_tenant: Tenant, tmp_path: Path
) -> None:
    import subprocess
    import sys

    local = tmp_path / "upload.csv"
    write_csv(local, customers(1, 3, {}))
    env = {
        **os.environ,
        "FLOWSERVICE_HOME": str(engine_settings.home),
        "FLOWSERVICE_DATABASE_URL": engine_settings.database_url,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowservice",
            "landing-zone",
            "upload",
            "--org",
            engine_tenant.org_id,
            str(local),
            "drop/customers.csv",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    escape = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowservice",
            "landing-zone",
            "upload",
            "--org",
            engine_tenant.org_id,
            str(local),
            "../../x.csv",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert escape.returncode == 1 and "Traceback" not in escape.stderr
    spec = f"{BASE}/connectionSpecs/{catalog.DATA_LANDING_ZONE}/explore"
    root = engine_client.get(f"{spec}?objectType=root", headers=engine_tenant.headers()).json()
    assert {
        "type": "folder",
        "name": "drop",
        "path": "drop",
        "canPreview": False,
        "canFetchSchema": False,
    } in root
    folder = engine_client.get(
        f"{spec}?objectType=folder&object=drop", headers=engine_tenant.headers()
    ).json()
    assert [item["path"] for item in folder] == ["drop/customers.csv"]
    preview = engine_client.get(
        f"{spec}?objectType=file&object=drop/customers.csv&fileType=delimited&preview=true",
        headers=engine_tenant.headers(),
    ).json()
    assert [c["name"] for c in preview["schema"]["columns"]] == HEADER and len(preview["data"]) == 3
    detected = engine_client.get(
        f"{spec}?objectType=file&object=drop/customers.csv&determineProperties=true&preview=true",
        headers=engine_tenant.headers(),
    ).json()
    assert (
        detected["properties"]["fileType"] == "delimited" and detected["properties"]["columnDelimiter"] == ","
    )
    both = engine_client.get(
        f"{spec}?objectType=file&object=drop/customers.csv&determineProperties=true&fileType=json",
        headers=engine_tenant.headers(),
    )
    assert both.status_code == 400 and both.json()["type"].endswith("FLOW-1374-400")
    assert (
        engine_client.get(f"{spec}?objectType=shelf", headers=engine_tenant.headers())
        .json()["type"]
        .endswith("FLOW-1358-400")
    )
    outside = engine_client.get(f"{spec}?objectType=folder&object=../..", headers=engine_tenant.headers())
    assert outside.status_code == 400
    s3_spec = f"{BASE}/connectionSpecs/{catalog.AMAZON_S3}/explore"
    assert (
        engine_client.get(s3_spec, headers=engine_tenant.headers()).json()["type"].endswith("FLOW-1336-400")
    )


def test_explore_and_test_an_s3_connection(
    engine_client: TestClient, engine_tenant: Tenant, s3_server: str, bucket: Any
) -> None:
    s3, name = bucket
    s3.put_object(Bucket=name, Key="in/2026/a.csv", Body=b"id,email\n1,a@x.org\n2,b@x.org\n")
    params = {"s3AccessKey": "k", "s3SecretKey": "s", "serviceUrl": s3_server, "bucketName": name}
    connection = factories.create(
        engine_client,
        engine_tenant,
        "connections",
        factories.s3_connection(auth={"specName": "Access Key", "params": params}),
    )
    url = f"{BASE}/connections/{connection['id']}"
    headers = engine_tenant.headers()
    assert engine_client.get(f"{url}/test", headers=headers).json() == {"result": True}
    root = engine_client.get(f"{url}/explore?objectType=root", headers=headers).json()
    assert [(i["type"], i["name"]) for i in root] == [("folder", "in")]
    folder = engine_client.get(
        f"{url}/explore?objectType=folder&object={root[0]['path']}", headers=headers
    ).json()
    assert [(i["type"], i["name"]) for i in folder] == [("folder", "2026")]
    files = engine_client.get(
        f"{url}/explore?objectType=folder&object={folder[0]['path']}", headers=headers
    ).json()
    [file] = files
    assert file["canPreview"] is True and file["name"] == "a.csv"
    preview = engine_client.get(
        f"{url}/explore?objectType=FILE&object={file['path']}&FileType=delimited&preview=true",
        headers=headers,
    ).json()
    assert preview["data"] == [{"id": 1, "email": "a@x.org"}, {"id": 2, "email": "b@x.org"}]
    assert [c["type"] for c in preview["schema"]["columns"]] == ["integer", "string"]
    missing = engine_client.get(f"{url}/explore?objectType=folder&object=/nope/", headers=headers)
    assert missing.status_code in (200, 404)
    broken = factories.create(
        engine_client,
        engine_tenant,
        "connections",
        factories.s3_connection(
            auth={"specName": "Access Key", "params": {**params, "bucketName": "no-such-bucket"}}
        ),
    )
    answer = engine_client.get(f"{BASE}/connections/{broken['id']}/test", headers=headers).json()
    assert (
        answer["result"] is False
        and "no-such-bucket" in answer["message"]
        and "s3SecretKey" not in answer["message"]
    )
