"""The bad-file corpus through a real `flowservice worker` process, one run per file.

Each file of `tests/corpus/make_bad_files.py` lands in a landing zone and gets a dataflow declaring
its format (and compression or encoding where that is the point); one worker process executes every
run, one at a time. Each run must end with the code documented for what is wrong with the file
(DESIGN.md §6: `CONNECTOR-2001-500` at run level, `INGEST-…`/`MAPPER-…` per kind of failure), with
`input = output + failed` at run and activity level, with the failed records downloadable with their
reasons, and the worker must survive it: after the whole corpus a good file still ingests in the same
process. The worker's peak resident memory is read per run from the kernel (`VmHWM` in
/proc/{pid}/status, reset before each run through /proc/{pid}/clear_refs), so the 50 MB line and the
zip bomb are shown to stay bounded in the process that really reads them.

The worker's decompression limit is lowered to 64 MiB so the bombs (1 GiB expanded) are refused in
seconds; the default limit is the same code path with a larger number.

Every wait is on a condition with a deadline (`wait_for_run` polls the run's state), never a sleep.
The whole corpus runs on SQLite; a subset runs on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from flowservice import catalog
from flowservice.api.app import create_app
from flowservice.connectors.base import PathNotAllowed
from flowservice.connectors.landing_zone import upload
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests import factories
from tests.conftest import create_pg_database, drop_pg_database
from tests.corpus.make_bad_files import BadFile, make
from tests.e2e.test_ingestion import customers, dataset_rows, export_json, failed_records, write_csv
from tests.factories import BASE, Tenant

DECOMPRESSED_LIMIT = 64 << 20
MEMORY_BOUND = 1 << 30  # bytes of peak RSS a worker may reach on any one file
OPTIONS = {"partialIngestionPercent": 50, "errorDiagnosticsEnabled": True}
PROCESSING_FAILED = "CONNECTOR-2001-500"
WITH_DIAGNOSTICS = "INGEST-1212-400"
CORRUPT = "INGEST-1401-400"
UNKNOWN = None  # a count the test does not pin (it depends on where a stream was cut)
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Expected:
    """What a run over one file must end with."""

    state: str
    records: tuple[int | None, int | None, int | None]  # input, output, failed (None: not pinned)
    codes: dict[str, int | None]  # the Promotion Activity's extensions.errors: code → recordCount
    says: str = ""  # a phrase the file's error, or one failed record's reason, must contain
    failed_ids: list[int] | None = None  # record numbers of the failed records downloaded, when pinned


def corrupt(records: tuple[int | None, int | None, int | None], says: str, **more: Any) -> Expected:
    """Records that could not be parsed, with the rest kept: success with failed records."""
    return Expected("success", records, {WITH_DIAGNOSTICS: None, CORRUPT: records[2]}, says, **more)


def refused(says: str, records: tuple[int | None, int | None, int | None] = (0, 0, 0)) -> Expected:
    """A file that as a whole cannot be read: the run fails and names the file and why."""
    return Expected("failed", records, {CORRUPT: None}, says)


CLEAN = Expected("success", (0, 0, 0), {})
EXPECTED: dict[str, Expected] = {
    "truncated.csv.gz": corrupt((UNKNOWN, UNKNOWN, 1), "the compressed data ends early"),
    "latin1.csv": Expected(
        "failed", (1, 0, 1), {WITH_DIAGNOSTICS: None, CORRUPT: 1}, "declare the encoding ISO-8859-1"
    ),
    "utf16.csv": refused("the file is UTF-16 text"),
    "bom.csv": Expected("success", (100, 100, 0), {}),
    "bom.json": Expected("success", (100, 100, 0), {}),
    "ragged.csv": corrupt((100, 95, 5), "expected 6 columns, found 5", failed_ids=[10, 20, 30, 40, 50]),
    "unclosed_quote.csv": corrupt((90, 89, 1), "a quote is never closed", failed_ids=[90]),
    "long_line.csv": corrupt((11, 10, 1), "longer than the block size", failed_ids=[11]),
    "long_line.json": Expected(
        "success", (21, 20, 1), {WITH_DIAGNOSTICS: None, "INGEST-1556-400": 1}, "longer than 50", [11]
    ),
    "wrong_types.csv": Expected(
        "failed",
        (50, 0, 50),
        {WITH_DIAGNOSTICS: None, "INGEST-1556-400": 50, "MAPPER-3700-400": 50},
        "id is not an integer",
    ),
    "wrong_types.json": Expected(
        "failed",
        (50, 0, 50),
        {WITH_DIAGNOSTICS: None, "INGEST-1556-400": 50, "MAPPER-3700-400": 50},
        "name is not text",
    ),
    "deep.json": corrupt((21, 20, 1), "nested deeper than 64 levels", failed_ids=[11]),
    # read until the records name 10,000 fields, then the rest is one bad record
    "sparse_keys.json": corrupt((UNKNOWN, UNKNOWN, 1), "the records name more than 10000 fields"),
    "wide_header.csv": refused("the first line has 200006 columns; at most 10000 are read"),
    "empty.csv": CLEAN,
    "empty.json": CLEAN,
    "header_only.csv": CLEAN,
    "duplicate_columns.csv": refused("the header names the column 'email' more than once"),
    "duplicate_columns.parquet": refused("the Parquet file names the column 'email' more than once"),
    "trailing_garbage.json": corrupt((21, 20, 1), "invalid JSON", failed_ids=[21]),
    "trailing_garbage_array.json": corrupt(
        (21, 20, 1), "unexpected text after the JSON array", failed_ids=[21]
    ),
    "mismatched.parquet": Expected(
        "failed",
        (50, 0, 50),
        {WITH_DIAGNOSTICS: None, "INGEST-1555-400": 50, "MAPPER-3700-400": 50},
        "required field email is missing",
    ),
    "bomb.zip": refused(f"more than {DECOMPRESSED_LIMIT} bytes when decompressed (its zip entry declares"),
    # gzip has no trustworthy size up front: the records before the limit are read, and all rejected
    "bomb.csv.gz": refused(f"expands to more than {DECOMPRESSED_LIMIT} bytes", records=(UNKNOWN, 0, UNKNOWN)),
    "zip_slip.zip": refused("an entry named '../../evil.csv', outside its own folder"),
    "zip_absolute.zip": refused("an entry named '/tmp/evil.csv', outside its own folder"),
    "plain_declared_gzip.csv": refused("could not be read as gzip data"),
}
POSTGRES_SUBSET = (
    "truncated.csv.gz",
    "ragged.csv",
    "deep.json",
    "duplicate_columns.csv",
    "bomb.zip",
    "zip_slip.zip",
)


# --------------------------------------------------------------------------------------------- the world


@dataclass
class Worker:
    """A `flowservice worker` process and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker says it runs (its start line), so the first file's time is the file's own."""
        deadline = time.monotonic() + timeout
        while " executors taking " not in self.log.read_text():
            assert self.alive(), self.log.read_text()
            assert time.monotonic() < deadline, f"the worker did not start in {timeout}s"
            time.sleep(0.05)

    def reset_peak(self) -> None:
        """Start a new peak: writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0)."""
        (Path("/proc") / str(self.process.pid) / "clear_refs").write_text("5")

    def peak_rss(self) -> int:
        for line in (Path("/proc") / str(self.process.pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/{pid}/status")


@dataclass
class World:
    settings: Settings
    client: TestClient
    tenant: Tenant
    worker: Worker
    zone: Path
    seen: list[dict[str, Any]] = field(default_factory=list)  # one line of the report per run


@contextmanager
def world(backend: str, home: Path) -> Iterator[World]:
    """A database of its own, an app without workers, one worker process with the lowered limit."""
    url = f"sqlite:///{home / 'bad.db'}" if backend == "sqlite" else create_pg_database()
    try:
        settings = Settings.load(home=home, database_url=url, public_url="http://testserver")
        migrate.upgrade(settings.database_url)
        services = Services.from_settings(settings)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")},
            "FLOWSERVICE_HOME": str(home),
            "FLOWSERVICE_DATABASE_URL": url,
            "FLOWSERVICE_POLL_SECONDS": "0.05",
            "FLOWSERVICE_MAX_DECOMPRESSED_BYTES": str(DECOMPRESSED_LIMIT),
        }
        log = home / "worker.log"
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "flowservice", "worker", "--concurrency", "1"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            with TestClient(create_app(services)) as client:
                tenant = factories.new_tenant(services, client)
                zone = settings.landing_zone / tenant.org_id / tenant.sandbox
                worker = Worker(process, log)
                worker.wait_ready()
                yield World(settings, client, tenant, worker, zone)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            services.close()
            shutil.rmtree(settings.landing_zone, ignore_errors=True)  # 100 MB of long lines: not kept
    finally:
        if backend != "sqlite":
            drop_pg_database(url)


def file_flow(w: World, path: str, data: dict[str, Any]) -> str:
    """A landing-zone source reading one file, the Customers dataset, and a flow run on demand."""
    source = {
        "name": path,
        "data": data,
        "params": {"path": path, "type": "file"},
        "connectionSpec": {"id": catalog.DATA_LANDING_ZONE, "version": "1.0"},
    }
    scheduled = {"startTime": "1700000000", "frequency": "once"}
    return factories.dataflow(
        w.client, w.tenant, source=source, scheduleParams=scheduled, options=OPTIONS
    ).flow_id


def run_once(w: World, name: str, flow_id: str) -> dict[str, Any]:
    """Start a run, wait for it to end, and note the worker's peak memory during it."""
    w.worker.reset_peak()
    started = time.monotonic()
    run = factories.wait_for_run(w.client, w.tenant, factories.start_run(w.client, w.tenant, flow_id))
    seconds = time.monotonic() - started
    assert w.worker.alive(), f"the worker died on {name}:\n{w.worker.log.read_text()[-3000:]}"
    peak = w.worker.peak_rss()
    records = run["metrics"]["recordSummary"]
    w.seen.append(
        {
            "file": name,
            "state": run["state"],
            "records": (
                records["inputRecordCount"],
                records["outputRecordCount"],
                records["failedRecordCount"],
            ),
            "codes": [
                e["code"] for e in _promotion(run)["statusSummary"].get("extensions", {}).get("errors", [])
            ],
            "seconds": round(seconds, 2),
            "peak_mib": peak >> 20,
        }
    )
    assert peak < MEMORY_BOUND, f"{name}: the worker's peak RSS reached {peak >> 20} MiB"
    return run


