"""Shared fixtures: one database per backend per session, one app per backend, fresh orgs per test.

Tests isolate by creating their own org (random ids), not by truncating tables, so the whole
session shares one migrated database per backend, as Prefect and the FastAPI template do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests.factories import Tenant, new_tenant
from tests.live import LiveServer, serve
from tests.services import PG_ADMIN_URL, unavailable

BACKENDS = ("sqlite", "postgres")
pytest_plugins = ["tests.engine_fixtures"]


def create_pg_database() -> str:
    name = f"flowservice_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # any connection failure means "PostgreSQL is absent"
        unavailable("PostgreSQL", f"{make_url(PG_ADMIN_URL).render_as_string(hide_password=True)}: {exc}")
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'flowservice.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home: Path = tmp_path_factory.mktemp("home")
    settings = Settings.load(home=home, database_url=database_url, public_url="http://testserver")
    migrate.upgrade(settings.database_url)
    return settings


@pytest.fixture(scope="session")
def services(settings: Settings) -> Iterator[Services]:
    services = Services.from_settings(settings)
    yield services
    services.close()


@pytest.fixture(scope="session")
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`flowservice serve` as a separate process on the session's database, for real HTTP clients."""
    env = {
        "FLOWSERVICE_HOME": str(settings.home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url,
        # the session's database holds every test's flows, with schedules long due: tests that want
        # scheduling run a scheduler of their own on a database of their own (tests/scheduler)
        "FLOWSERVICE_SCHEDULER": "false",
        "FLOWSERVICE_WORKERS": "0",  # likewise: runs other tests create here are theirs to move
    }
    with serve(tmp_path_factory.mktemp("live"), env=env) as server:
        yield server


@pytest.fixture
def tenant(services: Services, client: TestClient) -> Tenant:
    """A brand-new org with credentials and a token, acting in its `prod` sandbox."""
    return new_tenant(services, client)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that touches the database on SQLite and on PostgreSQL."""
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True, scope="session")
