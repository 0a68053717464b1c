"""No connection secret ever leaves the store: not in a response, a log line, an error message, a run,
a diagnostic file or anything else under the home.

Distinctive secrets are planted in every place a connection keeps one (an S3 secret key and session
token, a PostgreSQL password inside a connection string, an SFTP password, an SFTP private key and its
pass phrase). Then those connections are made to fail in every way we can: hosts that do not resolve,
closed ports, refused logins, a hostile S3 endpoint that echoes every request header back in its error
(and one that answers garbage that quotes them), missing buckets, databases and tables, malformed
connection strings (a `;` forgotten before `PWD=`), paths that climb out, bad requests and patches that
carry the secrets; and each is tested, explored and run (with automatic retries), first in this process
with every logger at DEBUG, then again through a live `flowservice serve` whose own logging is at DEBUG.
One flow succeeds partially, so the lake holds staged files, Parquet parts and failed-record
diagnostics too.

Then every response (status, headers, body), every log record (message and traceback) and the server's
whole output, every run document, and every file under the home (database, lake, staging, diagnostics;
Parquet read back as values) is searched for each secret and for its first and last 20 characters
(a message cut short must not show half a secret). Expected: no hit. The test servers' own loggers
(moto, werkzeug, asyncssh) are left out of the search: they are the remote side, which is given the
credential by design.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncssh
import boto3
import httpx
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from flowservice import catalog
from flowservice.api.app import create_app
from flowservice.services import execution
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests import factories
from tests.e2e.test_ingestion import HEADER, customers
from tests.factories import BASE, Tenant
from tests.live import free_port, wait_until_up
from tests.sftp_server import start_sftp_server

pytestmark = pytest.mark.slow

HARNESS_LOGGERS = ("asyncssh", "werkzeug", "moto")  # the remote side: it is handed the credential
ONCE = {"startTime": "1700000000", "frequency": "once"}
WINDOW = {"startTime": "1700000000", "windowStartTime": "0", "windowEndTime": "4000000000"}


def canary(kind: str) -> str:
    return f"Cnry{kind}{secrets.token_hex(16)}"


@dataclass(frozen=True)
class Planted:
    s3_secret_key: str = field(default_factory=lambda: canary("S3sk"))
    s3_session_token: str = field(default_factory=lambda: canary("S3st"))
    pg_password: str = field(default_factory=lambda: canary("PGpw"))
    sftp_password: str = field(default_factory=lambda: canary("SFpw"))
    sftp_pass_phrase: str = field(default_factory=lambda: canary("SFpp"))
    sftp_private_key: str = ""  # base64 of a key file; set once the key is made

    def needles(self) -> dict[str, bytes]:
        """What must not appear: each secret whole, and its first and last 20 characters."""
        found: dict[str, bytes] = {}
        for name in ("s3_secret_key", "s3_session_token", "pg_password", "sftp_password", "sftp_pass_phrase"):
            value: str = getattr(self, name)
            found[name] = value.encode()
            found[name + "[:20]"] = value[:20].encode()
            found[name + "[-20:]"] = value[-20:].encode()
        # a key file's base64 starts with a header every key shares: look for its random middle
        found["sftp_private_key[200:240]"] = self.sftp_private_key[200:240].encode()
        return found


# -- recording every answer ------------------------------------------------------------------------


@dataclass
class Api:
    """Calls the API and keeps every answer (status, headers and body) for the search."""

    http: httpx.Client  # a TestClient (this process) or a client of the live server
    tenant: Tenant
    answers: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.tenant.headers(), **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        self.answers.append(
            f"{method} {path} -> {response.status_code}\n{dict(response.headers)}\n{response.text}"
        )
        return response

    def create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.call("POST", f"{BASE}/{collection}", json=body)
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made


# -- the remote sides ------------------------------------------------------------------------------


@contextmanager
def hostile_s3() -> Iterator[str]:
    """An "S3 endpoint" that puts everything it was sent into its answers: 403 AccessDenied for bucket
    `deny`, 500 for `fail`, and for `garbage` a 200 that is not XML, all quoting every request header
    (the session token travels in one) and the request line."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            echoed = f"{self.requestline} {dict(self.headers.items())}"
            bucket = self.path.lstrip("/").split("/")[0].split("?")[0]
            if bucket == "garbage":
                status, body = 200, f"not xml at all: {echoed}"
            else:
                status = 500 if bucket == "fail" else 403
                code = "InternalError" if status == 500 else "AccessDenied"
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{echoed}</Message><RequestId>r</RequestId></Error>"
                )
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", "application/xml")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def protected_key(pass_phrase: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(pass_phrase.encode()),
    )
    return base64.b64encode(pem).decode()


