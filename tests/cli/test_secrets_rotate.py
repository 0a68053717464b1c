"""Rotating the secret key: `flowservice secrets rotate` re-seals every stored secret, and what the key
signs (access tokens, continuation tokens, UI sessions) keeps working while the old key is listed as
previous, and stops once it is dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from flowservice.api.app import create_app
from flowservice.services import alerts
from flowservice.services.context import Services
from flowservice.services.crypto import SecretBox
from flowservice.services.rotation import rotate
from flowservice.settings import Settings
from flowservice.store import migrate
from flowservice.store.repos import sealed
from flowservice.ui.session import SessionCodec, SignedIn, new_session
from tests import factories
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import BASE, Tenant

OLD, NEW, STRAY = "old-key-" + "o" * 40, "new-key-" + "n" * 40, "stray-key-" + "s" * 40
ALERTS = "/data/infrastructure/observability/alerts"


@dataclass
class Home:
    path: Path
    database_url: str

    def settings(self, key: str, previous: str = "") -> Settings:
        return Settings.load(
            home=self.path,
            database_url=self.database_url,
            public_url="http://testserver",
            secret_key=key,
            previous_secret_keys=previous or None,
        )

    def cli(self, key: str, previous: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")}
        env.update(
            FLOWSERVICE_HOME=str(self.path),
            FLOWSERVICE_DATABASE_URL=self.database_url,
            FLOWSERVICE_SECRET_KEY=key,
            FLOWSERVICE_PREVIOUS_SECRET_KEYS=previous,
        )
        return subprocess.run(
            [sys.executable, "-m", "flowservice", "secrets", "rotate", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def home(database_url: str, tmp_path: Path) -> Iterator[Home]:
    url = (
        f"sqlite:///{tmp_path / 'rotation.db'}" if database_url.startswith("sqlite") else create_pg_database()
    )
    migrate.upgrade(url)
    try:
        yield Home(tmp_path, url)
    finally:
        if not url.startswith("sqlite"):
            drop_pg_database(url)


class App:
    """An app over the home's database under one key configuration."""

    def __init__(self, settings: Settings) -> None:
        self.services = Services.from_settings(settings)
        self.client = TestClient(create_app(self.services))

    def __enter__(self) -> App:
        self.client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)
        self.services.close()


def s3(secret: str) -> dict[str, Any]:
    params = {
        "s3AccessKey": "AKIA",
        "s3SecretKey": secret,
        "serviceUrl": "http://127.0.0.1:9",
        "bucketName": "b",
    }
    return factories.s3_connection(auth={"specName": "Access Key", "params": params})


def opened(services: Services, tenant: Tenant, connection_id: str) -> dict[str, Any]:
    """The connection's secret params, opened with the services' keys (as a run or a PATCH opens them)."""
    from flowservice.store.repos import resources as repos

    with services.db.reader() as session:
        row = repos.connections(session, factories.domain_tenant(services, tenant)).get(connection_id)
        assert row is not None and row.secrets is not None
        return services.box.open(row.secrets)


def tokens_in_store(services: Services) -> dict[str, str]:
    found: dict[str, str] = {}
    with services.db.reader() as session:
        for kind in sealed.KINDS:
            found.update({row.id: row.token for row in sealed.page(session, kind, "", 10_000)})
    return found


