"""The identity commands, run as processes against the same database the API uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from flowservice.settings import Settings
from tests.factories import BASE, Tenant, new_org_id, token_for


def flowservice(settings: Settings, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FLOWSERVICE_HOME": str(home or settings.home),
        "FLOWSERVICE_DATABASE_URL": settings.database_url if home is None else "",
    }
    return subprocess.run(
        [sys.executable, "-m", "flowservice", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_credentials_create_json_gives_working_credentials(settings: Settings, client: TestClient) -> None:
    org = new_org_id()
    result = flowservice(settings, "credentials", "create", "--org", org, "--json")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"client_id", "client_secret", "org_id"} and created["org_id"] == org
    token = token_for(client, created["client_id"], created["client_secret"])
    tenant = Tenant(org, created["client_id"], created["client_secret"], token)
    assert client.get(f"{BASE}/flows", headers=tenant.headers()).status_code == 200

    human = flowservice(settings, "credentials", "create", "--org", org)
    assert human.returncode == 0 and "client_secret:" in human.stdout

    made = flowservice(settings, "sandboxes", "create", "--org", org, "dev")
    assert made.returncode == 0, made.stderr
    assert client.get(f"{BASE}/flows", headers=tenant.headers(sandbox="dev")).status_code == 200
    listed = flowservice(settings, "sandboxes", "list", "--org", org)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["dev", "prod"]

    revoked = flowservice(settings, "credentials", "revoke", created["client_id"])
    assert revoked.returncode == 0
    assert client.get(f"{BASE}/flows", headers=tenant.headers()).status_code == 401


def test_bad_input_is_a_clear_error_not_a_traceback(settings: Settings) -> None:
    for args in (
        ("credentials", "create", "--org", "not an org!"),
        ("sandboxes", "create", "--org", new_org_id(), "Has Capitals"),
        ("credentials", "revoke", "no-such-client"),
    ):
        result = flowservice(settings, *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr, result.stderr
    org = new_org_id()
    assert flowservice(settings, "sandboxes", "create", "--org", org, "dev").returncode == 0
    twice = flowservice(settings, "sandboxes", "create", "--org", org, "dev")
    assert twice.returncode == 1 and "already exists" in twice.stderr


def test_db_upgrade_creates_the_embedded_database_in_the_home(tmp_path: Path, settings: Settings) -> None:
    result = flowservice(settings, "db", "upgrade", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "flowservice.db").exists()
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