@dataclass
class Remotes:
    moto: str
    bucket: str
    hostile: str
    sftp_port: int  # accepts user "reader" with the planted password
    strict_sftp_port: int  # knows another password: the planted one is refused


# -- the connections, sources and flows ------------------------------------------------------------


@dataclass
class Made:
    connections: dict[str, str] = field(default_factory=dict)  # label -> id
    flows: dict[str, str] = field(default_factory=dict)  # label -> id
    explore: dict[str, list[str]] = field(default_factory=dict)  # connection id -> queries


def s3(planted: Planted, url: str, bucket: str) -> dict[str, Any]:
    params = {
        "s3AccessKey": "AKIAEXAMPLEKEYID",
        "s3SecretKey": planted.s3_secret_key,
        "s3SessionToken": planted.s3_session_token,
        "serviceUrl": url,
        "bucketName": bucket,
    }
    return factories.s3_connection(name="s3", auth={"specName": "Access Key", "params": params})


def sftp(params: dict[str, Any], spec_name: str = "Basic Authentication for sftp") -> dict[str, Any]:
    return {
        "name": "sftp",
        "auth": {"specName": spec_name, "params": params},
        "connectionSpec": {"id": catalog.SFTP, "version": "1.0"},
    }


def postgres(connection_string: str) -> dict[str, Any]:
    return {
        "name": "postgres",
        "auth": {
            "specName": "Connection String Based Authentication",
            "params": {"connectionString": connection_string},
        },
        "connectionSpec": {"id": catalog.POSTGRESQL, "version": "1.0"},
    }