def _promotion(run: dict[str, Any]) -> dict[str, Any]:
    promotion: dict[str, Any]
    [promotion] = [a for a in run["activities"] if a["name"] == "Promotion Activity"]
    return promotion


# --------------------------------------------------------------------------------------------- checks


def check(w: World, bad: BadFile, run: dict[str, Any], expected: Expected) -> None:
    """The run's state, counts, codes, messages and failed records against what the file deserves."""
    name = bad.name
    assert run["state"] == expected.state, (name, run["metrics"], _promotion(run)["statusSummary"])
    copy, promotion = run["activities"]
    records = run["metrics"]["recordSummary"]
    counts = (records["inputRecordCount"], records["outputRecordCount"], records["failedRecordCount"])
    assert counts[0] == counts[1] + counts[2], (name, records)  # input = output + failed, run level
    assert promotion["recordSummary"] == records, name  # and at activity level, the same numbers
    assert copy["recordSummary"]["inputRecordCount"] == counts[0], name
    for got, want in zip(counts, expected.records, strict=True):
        assert want is None or got == want, (name, counts, expected.records)

    status = promotion["statusSummary"]
    details = status.get("extensions", {}).get("errors", [])
    assert {e["code"]: e.get("recordCount") for e in details} == expected.codes, (name, details)
    run_errors = run["metrics"]["statusSummary"].get("errors", [])
    if expected.codes:
        assert [e["code"] for e in run_errors] == [PROCESSING_FAILED], (name, run_errors)
    else:
        assert run_errors == [], (name, run_errors)
    messages = [e["message"] for e in details]

    manifest = status.get("extensions", {}).get("manifest")
    if WITH_DIAGNOSTICS in expected.codes:
        assert manifest is not None, name
        failed = failed_records(w.client, w.tenant, manifest["failedRecords"])
        if expected.records[2] is not None:  # every failed record of the corpus is a bad one, no bystanders
            assert len(failed) == expected.records[2], (name, len(failed))
        assert all(f["file"] == f"corpus/{name}" and f["errors"] for f in failed), name
        assert all(e["code"] and e["message"] for f in failed for e in f["errors"]), name
        if expected.failed_ids is not None:
            assert [f["record"] for f in failed] == expected.failed_ids, (name, [f["record"] for f in failed])
        messages += [e["message"] for f in failed for e in f["errors"]]
    else:
        assert manifest is None, name
    [listed] = export_json(
        w.client, w.tenant, promotion["fileSummary"]["extensions"]["manifest"]["fileInfo"]
    )["files"]
    assert listed["path"] == f"corpus/{name}" and listed["records"] == counts[0], (name, listed)
    if expected.codes == {CORRUPT: None}:  # refused as a whole: the manifest says so, and why
        assert listed["status"] == "failed" and expected.says in listed["error"], (name, listed)
    if expected.says:
        assert any(expected.says in m for m in messages), (name, messages[:5])
    if counts[1]:
        batch_id = promotion["targetInfo"][0]["reference"]["ids"][0]
        assert dataset_rows(w.client, w.tenant, batch_id).num_rows == counts[1], name


