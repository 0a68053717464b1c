"""Paths from API callers stay inside their root end to end: the landing zone's folder and an SFTP
connection's folderPath, through explore, preview and runs (`../`, absolute paths, symlinks out).

The connectors' own tests (test_landing_zone.py, test_sftp.py) check each method; these check that
the API and the engine use them so that nothing outside is ever listed, previewed, staged or ingested.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from flowservice import catalog
from tests import factories
from tests.e2e.test_ingestion import customers, write_csv
from tests.factories import BASE, Tenant
from tests.faults.support import lake_root
from tests.sftp_server import start_sftp_server
from tests.worlds import Own, own_app

OUTSIDE = "outside-the-root-9f3e"  # a marker in every file that must stay unreachable
PASSWORD = "containment-password"


@pytest.fixture
def own(database_url: str, tmp_path: Path) -> Iterator[Own]:
    with own_app(database_url, tmp_path / "home") as app:
        yield app


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    write_csv(folder / "secret.csv", [["1", OUTSIDE, f"{OUTSIDE}@example.com", "1", "2026-01-15", "true"]])
    return folder


def zone_of(own: Own, tenant: Tenant) -> Path:
    return own.services.settings.landing_zone / tenant.org_id / tenant.sandbox


def run(own: Own, tenant: Tenant, source: dict[str, Any]) -> dict[str, Any]:
    flow = factories.dataflow(
        own.client,
        tenant,
        source=source,
        mappings=factories.IDENTITY_MAPPINGS,
        scheduleParams={"startTime": "1700000000", "frequency": "once"},
    ).flow_id
    return factories.wait_for_run(own.client, tenant, factories.start_run(own.client, tenant, flow))


def dlz(path: str) -> dict[str, Any]:
    return {
        "name": "zone",
        "data": {"format": "delimited"},
        "params": {"path": path, "type": "folder", "recursive": True},
        "connectionSpec": {"id": catalog.DATA_LANDING_ZONE, "version": "1.0"},
    }


def test_the_landing_zone_cannot_be_left(own: Own, outside: Path) -> None:
    tenant = factories.new_tenant(own.services, own.client)
    zone = zone_of(own, tenant)
    write_csv(zone / "in" / "a.csv", customers(1, 3, {}))
    (zone / "in" / "out-file.csv").symlink_to(outside / "secret.csv")
    (zone / "in" / "out-dir").symlink_to(outside, target_is_directory=True)
    (zone / "link-out").symlink_to(outside, target_is_directory=True)
    explore = f"{BASE}/connectionSpecs/{catalog.DATA_LANDING_ZONE}/explore"

    for path in ("..", "../..", "in/../../..", "/../outside", "link-out", "in/out-dir", "in/out-file.csv"):
        for query in (
            f"objectType=folder&object={path}",
            f"objectType=file&object={path}&fileType=delimited",
        ):
            answer = own.client.get(f"{explore}?{query}", headers=tenant.headers())
            assert answer.status_code in (400, 404), (path, answer.text)
            assert OUTSIDE not in answer.text
    answer = own.client.get(f"{explore}?objectType=folder&object=/etc", headers=tenant.headers())
    assert answer.status_code == 404  # an absolute path is a path in the zone, which has no /etc
    listed = own.client.get(f"{explore}?objectType=folder&object=in", headers=tenant.headers()).json()
    assert [item["name"] for item in listed] == ["a.csv"]  # links out are not even shown

    # a run over the folder takes the file inside and nothing the links lead to
    inside = run(own, tenant, dlz("in"))
    assert inside["state"] == "success"
    assert inside["metrics"]["recordSummary"]["outputRecordCount"] == 3
    for path in ("link-out", "in/out-dir"):  # links are found when the run resolves the path
        refused = run(own, tenant, dlz(path))
        assert refused["state"] == "failed", path
        assert "leads outside the landing zone" in str(refused["activities"])
    for path in ("../outside", "in/../../outside"):  # a climbing path is refused when saved
        answer = own.client.post(f"{BASE}/sourceConnections", json=dlz(path), headers=tenant.headers())
        assert answer.status_code == 400 and answer.json()["report"]["field"] == "params.path"
    staged = [p for p in lake_root(own.services).rglob("*") if p.is_file()]
    assert not any(OUTSIDE.encode() in p.read_bytes() for p in staged)


@pytest.fixture
def sftp_root(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An SFTP server whose tree has `data/` (the connection's folderPath) beside `private/`."""
    tree = tmp_path / "sftp"
    write_csv(tree / "data" / "a.csv", customers(1, 2, {}))
    write_csv(
        tree / "private" / "secret.csv", [["1", OUTSIDE, f"{OUTSIDE}@example.com", "1", "2026-01-15", "true"]]
    )
    os.symlink("../private", tree / "data" / "out-dir")
    os.symlink("../private/secret.csv", tree / "data" / "out-file.csv")
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    _, port, stop = start_sftp_server(tree, "reader", PASSWORD, key)
    try:
        yield port, tree
    finally:
        stop()


def test_an_sftp_folder_path_cannot_be_left(own: Own, sftp_root: tuple[int, Path]) -> None:
    port, _ = sftp_root
    tenant = factories.new_tenant(own.services, own.client)
    params = {
        "host": "127.0.0.1",
        "port": port,
        "userName": "reader",
        "password": PASSWORD,
        "folderPath": "/data",
    }
    body = {
        "name": "sftp",
        "auth": {"specName": "Basic Authentication for sftp", "params": params},
        "connectionSpec": {"id": catalog.SFTP, "version": "1.0"},
    }
    connection = factories.create(own.client, tenant, "connections", body)["id"]
    explore = f"{BASE}/connections/{connection}/explore"

    for path in (
        "..",
        "/../private",
        "/../private/secret.csv",
        "x/../../private",
        "/out-dir",
        "/out-file.csv",
    ):
        for query in (
            f"objectType=folder&object={path}",
            f"objectType=file&object={path}&fileType=delimited",
        ):
            answer = own.client.get(f"{explore}?{query}", headers=tenant.headers())
            assert answer.status_code in (400, 404), (path, answer.text)
            assert OUTSIDE not in answer.text
    absolute = own.client.get(f"{explore}?objectType=folder&object=/private", headers=tenant.headers())
    assert absolute.status_code == 404  # "/private" is /data/private: the folder is the root
    listed = own.client.get(f"{explore}?objectType=root", headers=tenant.headers()).json()
    assert [item["name"] for item in listed] == ["a.csv"]

    def source(path: str) -> dict[str, Any]:
        return {
            "name": "sftp source",
            "baseConnectionId": connection,
            "data": {"format": "delimited"},
            "params": {"path": path, "type": "folder", "recursive": True},
            "connectionSpec": {"id": catalog.SFTP, "version": "1.0"},
        }

    assert run(own, tenant, source("/"))["metrics"]["recordSummary"]["outputRecordCount"] == 2
    for path in ("/../private", "/out-dir"):
        refused = run(own, tenant, source(path))
        assert refused["state"] == "failed", path
    staged = [p for p in lake_root(own.services).rglob("*") if p.is_file()]
    assert not any(OUTSIDE.encode() in p.read_bytes() for p in staged)