def connection_bodies(planted: Planted, remotes: Remotes) -> dict[str, tuple[dict[str, Any], str]]:
    """label -> (connection body, path or table a flow reads)."""
    pg = planted.pg_password
    dead = closed_port()
    return {
        "s3-works": (s3(planted, remotes.moto, remotes.bucket), "/in"),
        "s3-no-bucket": (s3(planted, remotes.moto, "no-such-bucket-" + uuid.uuid4().hex[:8]), "/in"),
        "s3-closed-port": (s3(planted, f"http://127.0.0.1:{dead}", "b"), "/in"),
        "s3-no-host": (s3(planted, "http://s3.nowhere.invalid", "b"), "/in"),
        "s3-denied": (s3(planted, remotes.hostile, "deny"), "/in"),
        "s3-failing": (s3(planted, remotes.hostile, "fail"), "/in"),
        "s3-garbage": (s3(planted, remotes.hostile, "garbage"), "/in"),
        "sftp-works": (
            sftp(
                {
                    "host": "localhost",
                    "port": remotes.sftp_port,
                    "userName": "reader",
                    "password": planted.sftp_password,
                }
            ),
            "/data",
        ),
        "sftp-refused": (
            sftp(
                {
                    "host": "localhost",
                    "port": remotes.strict_sftp_port,
                    "userName": "reader",
                    "password": planted.sftp_password,
                }
            ),
            "/data",
        ),
        "sftp-closed-port": (
            sftp(
                {"host": "127.0.0.1", "port": dead, "userName": "reader", "password": planted.sftp_password}
            ),
            "/data",
        ),
        "sftp-no-host": (
            sftp({"host": "sftp.nowhere.invalid", "userName": "reader", "password": planted.sftp_password}),
            "/data",
        ),
        "sftp-bad-pass-phrase": (
            sftp(
                {
                    "host": "localhost",
                    "port": remotes.sftp_port,
                    "userName": "reader",
                    "privateKeyContent": planted.sftp_private_key,
                    "passPhrase": planted.sftp_pass_phrase,
                },
                "SSH PublicKey Authentication for sftp",
            ),
            "/data",
        ),
        "pg-unknown-role": (
            postgres(f"Server=127.0.0.1;Port=5432;Database=test;UID=no_role_{uuid.uuid4().hex[:8]};PWD={pg}"),
            "public.customers",
        ),
        "pg-closed-port": (
            postgres(f"Server=127.0.0.1;Port={dead};Database=test;UID=u;PWD={pg}"),
            "public.t",
        ),
        "pg-no-host": (postgres(f"Server=pg.nowhere.invalid;Database=test;UID=u;PWD={pg}"), "public.t"),
        "pg-no-database": (
            postgres(
                f"Server=127.0.0.1;Port=5432;Database=nodb_{uuid.uuid4().hex[:8]};UID=postgres;PWD={pg}"
            ),
            "public.t",
        ),
        "pg-no-table": (
            postgres(f"Server=127.0.0.1;Port=5432;Database=test;UID=postgres;Password={{{pg}}}"),
            "public.no_such_table_" + uuid.uuid4().hex[:8],
        ),
        # a ';' forgotten: the password would land in Port, or in the user's name
        "pg-port-typo": (postgres(f"Server=127.0.0.1;Port=5432 PWD={pg};Database=test;UID=u"), "public.t"),
        "pg-user-typo": (postgres(f"Server=127.0.0.1;Database=test;UID=u PWD={pg}"), "public.t"),
        "pg-option-typo": (
            postgres(f"Server=127.0.0.1;Database=test;UID=u;EncryptionMethod=1 PWD={pg}"),
            "public.t",
        ),
        "pg-bad-part": (postgres(f"Server=127.0.0.1;Database=test;UID=u;PWD=x;{pg}"), "public.t"),
    }


def explore_queries(label: str) -> list[str]:
    if label.startswith("pg-"):
        return ["objectType=root", "objectType=table&object=public.nope&preview=true"]
    if label.startswith("s3-"):
        return [
            "objectType=root",
            "objectType=folder&object=/in",
            "objectType=folder&object=/../up",
            "objectType=file&object=/in/a.csv&fileType=delimited",
        ]
    return [
        "objectType=root",
        "objectType=folder&object=/data",
        "objectType=folder&object=/data/../../etc",
        "objectType=file&object=/data/a.csv&determineProperties=true",
    ]


def build(api: Api, planted: Planted, remotes: Remotes) -> Made:
    made = Made()
    schema_id = factories.schema(api.http, api.tenant)  # type: ignore[arg-type]
    mapping_id = factories.mapping_set(api.http, api.tenant, schema_id, factories.IDENTITY_MAPPINGS)  # type: ignore[arg-type]
    dataset_id = factories.dataset(api.http, api.tenant, schema_id)  # type: ignore[arg-type]
    target_id = api.create("targetConnections", factories.target(dataset_id))["id"]
    for label, (body, path) in connection_bodies(planted, remotes).items():
        connection_id = api.create("connections", body)["id"]
        made.connections[label] = connection_id
        made.explore[connection_id] = explore_queries(label)
        spec_id = body["connectionSpec"]["id"]
        table = spec_id == catalog.POSTGRESQL
        source = {
            "name": f"{label} source",
            "baseConnectionId": connection_id,
            "data": {"format": "tabular"} if table else {"format": "delimited"},
            "params": {"tableName": path} if table else {"path": path, "type": "folder", "recursive": True},
            "connectionSpec": {"id": spec_id, "version": "1.0"},
        }
        source_id = api.create("sourceConnections", source)["id"]
        transformations: list[dict[str, Any]] = [
            {"name": "Mapping", "params": {"mappingId": mapping_id, "mappingVersion": 0}}
        ]
        flow = factories.flow(
            source_id,
            target_id,
            name=f"{label} flow",
            scheduleParams=ONCE,
            transformations=transformations,
            options={"maxRetries": 1, "partialIngestionPercent": 50, "errorDiagnosticsEnabled": True},
        )
        if table:
            flow["flowSpec"] = {"id": catalog.CRM_TO_AEP, "version": "1.0"}
            transformations.insert(0, {"name": "Copy", "params": {"deltaColumn": {"name": "updated_at"}}})
        made.flows[label] = api.create("flows", flow)["id"]
    return made