def check_every_field_reported(w: World, run: dict[str, Any], fields: set[str]) -> None:
    """Wrong values in every column: each failed record names every field at fault, not just the first."""
    manifest = _promotion(run)["statusSummary"]["extensions"]["manifest"]
    failed = failed_records(w.client, w.tenant, manifest["failedRecords"])
    assert len(failed) == 50
    assert all({e["field"] for e in f["errors"]} == fields for f in failed), failed[0]


def good_run(w: World) -> dict[str, Any]:
    """A healthy file after the corpus: the same worker process still ingests."""
    write_csv(w.zone / "good" / "customers.csv", customers(1, 100, {}))
    run = run_once(w, "good/customers.csv", file_flow(w, "good/customers.csv", {"format": "delimited"}))
    assert run["state"] == "success", run["metrics"]
    assert run["metrics"]["recordSummary"] == {
        "inputRecordCount": 100,
        "outputRecordCount": 100,
        "failedRecordCount": 0,
    }
    return run


def report(w: World, backend: str) -> None:
    """The per-file outcomes, for RELIABILITY.md (shown with `pytest -s`)."""
    print(f"\n{backend}: file | state | input/output/failed | codes | seconds | peak RSS MiB")
    for line in w.seen:
        records = "/".join(str(n) for n in line["records"])
        print(
            f"{line['file']} | {line['state']} | {records} | {', '.join(line['codes'])} | "
            f"{line['seconds']} | {line['peak_mib']}"
        )