def test_rotation_reseals_everything_once_and_the_old_key_can_then_go(home: Home) -> None:
    with App(home.settings(OLD)) as before:
        tenant = factories.new_tenant(before.services, before.client)
        made = {
            factories.create(before.client, tenant, "connections", s3(f"secret-{n}"))["id"]: f"secret-{n}"
            for n in range(5)
        }
        rule = before.client.post(
            f"{ALERTS}/rules",
            json={"name": "r", "kind": "runFailure", "webhook": {"url": "http://127.0.0.1:9/h"}},
            headers=tenant.headers(),
        ).json()
        page = before.client.get(f"{BASE}/connections?limit=2", headers=tenant.headers()).json()
        continuation = page["_links"]["next"]["href"].split("=", 1)[1]
        sealed_before = tokens_in_store(before.services)
    assert len(sealed_before) == 6

    dry = home.cli(NEW, OLD, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["connections"]["resealed"] == 5
    with App(home.settings(NEW, OLD)) as during:
        assert tokens_in_store(during.services) == sealed_before  # a dry run changes nothing

    first = home.cli(NEW, OLD, "--batch-size", "2", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["connections"] == {
        "examined": 5,
        "resealed": 5,
        "current": 0,
        "changedMeanwhile": 0,
        "unreadable": 0,
        "unreadableIds": [],
    }
    assert (report["alertRules"]["examined"], report["alertRules"]["resealed"]) == (1, 1)
    again = home.cli(NEW, OLD, "--batch-size", "2")
    assert again.returncode == 0, again.stderr
    assert "connections: 5 sealed, re-sealed 0, 5 already under the current key, 0 unreadable" in again.stdout

    # during the transition (old key listed as previous): everything issued under it still works
    with App(home.settings(NEW, OLD)) as during:
        assert during.client.get(f"{BASE}/connections", headers=tenant.headers()).status_code == 200
        answer = during.client.get(
            f"{BASE}/connections?continuationToken={continuation}", headers=tenant.headers()
        )
        assert answer.status_code == 200 and len(answer.json()["items"]) == 2

    # the old key dropped: secrets open with the new key alone; what the old key signed is refused
    with App(home.settings(NEW)) as after:
        for connection_id, secret in made.items():
            assert opened(after.services, tenant, connection_id)["s3SecretKey"] == secret
        assert (
            alerts.signing_secret(after.services, factories.domain_tenant(after.services, tenant), rule["id"])
            == rule["webhookSecret"]
        )
        refused = after.client.get(f"{BASE}/connections", headers=tenant.headers())
        assert (refused.status_code, refused.json()["error_code"]) == (401, "401013")
        fresh = tenant.renewed(after.client)  # a client gets a new token and carries on
        assert after.client.get(f"{BASE}/connections", headers=fresh.headers()).status_code == 200
        stale = after.client.get(
            f"{BASE}/connections?continuationToken={continuation}", headers=fresh.headers()
        )
        assert stale.status_code == 400 and "continuationToken" in stale.json()["errorMessage"]


def test_values_no_key_opens_are_reported_and_left_alone(home: Home) -> None:
    with App(home.settings(OLD)) as old:
        tenant = factories.new_tenant(old.services, old.client)
        readable = factories.create(old.client, tenant, "connections", s3("fine"))["id"]
    with App(home.settings(STRAY)) as stray:
        lost = factories.create(
            stray.client, factories.new_tenant(stray.services, stray.client), "connections", s3("lost")
        )["id"]
        lost_token = tokens_in_store(stray.services)[lost]

    result = home.cli(NEW, OLD, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)["connections"]
    assert (report["resealed"], report["unreadable"], report["unreadableIds"]) == (1, 1, [lost])
    assert lost in result.stderr and "FLOWSERVICE_PREVIOUS_SECRET_KEYS" in result.stderr
    assert "Traceback" not in result.stderr
    with App(home.settings(NEW)) as after:
        assert tokens_in_store(after.services)[lost] == lost_token
        assert opened(after.services, tenant, readable)["s3SecretKey"] == "fine"


def test_a_value_changed_during_the_rotation_is_not_overwritten(home: Home) -> None:
    with App(home.settings(OLD)) as old:
        tenant = factories.new_tenant(old.services, old.client)
        made = factories.create(old.client, tenant, "connections", s3("first"))
    with App(home.settings(NEW, OLD)) as during:
        with during.services.db.reader() as session:
            [stale] = sealed.page(session, "connections", "", 10)
        patched = during.client.patch(
            f"{BASE}/connections/{made['id']}",
            json=[{"op": "replace", "path": "/auth/params/s3SecretKey", "value": "second"}],
            headers=tenant.headers(**{"if-match": made["etag"]}),
        )
        assert patched.status_code == 200, patched.text
        with during.services.db.transaction() as session:
            fresh = during.services.box.reseal(stale.token)
            assert fresh is not None
            assert not sealed.replace(session, "connections", stale.id, stale.token, fresh)
        assert opened(during.services, tenant, made["id"])["s3SecretKey"] == "second"
        report = rotate(during.services)
        assert (report.kinds["connections"].current, report.resealed) == (1, 0)


def test_what_the_key_signs_verifies_under_a_previous_key() -> None:
    old, new = OLD.encode(), NEW.encode()
    box = SecretBox(old)
    token = box.seal({"password": "p"})
    rotated = SecretBox(new, [old])
    assert rotated.open(token) == {"password": "p"}
    resealed = rotated.reseal(token)
    assert resealed is not None and rotated.reseal(resealed) is None
    assert SecretBox(new).open(resealed) == {"password": "p"}
    with pytest.raises(ValueError, match="current or a previous key"):
        SecretBox(new).reseal(token)

    session = new_session(SignedIn("client", "org@AdobeOrg"), "prod")
    cookie = SessionCodec(old).dump(session, 1_000)
    assert SessionCodec(new, [old]).load(cookie, 1_001) == session
    assert SessionCodec(new).load(cookie, 1_001) is None
    settings = Settings(secret_key=SecretStr(NEW), previous_secret_keys=SecretStr(f" {OLD} , {STRAY},"))
    assert settings.previous_secrets == (OLD.encode(), STRAY.encode())
    assert OLD not in repr(settings) and OLD not in str(settings.model_dump())