def abuse(api: Api, planted: Planted, made: Made) -> None:
    """Requests that carry the secrets and are refused, and patches of secret params."""
    s3_params = {
        "s3AccessKey": "AKIA",
        "s3SecretKey": planted.s3_secret_key,
        "serviceUrl": "http://127.0.0.1:9",
    }
    refusals = [
        {**s3_params, "s3Secret": planted.s3_secret_key},  # unknown parameter
        {**s3_params, "s3SecretKey": [planted.s3_secret_key]},  # wrong type
        {**s3_params, "serviceUrl": f"http://169.254.169.254/{planted.s3_session_token}"},  # refused address
        {**s3_params, "bucketName": {"x": planted.s3_session_token}},
    ]
    for params in refusals:
        body = factories.s3_connection(auth={"specName": "Access Key", "params": params})
        assert api.call("POST", f"{BASE}/connections", json=body).status_code == 400
    broken = (
        '{"name": "x", "auth": {"specName": "Access Key", "params": {"s3SecretKey": "' + planted.s3_secret_key
    )
    assert (
        api.call(
            "POST", f"{BASE}/connections", content=broken, headers={"content-type": "application/json"}
        ).status_code
        == 400
    )
    pg_body = postgres(f"Server=h;Database=d;UID=u;PWD={planted.pg_password}")
    pg_body["auth"]["params"]["extra"] = planted.pg_password
    assert api.call("POST", f"{BASE}/connections", json=pg_body).status_code == 400
    sftp_body = sftp(
        {"host": "h", "port": planted.sftp_password, "userName": "u", "password": planted.sftp_password}
    )
    assert api.call("POST", f"{BASE}/connections", json=sftp_body).status_code == 400

    connection_id = made.connections["s3-denied"]
    etag = api.call("GET", f"{BASE}/connections/{connection_id}").json()["items"][0]["etag"]
    patches: list[tuple[list[dict[str, Any]], str]] = [
        ([{"op": "replace", "path": "/auth/params/s3SecretKey", "value": [planted.s3_secret_key]}], etag),
        ([{"op": "copy", "from": "/auth/params/s3SecretKey", "path": "/name"}], etag),
        (
            [{"op": "replace", "path": "/auth/params/s3SecretKey/deeper", "value": planted.s3_secret_key}],
            etag,
        ),
        ([{"op": "add", "path": "/auth/params/unknown", "value": planted.s3_session_token}], etag),
        ([{"op": "replace", "path": "/auth/params/s3SecretKey", "value": planted.s3_secret_key}], '"stale"'),
    ]
    for ops, match in patches:
        answer = api.call(
            "PATCH", f"{BASE}/connections/{connection_id}", json=ops, headers={"if-match": match}
        )
        assert answer.status_code in (400, 412), answer.text
    # a patch that works, and the connection read back: the secret is neither echoed nor returned
    ok = api.call(
        "PATCH",
        f"{BASE}/connections/{connection_id}",
        json=[{"op": "replace", "path": "/auth/params/s3SecretKey", "value": planted.s3_secret_key}],
        headers={"if-match": etag},
    )
    assert ok.status_code == 200, ok.text
    api.call("GET", f"{BASE}/connections/{connection_id}")
    api.call("GET", f"{BASE}/connections?limit=1000")


