"""`flowservice scheduler` as its own process: it creates the runs slots call for, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flowservice.api.app import create_app
from flowservice.services.context import Services
from flowservice.settings import Settings
from flowservice.store import migrate
from tests import factories
from tests.conftest import create_pg_database, drop_pg_database
from tests.factories import BASE


@pytest.fixture
def own_database(database_url: str, tmp_path: Path) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'sched.db'}" if database_url.startswith("sqlite") else create_pg_database()
    settings = Settings.load(home=tmp_path, database_url=url, public_url="http://testserver")
    migrate.upgrade(settings.database_url)
    try:
        yield settings
    finally:
        if not url.startswith("sqlite"):
            drop_pg_database(url)


def test_the_scheduler_command_creates_due_runs_and_stops_cleanly(own_database: Settings) -> None:
    services = Services.from_settings(own_database)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLOWSERVICE_")},
        "FLOWSERVICE_HOME": str(own_database.home),
        "FLOWSERVICE_DATABASE_URL": own_database.database_url,
        "FLOWSERVICE_POLL_SECONDS": "0.2",
    }
    try:
        with TestClient(create_app(services)) as client:  # an API without a scheduler of its own
            tenant = factories.new_tenant(services, client)
            start = int(time.time()) + 1  # the next whole second: the process must wait for it
            flow_id = factories.dataflow(
                client, tenant, scheduleParams={"startTime": str(start), "frequency": "once"}
            ).flow_id
            process = subprocess.Popen(
                [sys.executable, "-m", "flowservice", "scheduler"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                deadline = time.monotonic() + 60
                runs: list[dict[str, Any]] = []
                while not runs:  # the condition we wait on, with a deadline
                    assert process.poll() is None, process.communicate()[0]
                    assert time.monotonic() < deadline, "the scheduler process created no run"
                    answer = client.get(f"{BASE}/runs?property=flowId=={flow_id}", headers=tenant.headers())
                    runs = answer.json()["items"]
                    if not runs:
                        time.sleep(0.1)
                [run] = runs
                assert run["state"] == "scheduled"
                assert run["createdAt"] >= start * 1000  # not before its slot
                assert run["params"] == {"windowStartTime": 0, "windowEndTime": start}
            finally:
                process.send_signal(signal.SIGTERM)
                output, _ = process.communicate(timeout=30)
            assert process.returncode == 0, output
            assert "Traceback" not in output
    finally:
        services.close()