def assert_no_crash(w: World) -> None:
    assert w.worker.alive()
    log = w.worker.log.read_text()
    assert "Traceback" not in log and "failed unexpectedly" not in log, log[-3000:]


# --------------------------------------------------------------------------------------------- tests


def test_every_bad_file_ends_with_its_code_and_the_worker_survives(tmp_path: Path) -> None:
    with world("sqlite", tmp_path) as w:
        corpus = make(w.zone / "corpus")
        assert sorted(b.name for b in corpus) == sorted(EXPECTED)
        for bad in corpus:
            run = run_once(w, bad.name, file_flow(w, f"corpus/{bad.name}", bad.data))
            check(w, bad, run, EXPECTED[bad.name])
            if bad.name == "wrong_types.csv":
                check_every_field_reported(w, run, {"id", "name", "email", "amount", "signup", "active"})
        good_run(w)
        assert_no_crash(w)
        report(w, "sqlite")


def test_a_subset_on_postgres(tmp_path: Path) -> None:
    with world("postgres", tmp_path) as w:
        corpus = [bad for bad in make(w.zone / "corpus", long_line_bytes=10) if bad.name in POSTGRES_SUBSET]
        for bad in corpus:
            run = run_once(w, bad.name, file_flow(w, f"corpus/{bad.name}", bad.data))
            check(w, bad, run, EXPECTED[bad.name])
        good_run(w)
        assert_no_crash(w)
        report(w, "postgres")


@pytest.mark.parametrize(
    "dest",
    [
        "../evil.csv",
        "../../evil.csv",
        "a/../../evil.csv",
        "/../evil.csv",
        "dlz-user-container/../../evil.csv",
    ],
)
def test_landing_zone_names_with_dot_dot_are_refused(tmp_path: Path, dest: str) -> None:
    """An upload's name that climbs out of the tenant's zone is refused and writes nothing anywhere."""
    root = tmp_path / "zone" / "org" / "prod"
    local = tmp_path / "local.csv"
    write_csv(local, customers(1, 3, {}))
    with pytest.raises(PathNotAllowed, match=r"'\.\.'"):
        upload(root, local, dest)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["local.csv"]
    assert upload(root, local, "a..b.csv") == "a..b.csv"  # dots inside a name are only dots


def test_dot_dot_through_the_cli_and_the_api(tmp_path: Path) -> None:
    """`flowservice landing-zone upload` answers a `../` destination with one error line, exit 1;
    a landing-zone source connection whose path has `..` is refused with 400 naming params.path."""
    from flowservice.cli.app import app

    with world("sqlite", tmp_path) as w:
        local = tmp_path / "local.csv"
        write_csv(local, customers(1, 3, {}))
        env = {"FLOWSERVICE_HOME": str(w.settings.home), "FLOWSERVICE_DATABASE_URL": w.settings.database_url}
        answer = CliRunner().invoke(
            app, ["landing-zone", "upload", "--org", w.tenant.org_id, str(local), "../../evil.csv"], env=env
        )
        assert answer.exit_code == 1 and "'..'" in answer.output and "Traceback" not in answer.output
        assert not (w.zone.parent.parent / "evil.csv").exists() and not (w.zone.parent / "evil.csv").exists()
        body = {
            "name": "escape",
            "data": {"format": "delimited"},
            "params": {"path": "corpus/../../other-org/secret.csv", "type": "file"},
            "connectionSpec": {"id": catalog.DATA_LANDING_ZONE, "version": "1.0"},
        }
        refused_ = w.client.post(f"{BASE}/sourceConnections", json=body, headers=w.tenant.headers())
        assert refused_.status_code == 400 and "params.path" in refused_.text
        assert_no_crash(w)