def exercise(api: Api, made: Made) -> list[str]:
    """Test and explore every connection, and start a run of every flow; the run ids."""
    for connection_id, queries in made.explore.items():
        api.call("GET", f"{BASE}/connections/{connection_id}/test")
        for query in queries:
            api.call("GET", f"{BASE}/connections/{connection_id}/explore?{query}")
    run_ids = []
    for flow_id in made.flows.values():
        answer = api.call("POST", f"{BASE}/runs", json={"flowId": flow_id, "params": WINDOW})
        assert answer.status_code == 201, answer.text
        run_ids.append(answer.json()["id"])
    return run_ids


def runs_of(api: Api, made: Made) -> list[dict[str, Any]]:
    """Every run of the flows (retries included), each also read alone."""
    found = []
    for flow_id in made.flows.values():
        listed = api.call("GET", f"{BASE}/runs?property=flowId=={flow_id}&limit=1000").json()["items"]
        for run in listed:
            found.append(api.call("GET", f"{BASE}/runs/{run['id']}").json()["items"][0])
    return found


def settled(api: Api, made: Made) -> bool:
    for flow_id in made.flows.values():
        listed = api.call("GET", f"{BASE}/runs?property=flowId=={flow_id}&limit=1000").json()["items"]
        if any(r["state"] not in ("success", "failed", "cancelled") for r in listed):
            return False
    return True


# -- the search ------------------------------------------------------------------------------------


@dataclass
class Evidence:
    answers: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def places(self) -> dict[str, int]:
        return {
            "responses": len(self.answers),
            "log lines": len(self.log_lines),
            "run documents": len(self.runs),
            "files": len(self.files),
        }

    def hits(self, needles: dict[str, bytes]) -> list[str]:
        found = []
        haystacks: list[tuple[str, bytes]] = [
            *((f"response {i}: {a[:120]}", a.encode()) for i, a in enumerate(self.answers)),
            *((f"log line: {line[:200]}", line.encode()) for line in self.log_lines),
            *((f"run {r.get('id')}", json.dumps(r).encode()) for r in self.runs),
            *((f"file {name}", data) for name, data in self.files.items()),
        ]
        for where, data in haystacks:
            for name, needle in needles.items():
                if needle in data:
                    found.append(f"{name} in {where}")
        return found


