"""Fixtures for tests that run dataflows: an app with run workers on databases of its own, and an
S3-compatible server. Registered for the whole suite in tests/conftest.py (`pytest_plugins`).

Workers claim runnable runs of every tenant, so they must not share a database with the tests
that drive runs by hand: this session has its own SQLite file and PostgreSQL database per backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.workers.inprocess import InProcessQueue
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import Tenant, new_tenant
from tests.s3server import start_s3_server


@pytest.fixture(scope="session")
def engine_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home: Path = tmp_path_factory.mktemp("engine-home")
    url = f"sqlite:///{home / 'engine.db'}" if database_url.startswith("sqlite") else create_pg_database()
    settings = Settings.load(
        home=home,
        database_url=url,
        public_url="http://testserver",
        test_connectors=True,
        lease_seconds=30,
        poll_seconds=0.2,
    )
    migrate.upgrade(settings.database_url)
    try:
        yield settings
    finally:
        if not url.startswith("sqlite"):
            drop_pg_database(url)


@pytest.fixture(scope="session")
def engine_services(engine_settings: Settings) -> Iterator[Services]:
    services = Services.from_settings(engine_settings)
    yield services
    services.close()


@pytest.fixture(scope="session")
def engine_client(engine_services: Services) -> Iterator[TestClient]:
    queue = InProcessQueue(engine_services, workers=2)
    with TestClient(create_app(engine_services, queue=queue)) as client:
        yield client


@pytest.fixture
def engine_tenant(engine_services: Services, engine_client: TestClient) -> Tenant:
    return new_tenant(engine_services, engine_client)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    url, stop = start_s3_server()
    try:
        yield url
    finally:
        stop()


@pytest.fixture
def bucket(s3_server: str) -> tuple[Any, str]:
    """A new bucket on the session's S3 server, with a client for it."""
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
    )
    name = f"landing-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return s3, name
