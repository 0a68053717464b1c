"""What the benchmarks share: their databases, and a tenant with the parts of a flow made through the service layer."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.factories import CUSTOMERS_SCHEMA, XED

from flowservice import catalog
from flowservice.domain.tenancy import Caller
from flowservice.domain.tenancy import Tenant as DomainTenant
from flowservice.schemas.resources import ConnectionCreate, SourceConnectionCreate, TargetConnectionCreate
from flowservice.services import catalog as catalog_service
from flowservice.services import identity, resources
from flowservice.services.connections import KIND as CONNECTIONS
from flowservice.services.context import Services
from flowservice.services.identity import NewCredential
from flowservice.services.source_connections import KIND as SOURCES
from flowservice.services.target_connections import KIND as TARGETS


@dataclass(frozen=True)
class FlowParts:
    credential: NewCredential
    caller: Caller
    source_id: str
    target_id: str


def flow_parts(
    services: Services,
    org_id: str,
    *,
    source: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> FlowParts:
    """A new org with a source (an S3 one unless `source`, a body without a base connection, is
    given) and a dataset of `schema` (default the tests' Customers) as the target."""
    credential = identity.create_credentials(services.db, org_id)
    [sandbox] = identity.list_sandboxes(services.db, credential.org_id)
    caller = Caller(DomainTenant(credential.org_id, "prod", sandbox.id), credential.client_id)
    if source is None:
        connection = resources.create(
            services,
            caller,
            CONNECTIONS,
            ConnectionCreate.model_validate(
                {
                    "name": "bench",
                    "auth": {"specName": "Access Key", "params": {"s3AccessKey": "a", "s3SecretKey": "b"}},
                    "connectionSpec": {"id": catalog.AMAZON_S3},
                }
            ),
        )
        source = {
            "name": "bench",
            "baseConnectionId": connection.id,
            "data": {"format": "delimited"},
            "params": {"path": "/bench.csv"},
            "connectionSpec": {"id": catalog.AMAZON_S3},
        }
    made = resources.create(services, caller, SOURCES, SourceConnectionCreate.model_validate(source))
    created = catalog_service.create_schema(services, caller, schema or CUSTOMERS_SCHEMA)
    dataset_id = catalog_service.create_dataset(
        services, caller, {"name": "bench", "schemaRef": {"id": created["$id"], "contentType": XED}}
    )
    target = resources.create(
        services,
        caller,
        TARGETS,
        TargetConnectionCreate.model_validate(
            {
                "name": "bench",
                "data": {"format": "parquet_xdm"},
                "params": {"dataSetId": dataset_id},
                "connectionSpec": {"id": catalog.DATA_LAKE},
            }
        ),
    )
    return FlowParts(credential, caller, made.id, target.id)


DATA = Path(__file__).parent / ".data"
PG_ADMIN = os.environ.get("FLOWSERVICE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def bench_database(backend: str, name: str, *, reuse: bool = False) -> str:
    """The URL of the bench's own database `name` (a file under .data/ for SQLite): emptied first
    unless `reuse` keeps what an earlier invocation loaded."""
    DATA.mkdir(exist_ok=True)
    if backend == "sqlite":
        path = DATA / f"{name}.db"
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if exists and not reuse:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