def read_files(root: Path) -> dict[str, bytes]:
    """Every file under `root`, Parquet also as the values it holds (its pages may be compressed)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data += json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
        found[str(path.relative_to(root))] = data
    return found


def log_lines(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    return [formatter.format(record) for record in records if not record.name.startswith(HARNESS_LOGGERS)]


# -- the test --------------------------------------------------------------------------------------


@pytest.fixture
def remotes(s3_server: str, tmp_path: Path, planted: Planted) -> Iterator[Remotes]:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    )
    bucket = f"leaks-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    rows = customers(1, 40, {3: "bad-amount", 9: "missing-email"})
    text = ",".join(HEADER) + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=text.encode())
    tree = tmp_path / "sftp"
    (tree / "data").mkdir(parents=True)
    (tree / "data" / "a.csv").write_text(text)
    os.symlink("/etc", tree / "data" / "etc-link")
    authorized = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    _, port, stop = start_sftp_server(tree, "reader", planted.sftp_password, authorized)
    _, strict_port, stop_strict = start_sftp_server(tree, "reader", "another-password", authorized)
    try:
        with hostile_s3() as hostile:
            yield Remotes(s3_server, bucket, hostile, port, strict_port)
    finally:
        stop()
        stop_strict()


@pytest.fixture
def planted() -> Planted:
    base = Planted()
    return Planted(
        base.s3_secret_key,
        base.s3_session_token,
        base.pg_password,
        base.sftp_password,
        base.sftp_pass_phrase,
        protected_key("the-right-pass-phrase"),
    )


@contextmanager
def debug_server(home: Path, database_url: str, log: Path) -> Iterator[str]:
    """`flowservice serve` with the root logger at DEBUG (every library's debug output included),
    a worker, no scheduler; its stdout and stderr go to `log`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
    env.update(
        FLOWSERVICE_HOME=str(home),
        FLOWSERVICE_DATABASE_URL=database_url,
        FLOWSERVICE_PUBLIC_URL=url,
        FLOWSERVICE_WORKERS="1",
        FLOWSERVICE_SCHEDULER="false",
        FLOWSERVICE_RETRY_BACKOFF_SECONDS="0",
    )
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
        "from flowservice.cli.app import main\n"
        f"sys.argv = ['flowservice', 'serve', '--host', '127.0.0.1', '--port', '{port}']\n"
        "main()\n"
    )
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdout=handle, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(condition: Callable[[], bool], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled within {timeout}s")
        time.sleep(0.25)


def test_no_planted_secret_appears_anywhere(
    tmp_path: Path,
    remotes: Remotes,
    planted: Planted,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    database_url = f"sqlite:///{home / 'flowservice.db'}"
    settings = Settings.load(
        home=home, database_url=database_url, public_url="http://testserver", retry_backoff_seconds=0
    )
    migrate.upgrade(settings.database_url)
    evidence = Evidence()

    # 1. in this process, every logger at DEBUG; runs executed here, retries included
    services = Services.from_settings(settings)
    try:
        with TestClient(create_app(services)) as client:
            api = Api(client, factories.new_tenant(services, client))
            made = build(api, planted, remotes)
            abuse(api, planted, made)
            exercise(api, made)
            while execution.run_next(services, "leak-test"):
                pass
            evidence.runs += runs_of(api, made)
            evidence.answers += api.answers
    finally:
        services.close()

    # 2. the same through a live server whose own logging is at DEBUG, runs executed by its worker
    server_log = tmp_path / "server.log"
    with debug_server(home, database_url, server_log) as url, httpx.Client(base_url=url, timeout=60) as http:
        token = http.post(
            "/ims/token/v3",
            data={
                "grant_type": "client_credentials",
                "client_id": api.tenant.client_id,
                "client_secret": api.tenant.client_secret,
            },
        ).json()["access_token"]
        live = Api(
            http, factories.Tenant(api.tenant.org_id, api.tenant.client_id, api.tenant.client_secret, token)
        )
        live_made = build(live, planted, remotes)
        abuse(live, planted, live_made)
        exercise(live, live_made)
        wait_until(lambda: settled(live, live_made))
        evidence.runs += runs_of(live, live_made)
        evidence.answers += live.answers

    evidence.log_lines += log_lines(caplog.records)
    captured = capfd.readouterr()
    evidence.log_lines += (captured.out + captured.err).splitlines()
    evidence.log_lines += server_log.read_text().splitlines()
    evidence.files = read_files(home)

    hits = evidence.hits(planted.needles())
    places = evidence.places()
    print(f"searched {places} for {len(planted.needles())} needles: {len(hits)} hits")
    assert hits == [], "\n".join(hits[:50])

    # the failures really happened, in the ways this test means to provoke
    everything = "\n".join(evidence.answers) + json.dumps(evidence.runs)
    for expected in (
        "access refused",  # the hostile endpoint's 403
        "server unavailable",  # its 500
        "unreachable",  # closed ports, names that do not resolve
        "authentication with the password failed",  # SFTP refused
        "passPhrase is wrong",
        "does not exist",  # missing role, database or table
        "holds a password key",
        "is not of the form key=value",
        "cloud metadata address",
        "contains '..'",
        "Unknown parameter 's3Secret'",
    ):
        assert expected in everything, expected
    states = [r["state"] for r in evidence.runs]
    assert states.count("success") >= 2 and states.count("failed") >= 2 * (len(made.flows) - 2)
    assert any("row_errors" in name for name in evidence.files)  # diagnostics were written
    assert any(name.endswith(".parquet") for name in evidence.files)
